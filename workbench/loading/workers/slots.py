"""A ring of shared-memory batch slots, allocated once per pass, that worker processes write
batches into: what crosses the process boundary is then a slot number, not a fresh shared-memory
tensor per batch (torch's default: shm_open, truncate, map and page-fault every batch anew, on
both sides). FFCV and Mosaic avoid per-batch allocation the same way.

The main process lends the consumer the slot itself: the batch's tensors view the shared memory,
and the slot goes back to its worker when the last of them (and every view of them) is freed.
No copy out; the consumer may still keep a batch as long as it likes. A shared ``busy`` flag per
slot is the way back: the worker sets it before writing (1), the main process marks the slot
lent (2) and clears it when the batch is freed; a worker starting a new pass frees what the last
pass left unread (torch drops those batches when persistent workers start over). At most
``LEND`` batches of a ring are lent at once; beyond that (a consumer keeping every batch) the
main process copies the batch out and frees the slot at once, so a worker with ``depth`` batches
in flight always finds one of its ``depth + LEND + 1`` slots free.

>>> ring = Slots.for_batch({"x": torch.arange(6.0).reshape(3, 2)}, rows=4, count=2)
>>> ref = ring.write(5, {"x": torch.ones(2, 2)}); ring.read(ref)["x"].tolist()
[[1.0, 1.0], [1.0, 1.0]]
"""

from __future__ import annotations

import math
import os
import weakref
from typing import Any, NamedTuple

import torch

__all__: list[str] = []

LEND = 2  # batches of one ring the consumer may hold without a copy (a loop holds 1, often 2)


class SlotRef(NamedTuple):
    """A batch waiting in a slot: which slot, how many rows, and its container."""

    slot: int
    rows: int
    kind: str  # "dict", "tuple" or "list"
    keys: tuple[Any, ...]


def _parts(batch: Any) -> tuple[str, tuple[Any, ...], list[Any]] | None:
    if isinstance(batch, dict):
        return "dict", tuple(batch), list(batch.values())
    if isinstance(batch, (tuple, list)) and type(batch) in (tuple, list):
        return type(batch).__name__, tuple(range(len(batch))), list(batch)
    return None


class Full(Exception):
    """Every slot is still held: send this batch torch's own way."""


class Slots:
    """``count`` slots of up to ``rows`` rows for each column of a batch like the sample."""

    def __init__(
        self, layout: dict[Any, tuple[torch.dtype, tuple[int, ...]]], rows: int, count: int
    ) -> None:
        self.rows, self.count = int(rows), int(count)
        self.layout = layout
        self.buffers = {
            k: torch.empty((count, rows, *shape), dtype=dtype).share_memory_()
            for k, (dtype, shape) in layout.items()
        }
        self.busy = torch.zeros(count, dtype=torch.uint8).share_memory_()
        self.token = os.urandom(8)

    def __getstate__(self) -> dict[str, Any]:
        return {
            k: self.__dict__[k] for k in ("rows", "count", "layout", "buffers", "busy", "token")
        }

    def same(self, other: Slots | None) -> bool:
        """Whether ``other`` is this ring (another copy of it, unpickled again)."""
        return other is not None and other.token == self.token

    @classmethod
    def for_batch(cls, batch: Any, rows: int, count: int) -> Slots | None:
        """Slots shaped like ``batch`` (dense tensors sharing their first dimension), else None."""
        parts = _parts(batch)
        if parts is None or not parts[2]:
            return None
        _, keys, values = parts
        if not all(
            isinstance(v, torch.Tensor)
            and v.dim() >= 1
            and v.layout == torch.strided
            and len(v) == len(values[0])
            for v in values
        ):
            return None
        layout = {k: (v.dtype, tuple(v.shape[1:])) for k, v in zip(keys, values)}
        return cls(layout, max(rows, len(values[0])), count)

    def write(self, k: int, batch: Any) -> SlotRef | None:
        """Copy batch number ``k`` into a free slot (in a worker); None if it does not fit.
        Raises :class:`Full` when the consumer still holds every slot."""
        parts = _parts(batch)
        if parts is None:
            return None
        kind, keys, values = parts
        if set(keys) != set(self.layout) or not values:
            return None
        n = len(values[0])
        for key, v in zip(keys, values):
            dtype, shape = self.layout[key]
            if (
                not isinstance(v, torch.Tensor)
                or v.dtype != dtype
                or tuple(v.shape[1:]) != shape
                or len(v) != n
                or n > self.rows
                or v.layout != torch.strided
            ):
                return None
        slot = self.claim(k)
        for key, v in zip(keys, values):
            self.buffers[key][slot, :n].copy_(v)
        return SlotRef(slot, n, kind, keys)

    def claim(self, k: int) -> int:
        """A free slot, the first from ``k % count`` on, marked written (in a worker); raises
        :class:`Full` when the consumer still holds every slot."""
        busy = self.busy.numpy()
        slot = next(
            (s % self.count for s in range(k, k + self.count) if not busy[s % self.count]), None
        )
        if slot is None:
            raise Full
        busy[slot] = 1
        return slot

    def views(self, slot: int, n: int) -> dict[str, torch.Tensor]:
        """Column -> the first ``n`` rows of ``slot``, to read a batch straight into."""
        return {k: b[slot, :n] for k, b in self.buffers.items()}

    def unclaim(self, slot: int) -> None:
        self.busy[slot] = 0

    def forget_unread(self) -> None:
        """Free the slots written but never read (in a worker, when a new pass starts)."""
        busy = self.busy.numpy()
        busy[busy == 1] = 0

    def read(self, ref: SlotRef) -> Any:
        """The batch in ``ref``'s slot (in the main process): lent while fewer than ``LEND`` are
        out, else copied out into memory the caller owns."""
        if "_leases" not in self.__dict__:
            self._start_lending()
        if len(self._leases) >= LEND or any(not self._row_bytes[k] for k in ref.keys):
            values = [self.buffers[k][ref.slot, : ref.rows].clone() for k in ref.keys]
            self._busy[ref.slot] = 0
        else:
            values = self._lend(ref)
        if ref.kind == "dict":
            return dict(zip(ref.keys, values))
        return tuple(values) if ref.kind == "tuple" else values

    def _start_lending(self) -> None:
        self._busy = self.busy.numpy()
        self._bytes = {
            k: b.reshape(self.count, -1).view(torch.uint8).numpy() if b.numel() else None
            for k, b in self.buffers.items()
        }
        self._row_bytes = {
            k: b.element_size() * math.prod(b.shape[2:]) for k, b in self.buffers.items()
        }
        self._leases: dict[int, list[weakref.ref]] = {}

    def _lend(self, ref: SlotRef) -> list[torch.Tensor]:
        # torch.from_numpy holds this very ndarray until the tensor's storage (shared by every
        # view of it) is freed: its weakref dying is the moment nothing can read the slot
        slot, n = ref.slot, ref.rows
        left, busy, leases = [len(ref.keys)], self._busy, self._leases

        def gone(_: weakref.ref) -> None:
            left[0] -= 1
            if not left[0]:
                leases.pop(slot, None)
                busy[slot] = 0

        values, held = [], []
        for key in ref.keys:
            dtype, shape = self.layout[key]
            a = self._bytes[key][slot, : n * self._row_bytes[key]]
            held.append(weakref.ref(a, gone))
            values.append(torch.from_numpy(a).view(dtype).view(n, *shape))
        leases[slot] = held  # keeps the weakrefs, so their callbacks run
        busy[slot] = 2
        return values
