"""The :class:`Source` protocol shared by every input kind, and the checks every chunk goes through.

>>> from workbench.inputs import open_source
>>> src = open_source(np.zeros((10, 3), "float32"))
>>> [first for first, _ in src.chunks(4)]
[0, 4, 8]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import xxhash

from ..errors import InvalidInputError, UnsafeInputError
from ..format.chunks import Chunk, row_ranges
from ..format.sparse import CSR

__all__: list[str] = []


_NAN_HINT = "clean or fill it at the source, or pass nan='allow' to keep NaN/inf values"


class Source:
    """Raw rows read chunk by chunk; subclasses implement ``_read`` and/or ``_chunks``.

    Every chunk handed out passes :meth:`_check`: same keys, dtypes and row shapes as the first
    one, no object data, sparse indices in range, and (unless ``nan="allow"``) only finite floats.
    """

    description: str = "source"
    path: str | None = None
    where: str = "in-memory array"  # how error messages name the input
    num_rows: int | None = None
    estimated_rows: int | None = None  # a guess when num_rows is unknown (CSV: from its first MiB)
    splittable: bool = False
    nan: str = "error"
    # Row offsets of storage blocks (Parquet row groups, dask blocks), ending with num_rows, or
    # None: read() ranges aligned to them avoid decoding a block twice.
    block_offsets: np.ndarray | None = None

    def __init__(self) -> None:
        self.feature_names: dict[str, tuple[str, ...]] = {}
        self._spec: dict[str, tuple] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.description}>"

    def fingerprint(self) -> str | None:
        """A stable digest of the input (None: it cannot be re-read, so a resume is impossible)."""
        return None

    def read(self, start: int, stop: int) -> Chunk:
        """Rows ``[start, stop)`` as one validated chunk (random-access sources only).

        >>> from workbench.inputs import open_source
        >>> src = open_source(np.zeros((10, 3), "float32"))
        >>> src.read(0, 2)["x"].shape
        (2, 3)
        """
        n = self.num_rows
        if n is None or not 0 <= start <= stop <= n:
            raise InvalidInputError(
                f"{self.where}: cannot read rows [{start}, {stop}) of {n} rows; "
                "ask for a range inside the source (use chunks() for sources of unknown length)"
            )
        chunk = self._read(start, stop)
        self._check(start, chunk)
        return chunk

    def chunks(self, chunk_rows: int, start: int = 0) -> Iterator[tuple[int, Chunk]]:
        """Yield ``(first_row, chunk)`` in order for rows ``[start, ...)``, ~``chunk_rows`` each.

        >>> from workbench.inputs import open_source
        >>> src = open_source(np.zeros((10, 3), "float32"))
        >>> [(first, len(chunk["x"])) for first, chunk in src.chunks(4, start=5)]
        [(5, 4), (9, 1)]
        """
        if int(chunk_rows) < 1 or int(start) < 0:
            raise InvalidInputError(
                f"chunk_rows must be >= 1 and start >= 0, got {chunk_rows}, {start}; pass those"
            )
        for first, chunk in self._chunks(int(chunk_rows), int(start)):
            self._check(first, chunk)
            yield first, chunk

    def _read(self, start: int, stop: int) -> Chunk:
        raise InvalidInputError(
            f"{self.where}: this source can only be read in order; use chunks()"
        )

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        for a, b in row_ranges(self.num_rows or 0, chunk_rows, start):
            yield a, self._read(a, b)

    # ---- validation -------------------------------------------------------------------------

    def _check(self, first: int, chunk: Chunk) -> None:
        if not chunk:
            raise InvalidInputError(f"{self.where}: no columns to read; select at least one column")
        spec = {k: _spec_of(self.where, first, k, v) for k, v in chunk.items()}
        lengths = {k: len(v) for k, v in chunk.items()}
        if len(set(lengths.values())) > 1:
            raise InvalidInputError(
                f"{self.where}: rows from {first}: columns have different lengths {lengths}; "
                "give every column the same number of rows"
            )
        if self._spec is None:
            self._spec = spec
        elif spec != self._spec:
            _explain_mismatch(self.where, first, self._spec, spec)
        for k, v in chunk.items():
            if isinstance(v, CSR):
                check_indices(self.where, first, k, v)
                if self.nan == "error" and v.values is not None:
                    _check_finite_csr(self.where, first, k, v)
            elif self.nan == "error" and v.dtype.kind in "fc":
                _check_finite(self.where, first, k, v, self.feature_names.get(k))


def _spec_of(where: str, first: int, name: str, v: Any) -> tuple:
    if isinstance(v, CSR):
        for part in (v.indices, v.values):
            if part is not None and part.dtype.hasobject:
                raise UnsafeInputError(
                    f"{where}: column {name!r} holds Python objects; give numbers"
                )
        vals = None if v.values is None else str(v.values.dtype)
        return ("sparse", str(v.indices.dtype), vals, v.dim)
    if not isinstance(v, np.ndarray):
        raise InvalidInputError(
            f"{where}: column {name!r} is a {type(v).__name__}, not an array; give a NumPy array"
        )
    check_numeric(where, name, v.dtype, first)
    return ("dense", str(v.dtype), v.shape[1:])


def check_numeric(where: str, name: str, dtype: np.dtype, row: int | None = None) -> None:
    """Refuse object dtypes (unsafe) and strings/dates (need encoding), naming ``name``."""
    at = "" if row is None else f"row {row}, "
    if dtype.hasobject:
        raise UnsafeInputError(
            f"{where}: {at}column {name!r} has object dtype (arbitrary Python objects); "
            "workbench refuses to read those: convert it to a numeric array first"
        )
    if dtype.kind not in "biuf" or dtype.fields is not None:
        raise InvalidInputError(
            f"{where}: {at}column {name!r} is not numeric (dtype {dtype}); "
            f"drop it (drop=[{name!r}]) or encode it to numbers first"
        )


def _explain_mismatch(where: str, first: int, want: dict, got: dict) -> None:
    if set(want) != set(got):
        raise InvalidInputError(
            f"{where}: rows from {first} have columns {sorted(got)}, expected {sorted(want)} "
            "(from the first rows); give every row/batch the same columns"
        )
    for k in want:
        if want[k] != got[k]:
            raise InvalidInputError(
                f"{where}: row {first}, column {k!r}: expected {_fmt(want[k])}, got {_fmt(got[k])} "
                "(the first rows fix the type); give every row/batch the same dtype and shape"
            )


def _fmt(spec: tuple) -> str:
    if spec[0] == "dense":
        return f"dtype {spec[1]} row shape {spec[2]}"
    return f"sparse width {spec[3]} (indices {spec[1]}, values {spec[2]})"


def _check_finite(
    where: str, first: int, name: str, a: np.ndarray, names: Sequence[str] | None
) -> None:
    ok = np.isfinite(a)
    if ok.all():
        return
    bad = np.argwhere(~ok)[0]
    row, col = first + int(bad[0]), name
    if names is not None and len(bad) == 2:
        col = names[int(bad[1])]
    elif len(bad) > 1:
        col = f"{name}[{', '.join(str(int(i)) for i in bad[1:])}]"
    raise InvalidInputError(
        f"{where}: row {row}, column {col!r}: value {a[tuple(bad)]} is NaN/inf or missing; "
        f"{_NAN_HINT}"
    )


def _check_finite_csr(where: str, first: int, name: str, m: CSR) -> None:
    lo, hi = int(m.indptr[0]), int(m.indptr[-1])
    ok = np.isfinite(m.values[lo:hi])  # type: ignore[index]
    if not ok.all():
        pos = lo + int(np.argmin(ok))
        row = first + int(np.searchsorted(m.indptr, pos, side="right")) - 1
        raise InvalidInputError(
            f"{where}: row {row}, column {name!r}: a value is NaN/inf; {_NAN_HINT}"
        )


def check_indices(where: str, first: int, name: str, m: CSR) -> None:
    """Sparse indices must be integers in ``[0, dim)``; the error names the first bad row."""
    if m.indices.dtype.kind not in "iu":
        raise InvalidInputError(
            f"{where}: column {name!r}: sparse indices have dtype {m.indices.dtype}; give integers"
        )
    lo, hi = int(m.indptr[0]), int(m.indptr[-1])
    idx = m.indices[lo:hi]
    if len(idx) == 0:
        return
    bad = (idx < 0) | (idx >= m.dim)
    if bad.any():
        pos = lo + int(np.argmax(bad))
        row = first + int(np.searchsorted(m.indptr, pos, side="right")) - 1
        raise InvalidInputError(
            f"{where}: row {row}, column {name!r}: sparse index {int(m.indices[pos])} is outside "
            f"[0, {m.dim}); fix the data or declare a larger width (sparse={{{name!r}: dim}})"
        )


# ---- helpers shared by the source kinds ---------------------------------------------------------


def file_fingerprint(paths: Sequence[str]) -> str:
    """Digest of names, sizes, mtimes and the first/last 64 KiB of each file (cheap, stable)."""
    h = xxhash.xxh3_64()
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}|".encode())
        with open(p, "rb") as f:
            h.update(f.read(65536))
            if st.st_size > 65536:
                f.seek(max(65536, st.st_size - 65536))
                h.update(f.read(65536))
    return h.hexdigest()


def array_fingerprint(parts: Iterable[tuple[str, Any]]) -> str:
    """Digest of in-memory columns: names, dtypes, shapes and every byte."""
    h = xxhash.xxh3_64()
    for name, v in parts:
        arrays = [v.indptr, v.indices, v.values, np.array(v.dim)] if isinstance(v, CSR) else [v]
        for a in arrays:
            if a is None:
                h.update(b"none")
                continue
            a = np.ascontiguousarray(a)
            h.update(f"{name}|{a.dtype}|{a.shape}|".encode())
            flat = a.reshape(-1).view(np.uint8) if a.size else a.tobytes()
            h.update(flat)
    return h.hexdigest()
