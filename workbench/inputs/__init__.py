"""Foreign inputs, read chunk by chunk and validated; this package never writes.

``convert`` reads every kind through :func:`open_source`; ``open_dataset`` classifies with the same
:func:`~workbench.inputs.kinds.kind_of` and finds columns with the same scanners (HDF5, Parquet,
arrays), so the two accept the same inputs.

>>> src = open_source({"x": np.zeros((8, 2)), "y": np.arange(8)}, target="y")
>>> src.num_rows, src.splittable
(8, False)

Kinds: a path (``.csv``/``.tsv`` [``.gz``], ``.parquet``/``.pq`` or a folder of them, ``.npy``, an
HDF5 file, a workbench dataset folder), a NumPy array or memmap, a torch tensor, a dask array, a
``CSR`` or scipy.sparse matrix, a ``pyarrow.Table`` or pandas DataFrame, a dict of column -> any of
those (or a ``.npy`` path), or any other iterable (rows or batches; see :mod:`.iterables`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .base import Source
from .kinds import KINDS, kind_of, resolve

__all__: list[str] = []


def open_source(
    obj: Any,
    key: str | list[str] | None = None,
    columns: list[str] | None = None,
    drop: list[str] | None = None,
    target: str | None = None,
    sparse: dict[str, int] | None = None,
    nan: str = "error",
    dtype: Any = None,
    iterable: str | None = None,
    encoding: str = "utf8",
) -> Source:
    """Open ``obj`` as a :class:`Source`, checking what can be checked without reading rows.

    Args:
        obj: path, array-like, table, dict of columns, or iterable (see the module doc).
        key: HDF5 only: a group, a dataset path, or a list of dataset paths; None = the
            datasets and CSR groups at the file's top level.
        columns / drop: keep only / remove these source columns (target and sparse columns are
            always kept by ``columns=``).
        target: the label column, kept as its own scalar column (never packed).
        sparse: ``{column: width}`` for columns holding lists of nonzero indices.
        nan: ``"error"`` (default) refuses NaN/inf/missing values; ``"allow"`` keeps them.
        dtype: dtype of packed tabular ``"features"`` (default float32); for other sources the
            dtype every floating column (and sparse values) is cast to (default: unchanged).
        iterable: ``"rows"``, ``"batches"`` or None (auto) for Python iterables.
        encoding: text encoding of CSV files.
    """
    if nan not in ("error", "allow"):
        raise InvalidInputError(f"nan={nan!r}: use 'error' (refuse NaN/inf) or 'allow' (keep them)")
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise InvalidInputError(
                f"dtype={dtype!r} is not a NumPy dtype; use e.g. 'float32'"
            ) from None
    for name, dim in (sparse or {}).items():
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidInputError(
                f"sparse={{{name!r}: {dim!r}}}: the width must be a positive int; "
                "pass the row width"
            )
    opts = dict(columns=columns, drop=drop, target=target, sparse=sparse, nan=nan, dtype=dtype)
    found = KINDS[kind_of(obj)]
    if key is not None and not found.accepts_key:
        raise InvalidInputError("key= only applies to HDF5 files (.h5/.hdf5); leave it out")
    given = {"encoding": encoding, "iterable": iterable}
    extra = {name: given[name] for name in found.source_options}
    if found.accepts_key:
        extra["key"] = key
    if isinstance(obj, (str, os.PathLike)):
        obj = os.fspath(obj)
    return resolve(found.source)(obj, **opts, **extra)
