"""What every reader shares: the Dataset protocol, index planning, bounds and display (the
numpy → torch step is :mod:`.tensors`).

A reader subclasses :class:`BaseDataset` and implements ``_read(plan) -> Chunk`` (rows in the
order of ``plan.idx``); everything else (bounds, ordering facts, sparse expansion, dtype casts,
``__getitem__``, ``__repr__``) lives here.

>>> ds = wb.open_dataset("demo_data/demo.store")          # any reader
>>> batch = ds.get_batch([0, 1, 2])
>>> {name: tuple(t.shape) for name, t in batch.items()}
{'features': (3, 16), 'tokens': (3, 1000), 'label': (3,)}
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InvalidInputError
from ..format.manifest import Column, Manifest
from ..format.sparse import CSR
from .plan import Plan, plan_for
from .samples import Row, Rows
from .tensors import numpy_dtype, to_torch
from .tensors import shared_tensor as shared_tensor  # its old home, for bench/ and arrays

__all__: list[str] = []

SPARSE_MODES = ("dense", "coo", "csr")


@dataclass
class ReadStats:
    """Per-process counters: ``reads`` = storage ranges / row groups / blocks fetched."""

    reads: int = 0
    batches: int = 0
    rows: int = 0
    cache_hits: int = 0

    def reset(self) -> None:
        self.reads = self.batches = self.rows = self.cache_hits = 0


def pow2_block_rows(row_nbytes: int, target: int = 4 << 20) -> int:
    """Rows in about ``target`` bytes, as a power of two, at least 64."""
    rows = max(1, target // max(1, row_nbytes))
    return max(64, 1 << (rows.bit_length() - 1))


def empty_chunk(cols: tuple[Column, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in cols:
        if c.sparse:
            vals = np.empty(0, c.dtype) if c.has_values else None
            out[c.name] = CSR(np.zeros(1, np.int64), np.empty(0, np.int64), vals, c.shape[0])
        else:
            out[c.name] = np.empty((0, *c.shape), c.dtype)
    return out


class BaseDataset(Dataset):
    """Map-style dataset over columns; subclasses implement ``_read(plan)``.

    Attributes: ``columns`` (and ``column_specs``, their :class:`Column` s), ``block_rows``,
    ``row_nbytes``, ``manifest`` and ``version_dir`` (None for foreign sources), ``stats``
    (:class:`ReadStats`, per process), ``sparse``, ``dtype``, ``ram_tier`` (None, or the
    :class:`~.ramtier.RamTier` of ``open_dataset(..., cache="ram")``: ``describe()``, ``info()``).
    """

    kind = "base"
    ram_tier: Any = None  # the RAM tier (datasets.ramtier.RamTier) of open_dataset(cache="ram")

    def __init__(
        self,
        cols: tuple[Column, ...],
        n: int,
        *,
        where: str,
        sparse: str = "dense",
        dtype: Any = None,
        manifest: Manifest | None = None,
        version_dir: Path | None = None,
    ) -> None:
        if sparse not in SPARSE_MODES:
            raise InvalidInputError(f"{where}: sparse={sparse!r}; use one of {SPARSE_MODES}")
        self._cols = cols
        self.columns = tuple(c.name for c in cols)
        self._n = int(n)
        self.where = where
        self.sparse = sparse
        self.dtype = numpy_dtype(dtype, where)
        self.manifest = manifest
        self.version_dir = version_dir  # the committed version folder of a workbench dataset
        self.stats = ReadStats()
        self.block_rows = 64
        self.row_nbytes = sum(c.row_bytes for c in cols if not c.sparse)

    @property
    def column_specs(self) -> tuple[Column, ...]:
        """The selected columns as the manifest describes them (name, dtype, shape, sparse)."""
        return self._cols

    _uncast_dtypes: dict[str, np.dtype] | None = None

    def _uncast(self) -> dict[str, np.dtype]:
        """Dense column -> its stored dtype, for the columns a batch keeps in it (``_to_torch``
        casts float columns to ``dtype``)."""
        if self._uncast_dtypes is None:
            dts = {c.name: np.dtype(c.dtype) for c in self._cols if not c.sparse}
            self._uncast_dtypes = {
                k: d
                for k, d in dts.items()
                if self.dtype is None or d.kind != "f" or d == self.dtype
            }
        return self._uncast_dtypes

    @property
    def dense_row_nbytes(self) -> int:
        """Bytes a row takes in a batch (``row_nbytes``) where every column is dense and kept in
        its stored dtype; 0 where a batch's size must be measured."""
        return self.row_nbytes if len(self._uncast()) == len(self._cols) else 0

    # -- protocol -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> Row:
        """Row ``i`` as a sample (column -> tensor; sparse columns as dense rows)."""
        i = operator.index(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(
                f"{self.where}: row {i} out of range for {self._n} rows; "
                "use -len(ds) <= i < len(ds)"
            )
        chunk = self._read(Plan.run(i, 1))
        return Row({k: v[0] for k, v in self._to_torch(chunk, "dense").items()})

    def __getitems__(self, indices: Any) -> Rows:
        """PyTorch's batched read: the samples at ``indices``, read in one pass (see
        :class:`Rows`)."""
        return Rows(self.get_batch(indices), len(indices))

    def get_batch(
        self, indices: Any, out: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """The rows at ``indices`` (list, range, array or tensor; any order, repeats allowed) as
        one collated batch: column -> tensor of ``len(indices)`` rows, in the order asked.

        ``out``: column -> a C-contiguous tensor of ``len(indices)`` rows to read into (as torch's
        ``out=``); the batch returned is then ``out``, read straight into it where the reader can
        (one copy instead of a gather and a copy), else copied there."""
        self.stats.batches += 1
        if not len(indices):
            return self._to_torch(empty_chunk(self._cols), self.sparse)
        plan = plan_for(indices, self._n, self.where)
        self.stats.rows += plan.k
        if out is None:
            got = self._views(plan.lo, plan.hi + 1) if plan.contiguous else None
            return got if got is not None else self._to_torch(self._read(plan), self.sparse)
        self._check_out(out, plan.k)
        if not self._read_to_out(plan, {k: v.numpy() for k, v in out.items()}):
            for k, v in self._to_torch(self._read(plan), self.sparse).items():
                out[k].copy_(v)
        return out

    def _check_out(self, out: dict[str, torch.Tensor], k: int) -> None:
        if set(out) != set(self.columns):
            raise InvalidInputError(
                f"{self.where}: out= has columns {sorted(out)}; give one "
                f"tensor for each of {list(self.columns)}"
            )
        for name, v in out.items():
            if len(v) != k or not v.is_contiguous() or v.device.type != "cpu":
                raise InvalidInputError(
                    f"{self.where}: out[{name!r}] is a {tuple(v.shape)} tensor on {v.device}; "
                    f"give a C-contiguous CPU tensor of {k} rows (one per index)"
                )

    def _read(self, plan: Plan) -> dict[str, Any]:
        raise NotImplementedError

    def _views(self, lo: int, hi: int) -> dict[str, torch.Tensor] | None:
        """Rows ``[lo, hi)`` as tensors straight from the source, where a reader can; None:
        :meth:`_read` them."""
        return None

    # whether this reader starts batches in the background (``datasets.protocols.ReadsAhead``:
    # start_batch / finish_batch, which only readers that can define)
    reads_ahead = False

    def read_chunk(self, start: int, stop: int) -> dict[str, Any]:
        """Rows ``[start, stop)`` as stored (numpy arrays and CSRs: a chunk, no torch)."""
        if stop <= start:
            return empty_chunk(self._cols)
        return self._read(Plan.run(start, stop - start))

    def _read_to_out(self, plan: Plan, out: dict[str, np.ndarray]) -> bool:
        """Read the batch straight into ``out`` (numpy views of the caller's tensors) where this
        reader can; False: :meth:`get_batch` reads it as usual and copies it there."""
        return False

    def _to_torch(self, chunk: dict[str, Any], sparse: str) -> dict[str, torch.Tensor]:
        return to_torch(chunk, self._cols, sparse, self.dtype)

    # -- display --------------------------------------------------------------------------
    def describe_source(self) -> str:
        return self.where

    def __repr__(self) -> str:
        lines = [
            f"{type(self).__name__}({self.kind}, {self._n:,} rows, row_nbytes={self.row_nbytes:,}, "
            f"block_rows={self.block_rows:,}, sparse={self.sparse!r}"
            + (f", dtype={self.dtype}" if self.dtype is not None else "")
            + ")",
            f"  source: {self.describe_source()}",
        ]
        target = self.manifest.target if self.manifest is not None else None
        for c in self._cols:
            kind = f"sparse dim={c.shape[0]}" if c.sparse else f"shape={c.shape}"
            lines.append(
                f"  {c.name}: {c.dtype} {kind}" + ("  [target]" if c.name == target else "")
            )
        return "\n".join(lines)


def sparse_row_nbytes(c: Column, nnz: int, rows: int) -> int:
    """Stored bytes per row of a sparse column: indptr entry + its share of indices/values."""
    per = np.dtype(c.index_dtype).itemsize + (np.dtype(c.dtype).itemsize if c.has_values else 0)
    return int(8 + round(per * nnz / max(1, rows)))
