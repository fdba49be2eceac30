"""Rows of Python values stacked into one column: a dense array, or a ``CSR`` of sparse rows, each
value checked against the first row's type and shape (the rows mode of :mod:`.iterables`).

>>> specs = {}
>>> dense_column("x", [[1.0, 2.0], [3.0, 4.0]], 0, specs, None).shape
(2, 2)
>>> sparse_column("tok", [[1, 3], [0]], 0, 5, None).indptr.tolist()
[0, 2, 3]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.sparse import CSR, concat
from .base import check_numeric
from .kinds import is_scipy_sparse

__all__: list[str] = []

WHERE = "iterable"


def dense_column(
    name: str,
    vals: list[Any],
    first: int,
    specs: dict[str, tuple[np.dtype, tuple]],
    dtype: np.dtype | None,
) -> np.ndarray:
    """``vals`` (rows ``first``, ``first + 1``, ...) as one array; ``specs`` keeps each column's
    dtype and row shape from its first row (set here on the first call), ``dtype`` casts floats."""
    if name not in specs:
        a0 = np.asarray(vals[0])
        check_numeric(WHERE, name, a0.dtype, first)
        specs[name] = (dtype if dtype is not None and a0.dtype.kind == "f" else a0.dtype, a0.shape)
    dt, shape = specs[name]
    try:
        arr = np.asarray(vals)
    except ValueError:
        arr = None
    if (
        arr is None
        or arr.shape[1:] != shape
        or arr.dtype.hasobject
        or not np.can_cast(arr.dtype, dt, "same_kind")
    ):
        for i, v in enumerate(vals):
            a = np.asarray(v)
            if a.shape != shape or a.dtype.hasobject or not np.can_cast(a.dtype, dt, "same_kind"):
                raise InvalidInputError(
                    f"iterable: row {first + i}, column {name!r}: expected dtype {dt} shape "
                    f"{shape} (from the first row), got {a.dtype} shape {a.shape}; give every "
                    "row the same type and shape (rows as dicts, e.g. {'x': ..., 'y': ...})"
                )
        arr = np.stack([np.asarray(v) for v in vals])
    return arr.astype(dt, copy=False)


def sparse_column(name: str, vals: list[Any], first: int, dim: int, dtype: np.dtype | None) -> CSR:
    """``vals`` as sparse rows of width ``dim``: each a one-row CSR/scipy.sparse matrix, or a list
    of nonzero indices; ``dtype`` casts floating values."""
    if any(isinstance(v, CSR) or is_scipy_sparse(v) for v in vals):
        parts = []
        for i, v in enumerate(vals):
            m = CSR.from_scipy(v) if is_scipy_sparse(v) else v
            if not isinstance(m, CSR) or len(m) != 1 or m.dim != dim:
                raise InvalidInputError(
                    f"iterable: row {first + i}, column {name!r}: expected one sparse row of "
                    f"width {dim}; give every row the same kind of value"
                )
            parts.append(m)
        m = concat(parts)
    else:
        try:
            m = CSR.from_lists([np.asarray(v).reshape(-1).tolist() for v in vals], dim)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(
                f"iterable: rows from {first}, column {name!r}: not lists of integer indices "
                f"({e}); give each row a list of nonzero indices"
            ) from None
    if m.values is not None and dtype is not None and m.values.dtype.kind == "f":
        m = CSR(m.indptr, m.indices, m.values.astype(dtype), m.dim)
    return m
