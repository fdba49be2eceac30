"""What kind of input a path or an object is: the one table ``convert`` and ``open_dataset`` share.

Both entry points call :func:`kind_of` first, so they accept the same inputs: every kind below is
converted by ``convert``; ``open_dataset`` opens the random-access kinds and, for a stream-only kind
(CSV, Python iterables), raises an error that says to convert it first.

>>> kind_of("train.csv.gz", must_exist=False), kind_of(np.zeros(3))
('csv', 'array')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, SourceNotFoundError

__all__: list[str] = []

SUFFIXES = {
    "csv": (".csv", ".csv.gz", ".tsv", ".tsv.gz"),
    "parquet": (".parquet", ".pq"),
    "npy": (".npy",),
    "hdf5": (".h5", ".hdf5", ".hdf", ".he5", ".nc"),
}
MAGIC = {"npy": b"\x93NUMPY", "hdf5": b"\x89HDF\r\n\x1a\n", "parquet": b"PAR1"}
RANDOM_ACCESS = ("dataset", "parquet", "npy", "hdf5", "array", "sparse", "tensor", "dask", "dict",
                 "table")
STREAM_ONLY = ("csv", "iterable")
KINDS = RANDOM_ACCESS + STREAM_ONLY
READS = ("a workbench dataset folder; CSV/TSV (.csv, .tsv, optionally .gz), Parquet (.parquet, .pq, "
         "or a folder of them), NumPy (.npy) and HDF5 (.h5, .hdf5, .hdf, .he5, .nc) files; a NumPy "
         "array or memmap, a torch tensor, a Dask array, a CSR or scipy.sparse matrix, a pyarrow "
         "Table or pandas DataFrame, a dict of arrays (columns), or an iterable of rows/batches")


def is_dask_array(obj: Any) -> bool:
    return type(obj).__module__.startswith("dask") and hasattr(obj, "chunks") and hasattr(obj, "compute")


def is_dask_frame(obj: Any) -> bool:
    return type(obj).__module__.startswith("dask") and hasattr(obj, "npartitions") and not hasattr(obj, "chunks")


def is_torch(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def is_scipy_sparse(obj: Any) -> bool:
    return type(obj).__module__.startswith("scipy.sparse") and hasattr(obj, "tocsr")


def is_table(obj: Any) -> bool:
    mod = type(obj).__module__
    if mod.startswith("pyarrow"):
        return type(obj).__name__ in ("Table", "RecordBatch")
    return mod.startswith("pandas") and hasattr(obj, "columns") and hasattr(obj, "iloc")


def kind_of(obj: Any, *, missing: type[Exception] = SourceNotFoundError, must_exist: bool = True) -> str:
    """One of :data:`KINDS` for ``obj``; a path that does not exist raises ``missing``."""
    if isinstance(obj, (str, os.PathLike)):
        return _path_kind(Path(obj), missing, must_exist)
    from ..format.sparse import CSR

    if isinstance(obj, CSR) or is_scipy_sparse(obj):
        return "sparse"
    import numpy as np

    if isinstance(obj, np.ndarray):
        return "array"
    if is_torch(obj):
        return "tensor"
    if is_dask_array(obj):
        return "dask"
    if is_dask_frame(obj):
        raise InvalidInputError(
            "cannot read a dask DataFrame directly: write it with df.to_parquet(folder) and pass "
            "the folder, or pass df.to_dask_array(lengths=True)")
    if is_table(obj):
        return "table"
    if isinstance(obj, dict):
        return "dict"
    if hasattr(obj, "__iter__") and not isinstance(obj, (bytes, bytearray)):
        return "iterable"
    raise InvalidInputError(f"cannot read a {type(obj).__name__}; workbench reads {READS}")


def _path_kind(p: Path, missing: type[Exception], must_exist: bool) -> str:
    low = p.name.lower()
    by_suffix = next((k for k, sfx in SUFFIXES.items() if low.endswith(sfx)), None)
    if not must_exist and by_suffix:
        return by_suffix
    if not p.exists():
        raise missing(f"{p}: no such file or folder; check the path")
    if p.is_dir():
        from ..format.catalog import is_dataset_dir

        if is_dataset_dir(p) or any(p.glob("v-*.partial")):
            return "dataset"
        if any(f.is_file() for f in p.rglob("*.parquet")):
            return "parquet"
        raise missing(f"{p}: the folder holds no workbench dataset and no .parquet files; point at "
                      "a dataset, a file, or a folder of .parquet files")
    if by_suffix:
        return by_suffix
    with open(p, "rb") as f:
        head = f.read(8)
    found = next((k for k, magic in MAGIC.items() if head.startswith(magic)), None)
    if found:
        return found
    raise InvalidInputError(f"{p}: unknown file type {p.suffix or '(no suffix)'!r}; workbench reads "
                            f"{READS} (rename the file if it is one of those)")
