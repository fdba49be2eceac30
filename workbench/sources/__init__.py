"""Raw inputs read chunk by chunk and validated; this package never writes.

>>> src = open_source("train.csv", target="label")
>>> for first_row, chunk in src.chunks(65536): ...   # chunk: {"features": (n, k) f32, "label": (n,)}

Dispatch on ``obj``: a path (``.csv``/``.csv.gz``/``.tsv``[.gz], ``.parquet``/``.pq`` or a folder of
them, ``.npy``, ``.h5``/``.hdf5``), a NumPy array or memmap, a torch tensor, a dask array, a
``CSR`` or scipy.sparse matrix, a ``pyarrow.Table`` or pandas DataFrame, a dict of column -> any of
those (or a ``.npy`` path), or any other iterable (rows or batches; see :mod:`.iterables`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InvalidInputError, SourceNotFoundError
from ..sparse import CSR
from .arrays import _is_dask, _is_scipy_sparse, _is_torch, dict_source, single_source
from .base import Chunk, Source
from .csvfile import CsvSource
from .hdf5 import h5_source
from .iterables import IterableSource, detect
from .parquet import ParquetSource
from .tabular import FEATURES, ArrowTableSource

__all__ = ["FEATURES", "Chunk", "Source", "detect", "open_source"]

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
HDF5_SUFFIXES = (".h5", ".hdf5")


def open_source(obj: Any, key: str | list[str] | None = None, columns: list[str] | None = None,
                drop: list[str] | None = None, target: str | None = None,
                sparse: dict[str, int] | None = None, nan: str = "error", dtype: Any = None,
                iterable: str | None = None, encoding: str = "utf8") -> Source:
    """Open ``obj`` as a :class:`Source`, checking what can be checked without reading rows.

    Args:
        obj: path, array-like, table, dict of columns, or iterable (see the module doc).
        key: HDF5 dataset path(s); None = every top-level dataset and CSR group.
        columns / drop: keep only / remove these source columns (target and sparse columns are
            always kept by ``columns=``).
        target: the label column, kept as its own scalar column (never packed).
        sparse: ``{column: width}`` for columns holding lists of nonzero indices.
        nan: ``"error"`` (default) refuses NaN/inf/missing values; ``"allow"`` keeps them.
        dtype: dtype of packed tabular ``"features"`` (default float32); for other sources the
            dtype every floating column (and sparse values) is cast to (default: unchanged).
        iterable: ``"rows"``, ``"batches"`` or None (auto) for Python iterables.
        encoding: text encoding of CSV files.

    >>> src = open_source({"x": np.zeros((8, 2)), "y": np.arange(8)}, target="y")
    >>> src.num_rows, src.splittable             # (8, False)
    """
    if nan not in ("error", "allow"):
        raise InvalidInputError(f"nan={nan!r}: use 'error' (refuse NaN/inf) or 'allow' (keep them)")
    if dtype is not None:
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise InvalidInputError(f"dtype={dtype!r} is not a NumPy dtype; use e.g. 'float32'") from None
    for name, dim in (sparse or {}).items():
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidInputError(f"sparse={{{name!r}: {dim!r}}}: the width must be a positive int")
    opts = dict(columns=columns, drop=drop, target=target, sparse=sparse, nan=nan, dtype=dtype)
    is_path = isinstance(obj, (str, os.PathLike))
    path = os.fspath(obj) if is_path else None
    is_h5 = path is not None and path.lower().endswith(HDF5_SUFFIXES)
    if key is not None and not is_h5:
        raise InvalidInputError("key= only applies to HDF5 files (.h5/.hdf5); leave it out")
    if path is not None:
        return _open_path(path, key, opts, encoding)
    if isinstance(obj, CSR) or _is_scipy_sparse(obj) or isinstance(obj, np.ndarray) \
            or _is_torch(obj) or _is_dask(obj):
        return single_source(obj, nan=nan, dtype=dtype, target=target)
    if type(obj).__module__.startswith("dask") and hasattr(obj, "npartitions"):
        raise InvalidInputError(
            "cannot read a dask DataFrame directly: write it with df.to_parquet(folder) and pass "
            "the folder, or pass df.to_dask_array(lengths=True)"
        )
    table = _as_arrow(obj)
    if table is not None:
        kind = "pandas DataFrame" if type(obj).__module__.startswith("pandas") else "Arrow table"
        return ArrowTableSource(table, description=f"{kind} ({table.num_rows} rows)", **opts)
    if isinstance(obj, dict):
        if not obj:
            raise InvalidInputError("in-memory array: the dict has no columns; give it some")
        return dict_source(obj, **opts)
    if hasattr(obj, "__iter__") and not isinstance(obj, (bytes, bytearray)):
        return IterableSource(obj, mode=iterable, **opts)
    raise InvalidInputError(
        f"cannot read a {type(obj).__name__}: give a file path, an array, a dict of arrays, a "
        "table or an iterable of rows/batches"
    )


def _open_path(path: str, key: Any, opts: dict, encoding: str) -> Source:
    if not os.path.exists(path):
        raise SourceNotFoundError(f"{path}: no such file or folder; check the path")
    low = path.lower()
    if os.path.isdir(path) or low.endswith(PARQUET_SUFFIXES):
        return ParquetSource(path, **opts)
    if low.endswith(CSV_SUFFIXES):
        return CsvSource(path, encoding=encoding, **opts)
    if low.endswith(".npy"):
        return single_source(None, nan=opts["nan"], dtype=opts["dtype"], path=path, target=opts["target"])
    if low.endswith(HDF5_SUFFIXES):
        return h5_source(path, key, **opts)
    raise InvalidInputError(
        f"{path}: unknown file type; workbench reads {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}, "
        ".npy, .h5/.hdf5 and folders of .parquet files (rename the file if it is one of those)"
    )


def _as_arrow(obj: Any) -> Any:
    """A pyarrow Table for Arrow tables/batches and pandas DataFrames, else None."""
    mod = type(obj).__module__
    if mod.startswith("pyarrow"):
        import pyarrow as pa

        if isinstance(obj, pa.RecordBatch):
            return pa.Table.from_batches([obj])
        if isinstance(obj, pa.Table):
            return obj
    if mod.startswith("pandas") and hasattr(obj, "columns") and hasattr(obj, "iloc"):
        import pyarrow as pa

        try:
            return pa.Table.from_pandas(obj, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise InvalidInputError(
                f"in-memory table: a column mixes types ({e}); give each column one type"
            ) from None
    return None
