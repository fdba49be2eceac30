"""Samples as PyTorch's ``Dataset`` contract wants them, read as whole batches all the same.

``ds[i]`` is a :class:`Row` (a dict of column -> tensor) and ``ds.__getitems__(indices)`` is
:class:`Rows`, a sequence of samples, so ``torch.utils.data.DataLoader``, ``Subset``,
``random_split`` and a ``collate_fn`` written for lists of samples all work. ``Rows`` holds the
batch already collated: torch's ``default_collate`` finds :class:`Row` in its ``collate_fn_map``
(the extension point it documents) and hands that batch back in one step, without stacking rows.

>>> rows = Rows({"x": torch.arange(6).reshape(3, 2)}, 3)
>>> rows[1], torch.utils.data.default_collate(rows)["x"].shape
({'x': tensor([2, 3])}, torch.Size([3, 2]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import default_collate

__all__: list[str] = []


class Row(dict):
    """One sample: column -> that row's tensor (sparse columns as dense rows)."""


class Rows(Sequence):
    """``n`` samples backed by one collated batch (``rows.batch``: column -> tensor of n rows)."""

    __slots__ = ("batch", "n")

    def __init__(self, batch: dict[str, torch.Tensor], n: int) -> None:
        self.batch, self.n = batch, n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return Rows({k: v[i] for k, v in self.batch.items()}, len(range(*i.indices(self.n))))
        if not -self.n <= i < self.n:
            raise IndexError(f"sample {i} out of range for {self.n} rows")
        return Row({k: v[i] for k, v in self.batch.items()})

    def __repr__(self) -> str:
        cols = ", ".join(
            f"{k}: {str(v.dtype).replace('torch.', '')}{list(v.shape[1:])}"
            for k, v in self.batch.items()
        )
        return f"Rows({self.n} samples; {cols})"


def collate_rows(batch: Sequence[Row], *, collate_fn_map: Any = None) -> dict[str, torch.Tensor]:
    """``default_collate`` for our samples: a :class:`Rows` is already collated; a plain list of
    rows (``ConcatDataset``, per-item reads, a filtered list) is stacked column by column."""
    if isinstance(batch, Rows):
        return batch.batch
    return {k: default_collate([r[k] for r in batch]) for k in batch[0]}


def _register() -> None:
    from torch.utils.data._utils.collate import default_collate_fn_map

    default_collate_fn_map.setdefault(Row, collate_rows)


_register()
