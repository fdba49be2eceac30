"""``wb.expect``: a performance expectation inside a notebook, checked like an assertion from what
a loader or a Monitor measured, against a number, this machine's gather limit or the figures of
the last passing run (kept in a baseline file: ``pytest --wb-notebooks`` names one per notebook).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExpectationError, InvalidInputError
from .bounds import Bound, parse_bound, show

__all__ = ["expect"]

BASELINE_ENV = "WORKBENCH_EXPECT_BASELINE"  # set by the plugin for each notebook's kernel
DEFAULT_BASELINE = Path(".workbench") / "expect.json"
GATHER_S = 0.3  # seconds the gather limit is measured for, once per row width and batch size
_calls = {"n": 0}
_limits: dict[tuple[int, int], float] = {}


class Met:
    """What a passing :func:`expect` returns: prints the bounds (not the figures, which change
    run to run); ``measured`` holds the figures."""

    def __init__(self, key: str, bounds: list[Bound], measured: dict[str, float]) -> None:
        self.key, self.bounds, self.measured = key, bounds, measured

    def __repr__(self) -> str:
        return f"Met({', '.join(f'{b.figure} {b.text}' for b in self.bounds)})"


def expect(source: Any, *, name: str | None = None, **bounds: str) -> Met:
    """Check figures measured by ``source`` against bounds, as an assertion does.

    Parameters
    ----------
    source : Loader, Monitor, mapping or object
        Where the figures come from: a loader's stats (``samples_per_s``, ``mb_per_s``,
        ``wait_fraction``) and the memory of its processes now (``pss``, ``rss``, ``uss``,
        ``real``); a Monitor's loader stats and the peak memory it sampled; or any mapping or
        object with attributes of those names (``wb.bench.measure``'s result).
    name : str, optional
        The key of this expectation in the baseline file (default: its order among the
        notebook's ``wb.expect`` calls).
    **bounds : str
        ``figure=">= 1e6"``, ``"<= 2GiB"``, ``">= 0.8x gather limit"`` (this machine's random
        gather of rows as wide, in batches as large) or ``">= 0.9x last run"``.

    Returns
    -------
    Met
        Its repr names the bounds; ``measured`` the figures.

    Raises
    ------
    ExpectationError
        A figure missed its bound: the message gives each figure, its bound and the reference.
    InvalidInputError
        A bound that is not an expectation, or a figure ``source`` does not measure.

    Examples
    --------
    >>> dl = wb.loader(wb.open_dataset({"x": np.zeros((8192, 16), "float32")}), batch_size=512)
    >>> rows = sum(len(b["x"]) for b in dl)
    >>> from workbench.notebooks import expect
    >>> expect(dl, samples_per_s=">= 1", pss="<= 1TiB")
    Met(samples_per_s >= 1, pss <= 1TiB)
    """
    _calls["n"] += 1
    key = name or f"expect #{_calls['n']}"
    parsed = [parse_bound(fig, text) for fig, text in bounds.items()]
    measured = {b.figure: figure(source, b.figure) for b in parsed}
    path = Path(os.environ.get(BASELINE_ENV) or DEFAULT_BASELINE)
    stored = _read(path)
    last = stored.get(key, {})
    missed = []
    for b in parsed:
        ref = _reference(source, b, last)
        value = measured[b.figure]
        if not b.met(value, ref):
            limit = b.limit(ref)
            against = f" ({b.number:g}x {b.reference} = {show(b.figure, ref)})" if ref else ""
            missed.append(
                f"{b.figure} = {show(b.figure, value)}, expected {b.op} "
                f"{show(b.figure, limit or 0.0)} ({b.text}){against}"
            )
    where = os.environ.get("WORKBENCH_NOTEBOOK", "")
    if missed:
        raise ExpectationError(
            f"wb.expect {key!r}{' in ' + where if where else ''} missed: " + "; ".join(missed)
        )
    stored[key] = {**last, **measured}
    _write(path, stored)
    return Met(key, parsed, measured)


def figure(source: Any, name: str) -> float:
    """The figure ``name`` as ``source`` measures it (see :func:`expect`).

    Parameters
    ----------
    source : Loader, Monitor, mapping or object
        What measured it.
    name : str
        The figure.

    Returns
    -------
    float

    Raises
    ------
    InvalidInputError
        ``source`` does not measure it.
    """
    if isinstance(source, Mapping):
        if name in source:
            return float(source[name])
    elif hasattr(source, "history") and hasattr(source, "latest"):  # a Monitor
        memory = {"pss": "memory_pss_bytes", "rss": "memory_rss_bytes", "real": "memory_real_bytes"}
        if name in memory:
            points = source.history().get(memory[name]) or [[0.0, 0.0]]
            return float(max(v for _, v in points))  # the peak it sampled
        if getattr(source, "loader", None) is not None:
            return figure(source.loader, name)
    elif hasattr(source, "stats") and hasattr(source, "worker_pids"):  # a Loader
        if name in ("pss", "rss", "uss", "real"):
            from ..monitoring.memory import memory_tree

            pids = {os.getpid(): "kernel", **source.worker_pids()}
            return float(memory_tree(pids)["total"][name])
        return figure(source.stats, name)
    elif hasattr(source, name):
        return float(getattr(source, name))
    raise InvalidInputError(
        f"wb.expect: {type(source).__name__} does not measure {name!r}; a loader or Monitor "
        "measures samples_per_s, mb_per_s, wait_fraction, pss, rss, real"
    )


def _reference(source: Any, b: Bound, last: dict[str, float]) -> float | None:
    if b.reference == "last run":
        return last.get(b.figure)
    if b.reference == "gather limit":
        rows_per_s, row_bytes = gather_limit(source)
        if b.figure == "samples_per_s":
            return rows_per_s
        if b.figure == "mb_per_s":
            return rows_per_s * row_bytes / 1e6
        raise InvalidInputError(
            f"wb.expect: {b.figure} has no gather limit; bound samples_per_s or mb_per_s by it"
        )
    return None


def gather_limit(source: Any) -> tuple[float, int]:
    """Rows a second this machine gathers at random into a batch, for ``source``'s rows (one
    core, ``np.take`` from memory, each batch's rows sorted as the samplers do).

    Parameters
    ----------
    source : Loader or Monitor
        Gives the row width and the batch size.

    Returns
    -------
    tuple
        ``(rows per second, bytes per row)``; measured once per width and batch size.
    """
    dl = getattr(source, "loader", None) or source
    stats = getattr(dl, "stats", None)
    row_bytes = int(stats.bytes / stats.samples) if stats and stats.samples else 0
    row_bytes = row_bytes or int(getattr(getattr(dl, "dataset", None), "row_nbytes", 0) or 64)
    batch = int(getattr(dl, "batch_size", None) or 1024)
    if (row_bytes, batch) not in _limits:
        rows = max(4 * batch, min(1 << 20, (256 << 20) // row_bytes))
        src = np.ones((rows, row_bytes), np.uint8)
        out = np.empty((batch, row_bytes), np.uint8)
        rng = np.random.default_rng(0)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < GATHER_S:
            idx = np.sort(rng.integers(0, rows, batch))
            np.take(src, idx, axis=0, out=out)
            done += batch
        _limits[row_bytes, batch] = done / (time.perf_counter() - start)
    return _limits[row_bytes, batch], row_bytes


def _read(path: Path) -> dict[str, dict[str, float]]:
    try:
        return dict(json.loads(path.read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _write(path: Path, stored: dict[str, dict[str, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(stored, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)
