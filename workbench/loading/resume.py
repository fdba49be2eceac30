"""A sampler's saved position (pure): the keys a state holds, a saved state checked against the
sampler now and read into where its next pass starts, and the checks of the integers and order
names a sampler is given or reads back.

>>> now = dict(num_rows=10, seed=0, block_rows=4, drop_last=False, batch_size=5, order="full",
...            window=8, run_rows=1, rank=0, world_size=1)
>>> read_state({**now, "epoch": 2, "batches_done": 1, "rows_done": 5}, {**now, "batch_size": 2})
Resume(epoch=2, order='full', windows=None, offset=5, first_batch=1, done=1)
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

from ..errors import IncompatibleResumeError, InvalidInputError
from .orders import ORDERS, segments
from .splits import Layout, RankSplit

__all__: list[str] = []

# fixed for a sampler's life: a state saved under other values cannot name the same rows
FIXED_KEYS = ("num_rows", "seed", "block_rows", "drop_last")
STATE_KEYS = (*FIXED_KEYS, "batch_size", "order", "window", "run_rows", "rank", "world_size")
_SAVED = "pass a state from state_dict()"


def integer(name: str, value: object, low: int, hint: str) -> int:
    """``value`` as an int of at least ``low``, else an error that names it and says ``hint``."""
    try:
        v = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInputError(f"{name}={value!r} is not an integer; {hint}") from None
    if v < low:
        raise InvalidInputError(f"{name}={v} is below {low}; {hint}")
    return int(v)


# each setting's least value and the hint its error gives
_RULES = {
    "num_rows": (0, "pass the dataset's len()"),
    "batch_size": (1, "pass a batch_size of at least 1"),
    "block_rows": (1, "pass the dataset's block_rows (rows per storage chunk), at least 1"),
    "window": (1, "pass how many blocks to mix at once, at least 1"),
    "run_rows": (1, "pass the rows per contiguous run, at least 1"),
    "world_size": (1, "pass the number of ranks, at least 1"),
    "rank": (0, "pass a rank in 0..world_size-1"),
    "seed": (0, "pass a non-negative integer seed"),
    "epoch": (0, "pass a non-negative epoch number"),
}


def setting(name: str, value: object) -> int:
    """A sampler's integer setting ``name``, checked by its rule."""
    return integer(name, value, *_RULES[name])


def known_order(order: object) -> str:
    """``order`` if it is one of ``ORDERS``, else an error."""
    if order not in ORDERS:
        raise InvalidInputError(f"order={order!r} is unknown; pass one of {ORDERS}")
    return str(order)


def ranks(rank: object, world_size: object) -> tuple[int, int]:
    """``(rank, world_size)``, checked: a rank in ``0..world_size-1``."""
    world_size = setting("world_size", world_size)
    rank = setting("rank", rank)
    if rank >= world_size:
        raise InvalidInputError(
            f"rank={rank} is out of range for world_size="
            f"{world_size}; pass a rank in 0..{world_size - 1}"
        )
    return rank, world_size


def shard_sizes(shard_rows: Any, num_rows: int) -> list[int] | None:
    """Rows per shard as ints, checked to sum to ``num_rows`` (None: no shards)."""
    sizes = None if shard_rows is None else [int(r) for r in shard_rows]
    if sizes is not None and sum(sizes) != num_rows:
        raise InvalidInputError(
            f"shard_rows sum to {sum(sizes)}, not num_rows="
            f"{num_rows}; pass the dataset's shard sizes"
        )
    return sizes


class Resume(NamedTuple):
    """Where a saved state resumes: its epoch, order and window layout (None: one, from the
    settings), the rank split's start (``offset``, ``first_batch``), the batches done."""

    epoch: int
    order: str
    windows: Layout | None
    offset: int
    first_batch: int
    done: int


def saved_state(
    now: dict[str, Any], epoch: int, done: int, split: RankSplit, windows: Layout | None
) -> dict[str, Any]:
    """The JSON-able state of a sampler with settings ``now`` (``STATE_KEYS``) after ``done``
    batches of ``epoch``."""
    return {
        **now,
        "epoch": epoch,
        "batches_done": done,
        "rows_offset": split.offset,
        "batches_offset": split.first_batch,
        "rows_done": split.rows_done(done),
        "windows": [list(s) for s in windows or []],
    }


def read_state(state: dict[str, Any], now: dict[str, Any]) -> Resume:
    """Where ``state`` resumes a sampler whose settings are ``now`` (``STATE_KEYS``): after its
    batches where the rank split is the same, else *elastically* from its ``rows_done``."""
    changed = [k for k in FIXED_KEYS if k in state and state[k] != now[k]]
    if changed:
        diff = ", ".join(f"{k}: saved {state[k]!r} now {now[k]!r}" for k in changed)
        raise IncompatibleResumeError(
            f"sampler state does not match this sampler ({diff}); build the sampler with the "
            "saved settings or start from a fresh state"
        )
    epoch = integer("epoch", state.get("epoch", 0), 0, _SAVED)
    done = integer("batches_done", state.get("batches_done", 0), 0, _SAVED)
    ranks = (state.get("world_size", now["world_size"]), state.get("rank", now["rank"]))
    same_plan = (
        ranks == (now["world_size"], now["rank"])
        and state.get("batch_size", now["batch_size"]) == now["batch_size"]
        and ("batches_offset" in state or not state.get("rows_offset", 0))
    )
    if not same_plan and "rows_done" not in state:
        raise IncompatibleResumeError(
            "this state has no rows_done (saved by an older workbench), so it can resume "
            f"only at its own world_size={state.get('world_size')} and rank={state.get('rank')}"
            f" and batch_size={state.get('batch_size')}"
        )
    order = known_order(state.get("order", now["order"]))
    windows = segments(state["windows"]) if state.get("windows") else None
    if same_plan:
        offset = integer("rows_offset", state.get("rows_offset", 0), 0, "pass a saved state")
        first = integer("batches_offset", state.get("batches_offset", 0), 0, "a saved state")
        return Resume(epoch, order, windows, offset, first, done)
    rows = integer("rows_done", state["rows_done"], 0, _SAVED)
    first = done if ranks[0] == now["world_size"] else 0
    return Resume(epoch, order, windows, rows, first, first)
