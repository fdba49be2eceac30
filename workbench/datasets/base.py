"""What every reader shares: the Dataset protocol, index planning and the numpy → torch step.

A reader subclasses :class:`BaseDataset` and implements ``_read(plan) -> Chunk`` (rows in the
order of ``plan.idx``); everything else (bounds, ordering facts, sparse expansion, dtype casts,
``__getitem__``, ``__repr__``) lives here.

>>> ds = open_dataset("demo.store")          # any reader
>>> batch = ds.__getitems__([0, 1, 2])        # {"x": tensor (3, ...), ...}
"""

from __future__ import annotations

import operator
from pathlib import Path
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InvalidInputError
from ..manifest import Column, Manifest
from ..sparse import CSR

SPARSE_MODES = ("dense", "coo", "csr")
_QUIET = False  # torch warns once per process about non-writable arrays; we silence that once


def shared_tensor(a: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without torch's one-time "not writable" warning.

    The tensor shares memory with ``a``; for a read-only memmap it is read-only page cache:
    writing into it in place crashes the process (SIGSEGV). Clone it before in-place edits.
    """
    global _QUIET
    if _QUIET:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable",
                                category=UserWarning)
        t = torch.from_numpy(a)
    _QUIET = True
    return t


@dataclass
class ReadStats:
    """Per-process counters: ``reads`` = storage ranges / row groups / blocks fetched."""

    reads: int = 0
    batches: int = 0
    rows: int = 0
    cache_hits: int = 0

    def reset(self) -> None:
        self.reads = self.batches = self.rows = self.cache_hits = 0


class Plan:
    """Facts about one batch of indices, computed once: order, span, contiguity.

    ``idx`` (int64, negatives already wrapped) is built lazily for a contiguous run given as a
    list or range, so the zero-copy path never materialises an index array.
    """

    __slots__ = ("_idx", "k", "lo", "hi", "strict", "ascending", "contiguous", "_u")

    def __init__(self, idx: np.ndarray, n: int, where: str) -> None:
        strict, ascending, lo, hi = _order_facts(idx)
        if lo < 0:  # negative indices count from the end, like Python
            idx = np.where(idx < 0, idx + n, idx)
            strict, ascending, lo, hi = _order_facts(idx)
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{where}: row {bad} out of range for {n} rows; use -len(ds) <= i < len(ds)")
        self._idx, self.k, self.lo, self.hi = idx, idx.size, lo, hi
        self.strict, self.ascending = strict, ascending
        self.contiguous = strict and hi - lo == idx.size - 1
        self._u: tuple[np.ndarray, np.ndarray | None] | None = None

    @classmethod
    def run(cls, lo: int, k: int) -> Plan:
        """The ascending run ``lo, lo+1, ..., lo+k-1`` (already bounds-checked)."""
        p = cls.__new__(cls)
        p._idx, p.k, p.lo, p.hi = None, k, lo, lo + k - 1
        p.strict = p.ascending = p.contiguous = True
        p._u = None
        return p

    @property
    def idx(self) -> np.ndarray:
        if self._idx is None:
            self._idx = np.arange(self.lo, self.hi + 1, dtype=np.int64)
        return self._idx

    def unique(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Sorted unique rows ``u`` and ``inv`` with ``u[inv] == idx`` (None when idx is ``u``)."""
        if self._u is None:
            if self.strict:
                self._u = (self.idx, None)
            else:
                u, inv = np.unique(self.idx, return_inverse=True)
                self._u = (u, inv.reshape(-1))
        return self._u


def _order_facts(idx: np.ndarray) -> tuple[bool, bool, int, int]:
    if idx.size > 1:
        strict = bool((idx[1:] > idx[:-1]).all())
        ascending = strict or bool((idx[1:] >= idx[:-1]).all())
    else:
        strict = ascending = True
    if ascending:
        return strict, ascending, int(idx[0]), int(idx[-1])
    return strict, ascending, int(idx.min()), int(idx.max())


def plan_for(indices: Any, n: int, where: str) -> Plan:
    """A :class:`Plan`; a list or range holding one ascending run skips numpy entirely."""
    if isinstance(indices, range) and indices.step == 1 and len(indices):
        lo, k = indices.start, len(indices)
        if 0 <= lo and lo + k <= n:
            return Plan.run(lo, k)
    elif type(indices) is list and indices:
        lo, k = indices[0], len(indices)
        # cheap pre-check, then one C-level list comparison
        if (type(lo) is int and 0 <= lo and lo + k <= n and indices[-1] - lo == k - 1
                and indices == list(range(lo, lo + k))):
            return Plan.run(lo, k)
    return Plan(as_index(indices), n, where)


def as_index(indices: Any) -> np.ndarray:
    """Any batch of row numbers (list, range, ndarray, tensor) as a 1-d int64 array."""
    if isinstance(indices, range):
        return np.arange(indices.start, indices.stop, indices.step, dtype=np.int64)
    if isinstance(indices, torch.Tensor):
        indices = indices.cpu().numpy()
    if type(indices) is list:
        try:
            return np.fromiter(indices, np.int64, len(indices))
        except (TypeError, ValueError):
            pass  # not plain ints: let numpy say what it is
    idx = np.asarray(indices)
    if idx.dtype != np.int64:
        if idx.size and idx.dtype.kind not in "iu":
            raise IndexError(f"row indices must be integers, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
    return idx.reshape(-1)


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

    Attributes: ``columns``, ``block_rows``, ``row_nbytes``, ``manifest`` and ``version_dir``
    (None for foreign sources), ``stats`` (:class:`ReadStats`, per process), ``sparse``, ``dtype``.
    """

    kind = "base"

    def __init__(self, cols: tuple[Column, ...], n: int, *, where: str, sparse: str = "dense",
                 dtype: Any = None, manifest: Manifest | None = None,
                 version_dir: Path | None = None) -> None:
        if sparse not in SPARSE_MODES:
            raise InvalidInputError(f"{where}: sparse={sparse!r}; use one of {SPARSE_MODES}")
        self._cols = cols
        self.columns = tuple(c.name for c in cols)
        self._n = int(n)
        self.where = where
        self.sparse = sparse
        self.dtype = _numpy_dtype(dtype, where)
        self.manifest = manifest
        self.version_dir = version_dir  # the committed version folder of a workbench dataset
        self.stats = ReadStats()
        self.block_rows = 64
        self.row_nbytes = sum(c.row_bytes for c in cols if not c.sparse)

    # -- protocol -------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        i = operator.index(i)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"{self.where}: row {i} out of range for {self._n} rows")
        chunk = self._read(Plan.run(i, 1))
        return {k: v[0] for k, v in self._to_torch(chunk, "dense").items()}

    def __getitems__(self, indices: Any) -> dict[str, torch.Tensor]:
        self.stats.batches += 1
        if not len(indices):
            return self._to_torch(empty_chunk(self._cols), self.sparse)
        plan = plan_for(indices, self._n, self.where)
        self.stats.rows += plan.k
        return self._to_torch(self._read(plan), self.sparse)

    def _read(self, plan: Plan) -> dict[str, Any]:
        raise NotImplementedError

    # -- numpy -> torch -------------------------------------------------------------------
    def _to_torch(self, chunk: dict[str, Any], sparse: str) -> dict[str, torch.Tensor]:
        out = {}
        for c in self._cols:
            v = chunk[c.name]
            if c.sparse:
                out[c.name] = self._expand(v, sparse)
                continue
            if self.dtype is not None and v.dtype.kind == "f" and v.dtype != self.dtype:
                v = v.astype(self.dtype)
            elif not v.dtype.isnative:
                v = v.astype(v.dtype.newbyteorder("="))
            out[c.name] = shared_tensor(v) if not v.flags.writeable else torch.from_numpy(v)
        return out

    def _expand(self, csr: CSR, sparse: str) -> torch.Tensor:
        dt = self.dtype if self.dtype is not None else np.dtype("float32")
        if sparse == "dense":
            return torch.from_numpy(csr.to_dense(dt))
        c = csr.compact()
        n, nnz = len(c), c.nnz
        vals = torch.from_numpy(np.ones(nnz, dt) if c.values is None else np.array(c.values, dtype=dt))
        cols = torch.from_numpy(np.array(c.indices, dtype=np.int64))
        indptr = np.asarray(c.indptr, dtype=np.int64)
        # invariants hold by construction (CSR.take / compact); checking them would cost a pass
        if sparse == "csr":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta",
                                        category=UserWarning)
                return torch.sparse_csr_tensor(torch.from_numpy(indptr), cols, vals, size=(n, c.dim),
                                               check_invariants=False)
        rows = torch.from_numpy(np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr)))
        return torch.sparse_coo_tensor(torch.stack([rows, cols]), vals, size=(n, c.dim),
                                       check_invariants=False)

    # -- display --------------------------------------------------------------------------
    def describe_source(self) -> str:
        return self.where

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.kind}, {self._n:,} rows, row_nbytes={self.row_nbytes:,}, "
                 f"block_rows={self.block_rows:,}, sparse={self.sparse!r}"
                 + (f", dtype={self.dtype}" if self.dtype is not None else "") + ")",
                 f"  source: {self.describe_source()}"]
        target = self.manifest.target if self.manifest is not None else None
        for c in self._cols:
            kind = f"sparse dim={c.shape[0]}" if c.sparse else f"shape={c.shape}"
            lines.append(f"  {c.name}: {c.dtype} {kind}" + ("  [target]" if c.name == target else ""))
        return "\n".join(lines)


def _numpy_dtype(dtype: Any, where: str) -> np.dtype | None:
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        dtype = torch.empty(0, dtype=dtype).numpy().dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InvalidInputError(f"{where}: dtype={dtype!r} is not a dtype; pass e.g. 'float32'") from None
    if dt.kind != "f":
        raise InvalidInputError(f"{where}: dtype={dt} must be a floating type (it casts float "
                                "columns and sparse expansions); pass e.g. torch.float16")
    return dt


def sparse_row_nbytes(c: Column, nnz: int, rows: int) -> int:
    """Stored bytes per row of a sparse column: indptr entry + its share of indices/values."""
    per = np.dtype(c.index_dtype).itemsize + (np.dtype(c.dtype).itemsize if c.has_values else 0)
    return int(8 + round(per * nnz / max(1, rows)))
