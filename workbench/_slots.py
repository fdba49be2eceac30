"""A ring of shared-memory batch slots, allocated once per pass, that worker processes write
batches into: what crosses the process boundary is then a slot number, not a fresh shared-memory
tensor per batch (torch's default: shm_open, truncate, map and page-fault every batch anew, on
both sides). FFCV and Mosaic avoid per-batch allocation the same way.

The main process copies a batch out of its slot as soon as torch hands it over, so the consumer
owns ordinary memory and may keep batches as long as it likes. With ``depth`` batches in flight,
``depth + 1`` slots are enough: the batch that will reuse slot ``k % count`` is only requested
after batch ``k`` was copied out.

>>> ring = Slots.for_batch({"x": torch.arange(6.0).reshape(3, 2)}, rows=4, count=2)
>>> ref = ring.write(5, {"x": torch.ones(2, 2)}); ring.read(ref)["x"].tolist()
[[1.0, 1.0], [1.0, 1.0]]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

__all__: list[str] = []


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


class Slots:
    """``count`` slots of up to ``rows`` rows for each column of a batch like the sample."""

    def __init__(self, layout: dict[Any, tuple[torch.dtype, tuple[int, ...]]], rows: int,
                 count: int) -> None:
        self.rows, self.count = int(rows), int(count)
        self.layout = layout
        self.buffers = {k: torch.empty((count, rows, *shape), dtype=dtype).share_memory_()
                        for k, (dtype, shape) in layout.items()}

    @classmethod
    def for_batch(cls, batch: Any, rows: int, count: int) -> Slots | None:
        """Slots shaped like ``batch`` (dense tensors sharing their first dimension), else None."""
        parts = _parts(batch)
        if parts is None or not parts[2]:
            return None
        _, keys, values = parts
        if not all(isinstance(v, torch.Tensor) and v.dim() >= 1 and v.layout == torch.strided
                   and len(v) == len(values[0]) for v in values):
            return None
        layout = {k: (v.dtype, tuple(v.shape[1:])) for k, v in zip(keys, values)}
        return cls(layout, max(rows, len(values[0])), count)

    def write(self, k: int, batch: Any) -> SlotRef | None:
        """Copy batch number ``k`` into its slot (in a worker); None if it does not fit."""
        parts = _parts(batch)
        if parts is None:
            return None
        kind, keys, values = parts
        if set(keys) != set(self.layout) or not values:
            return None
        n = len(values[0])
        for key, v in zip(keys, values):
            dtype, shape = self.layout[key]
            if not isinstance(v, torch.Tensor) or v.dtype != dtype or tuple(v.shape[1:]) != shape \
                    or len(v) != n or n > self.rows or v.layout != torch.strided:
                return None
        slot = k % self.count
        for key, v in zip(keys, values):
            self.buffers[key][slot, :n].copy_(v)
        return SlotRef(slot, n, kind, keys)

    def read(self, ref: SlotRef) -> Any:
        """The batch in ``ref``'s slot, copied out into memory the caller owns."""
        values = [self.buffers[k][ref.slot, :ref.rows].clone() for k in ref.keys]
        if ref.kind == "dict":
            return dict(zip(ref.keys, values))
        return tuple(values) if ref.kind == "tuple" else values
