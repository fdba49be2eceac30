"""CSR rows: the in-memory form of a sparse column, and its vectorised expansion.

>>> rows = CSR.from_lists([[1, 4], [], [0]], dim=5)
>>> rows.take(np.array([2, 0])).to_dense()   # rows 2 and 0, expanded
array([[1., 0., 0., 0., 0.],
       [0., 1., 0., 0., 1.]], dtype=float32)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInputError

__all__ = ["CSR"]


@dataclass(frozen=True)
class CSR:
    """``n`` sparse rows of width ``dim``: row i holds ``indices[indptr[i]:indptr[i+1]]``.

    Parameters
    ----------
    indptr : numpy.ndarray
        ``n + 1`` offsets into ``indices``; need not start at 0 (slices of a shard's arrays keep
        their offsets).
    indices : numpy.ndarray
        The column index of each nonzero, row after row.
    values : numpy.ndarray or None
        The value of each nonzero, or None for implicit ones (a "list of nonzero indices"
        column).
    dim : int
        The row width.
    """

    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray | None
    dim: int

    def __len__(self) -> int:
        return int(len(self.indptr) - 1)

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1] - self.indptr[0])

    @classmethod
    def from_lists(
        cls,
        rows: Sequence[Sequence[int]],
        dim: int,
        values: Sequence[Sequence[float]] | None = None,
        index_dtype: str = "int64",
        values_dtype: str = "float32",
    ) -> CSR:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = [i for r in rows for i in r]
        indices = np.asarray(flat, dtype=index_dtype)
        vals = None
        if values is not None:
            vals = np.asarray([v for r in values for v in r], dtype=values_dtype)
        return cls(indptr, indices, vals, int(dim))

    @classmethod
    def from_scipy(cls, m: object) -> CSR:
        """Wrap a ``scipy.sparse`` matrix (converted to CSR) without copying its arrays."""
        csr = m.tocsr()  # type: ignore[attr-defined]
        return cls(
            csr.indptr.astype(np.int64, copy=False), csr.indices, csr.data, int(csr.shape[1])
        )

    def compact(self) -> CSR:
        """The same rows with ``indptr`` starting at 0 and arrays trimmed to them."""
        lo, hi = int(self.indptr[0]), int(self.indptr[-1])
        vals = None if self.values is None else self.values[lo:hi]
        return CSR(self.indptr - lo, self.indices[lo:hi], vals, self.dim)

    def slice(self, start: int, stop: int) -> CSR:
        return CSR(self.indptr[start : stop + 1], self.indices, self.values, self.dim)

    def take(self, rows: np.ndarray) -> CSR:
        """Gather ``rows`` (any order, repeats allowed) into a compact CSR, with no Python loop."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows].astype(np.int64)
        lengths = self.indptr[rows + 1].astype(np.int64) - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # positions of every gathered element in the source arrays
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.int64)
        vals = None if self.values is None else np.asarray(self.values[pos])
        return CSR(indptr, np.asarray(self.indices[pos]), vals, self.dim)

    def to_dense(self, dtype: str | np.dtype = "float32") -> np.ndarray:
        c = self.compact()
        out = np.zeros((len(c), c.dim), dtype=dtype)
        row = np.repeat(np.arange(len(c)), np.diff(c.indptr))
        out[row, c.indices] = 1 if c.values is None else c.values
        return out


def concat(parts: Sequence[CSR]) -> CSR:
    """Stack CSR row blocks of the same width into one compact CSR."""
    parts = [p.compact() for p in parts]
    if not parts:
        raise InvalidInputError("concat needs at least one CSR block; pass a non-empty list")
    dim = parts[0].dim
    offsets = np.cumsum([0] + [p.nnz for p in parts[:-1]])
    indptr = np.concatenate(
        [parts[0].indptr[:1]] + [p.indptr[1:] + o for p, o in zip(parts, offsets)]
    )
    indices = np.concatenate([p.indices for p in parts])
    vals = None if parts[0].values is None else np.concatenate([p.values for p in parts])  # type: ignore[misc]
    return CSR(indptr.astype(np.int64), indices, vals, dim)
