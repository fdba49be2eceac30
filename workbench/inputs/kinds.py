"""What kind of input a path or an object is: the one table ``convert`` and ``open_dataset`` share.

Both entry points call :func:`kind_of` first, so they accept the same inputs: every kind below is
converted by ``convert``; ``open_dataset`` opens the random-access kinds and, for a stream-only kind
(CSV, Python iterables), raises an error that says to convert it first. A new kind is one
:class:`Kind` in :data:`KINDS`: how it is recognized, and the functions that open it.

>>> kind_of("train.csv.gz", must_exist=False), kind_of(np.zeros(3))
('csv', 'array')
>>> KINDS["hdf5"].accepts_key, resolve(KINDS["npy"].source).__name__
(True, 'single_source')
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, SourceNotFoundError

__all__: list[str] = []


@dataclass(frozen=True)
class Kind:
    """One input kind: the facts :func:`kind_of` recognizes it by, and what opens it.

    The openers are ``"package.module:function"`` references, imported only when called (so
    ``inputs`` names ``datasets`` functions without importing them). ``source`` is called as
    ``source(path_or_obj, *, columns, drop, target, sparse, nan, dtype, **extra)`` (a path given
    as ``str``) and returns a convert ``Source``; ``dataset`` as ``dataset(source, where, columns,
    *, sparse, dtype, **extra)`` and returns a ``BaseDataset``, None for a stream-only kind;
    ``inspect`` (None: ``wb.inspect`` refuses the kind) as ``inspect(path_or_obj, key)`` (``key``
    an HDF5 key or None) and returns ``wb.inspect``'s ``(source, kind, title, arrays, extra)``.
    ``extra`` holds ``key=`` where ``accepts_key``, ``sparse_dims=`` (dataset) where
    ``accepts_sparse_dims``, and the ``open_source`` arguments named in ``source_options``.
    """

    name: str
    source: str
    dataset: str | None = None
    inspect: str | None = None
    suffixes: tuple[str, ...] = ()  # a path whose name ends so (also when it need not exist)
    magic: bytes = b""  # a file that starts so
    folder: Callable[[Path], bool] | None = None  # an existing folder of this kind
    test: Callable[[Any], bool] | None = None  # an object of this kind; the first match wins
    label: str | None = None  # how open_dataset's messages name such an object
    accepts_key: bool = False
    accepts_sparse_dims: bool = False
    source_options: tuple[str, ...] = ()  # "encoding", "iterable"


def is_dask_array(obj: Any) -> bool:
    return (
        type(obj).__module__.startswith("dask")
        and hasattr(obj, "chunks")
        and hasattr(obj, "compute")
    )


def is_dask_frame(obj: Any) -> bool:
    return (
        type(obj).__module__.startswith("dask")
        and hasattr(obj, "npartitions")
        and not hasattr(obj, "chunks")
    )


def is_torch(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "detach")


def is_scipy_sparse(obj: Any) -> bool:
    return type(obj).__module__.startswith("scipy.sparse") and hasattr(obj, "tocsr")


def is_table(obj: Any) -> bool:
    mod = type(obj).__module__
    if mod.startswith("pyarrow"):
        return type(obj).__name__ in ("Table", "RecordBatch")
    return mod.startswith("pandas") and hasattr(obj, "columns") and hasattr(obj, "iloc")


def _is_sparse(obj: Any) -> bool:
    from ..format.sparse import CSR

    return isinstance(obj, CSR) or is_scipy_sparse(obj)


def _is_array(obj: Any) -> bool:
    import numpy as np

    return isinstance(obj, np.ndarray)


def _is_dict(obj: Any) -> bool:
    return isinstance(obj, dict)


def _is_iterable(obj: Any) -> bool:
    return hasattr(obj, "__iter__") and not isinstance(obj, (bytes, bytearray))


def _is_dataset_folder(p: Path) -> bool:
    from ..format.catalog import is_dataset_dir

    return is_dataset_dir(p) or any(p.glob("v-*.partial"))


def _lazy(ref: str) -> Callable[[Any], bool]:  # a test in the kind's module, imported when asked
    return lambda obj: bool(resolve(ref)(obj))


def _is_parquet_folder(p: Path) -> bool:
    return any(f.is_file() for f in p.rglob("*.parquet"))


_IN = "workbench.inputs."
_DS = "workbench.datasets:"
_EX = "workbench.explore.sources:"  # wb.inspect's readers
# Objects are tested in this order (iterable last: a dict or a table is iterable too).
KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "dataset",
            _IN + "dataset:DatasetSource",
            _IN + "dataset:folder_dataset",
            inspect=_EX + "dataset_folder",
            folder=_is_dataset_folder,
        ),
        Kind(
            "zarr",
            _IN + "zarrs:zarr_source",
            "workbench.datasets.zarrreader:zarr_dataset",
            inspect="workbench.explore.zarrfacts:zarr_input",
            suffixes=(".zarr", ".zarr.zip", ".zip"),  # a folder, a zip store
            folder=_lazy(_IN + "zarrs:is_zarr_folder"),
            test=_lazy(_IN + "zarrs:is_zarr"),
            label="Zarr array or group",
            accepts_key=True,
        ),
        Kind(
            "xarray",
            _IN + "xarrays:xarray_source",
            "workbench.datasets.xarrayreader:xarray_dataset",
            inspect="workbench.explore.xarrayfacts:xarray_input",
            test=_lazy(_IN + "xarrays:is_xarray"),
            label="xarray object",
        ),
        Kind(
            "parquet",
            _IN + "parquet:ParquetSource",
            _IN + "parquet:parquet_dataset",
            inspect=_EX + "parquet_input",
            suffixes=(".parquet", ".pq"),
            magic=b"PAR1",
            folder=_is_parquet_folder,
            accepts_sparse_dims=True,
        ),
        Kind(
            "npy",
            _IN + "columns:single_source",
            _DS + "array_dataset",
            inspect=_EX + "npy_file",
            suffixes=(".npy",),
            magic=b"\x93NUMPY",
        ),
        Kind(
            "hdf5",
            _IN + "hdf5:h5_source",
            _IN + "hdf5:hdf5_dataset",
            inspect=_EX + "hdf5_file",
            suffixes=(".h5", ".hdf5", ".hdf", ".he5", ".nc"),
            magic=b"\x89HDF\r\n\x1a\n",
            accepts_key=True,
            accepts_sparse_dims=True,
        ),
        Kind("sparse", _IN + "columns:single_source", _DS + "array_dataset", test=_is_sparse),
        Kind(
            "array",
            _IN + "columns:single_source",
            _DS + "array_dataset",
            inspect=_EX + "numpy_array",
            test=_is_array,
        ),
        Kind("tensor", _IN + "columns:single_source", _DS + "array_dataset", test=is_torch),
        Kind(
            "dask",
            _IN + "columns:single_source",
            _DS + "dask_dataset",
            inspect=_EX + "dask_array",
            test=is_dask_array,
            label="dask array",
        ),
        Kind(
            "table",
            _IN + "arrow:table_source",
            _DS + "table_dataset",
            test=is_table,
            label="in-memory table",
        ),
        Kind(
            "dict",
            _IN + "columns:dict_source",
            _DS + "dict_dataset",
            test=_is_dict,
            label="dict of arrays",
        ),
        Kind(
            "csv",
            _IN + "csv:CsvSource",
            suffixes=(".csv", ".csv.gz", ".tsv", ".tsv.gz"),
            source_options=("encoding",),
        ),
        Kind(
            "iterable",
            _IN + "iterables:iterable_source",
            test=_is_iterable,
            source_options=("iterable",),
        ),
    )
}
RANDOM_ACCESS = tuple(name for name, k in KINDS.items() if k.dataset is not None)
STREAM_ONLY = tuple(name for name, k in KINDS.items() if k.dataset is None)
READS = (
    "a workbench dataset folder; CSV/TSV (.csv, .tsv, optionally .gz), Parquet (.parquet, .pq, "
    "or a folder of them), NumPy (.npy) and HDF5 (.h5, .hdf5, .hdf, .he5, .nc) files; a Zarr "
    "folder, zip store (.zarr.zip, .zip) or URL (.zarr); a NumPy array or memmap, a torch "
    "tensor, a Dask array, a zarr Array or Group, an xarray DataArray or Dataset, a CSR or "
    "scipy.sparse matrix, a pyarrow Table or pandas DataFrame, a dict of arrays (columns), or an "
    "iterable of rows/batches"
)


def resolve(ref: str) -> Callable[..., Any]:
    """The function a ``"package.module:function"`` reference names, its module imported now."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)


def kind_of(
    obj: Any, *, missing: type[Exception] = SourceNotFoundError, must_exist: bool = True
) -> str:
    """One of :data:`KINDS` for ``obj``; a path that does not exist raises ``missing``."""
    if isinstance(obj, str) and "://" in obj:
        return _url_kind(obj, missing)
    if isinstance(obj, (str, os.PathLike)):
        return _path_kind(Path(obj), missing, must_exist)
    if is_dask_frame(obj):  # no kind's test takes it, but it is iterable
        raise InvalidInputError(
            "cannot read a dask DataFrame directly: write it with df.to_parquet(folder) and pass "
            "the folder, or pass df.to_dask_array(lengths=True)"
        )
    found = next((k.name for k in KINDS.values() if k.test is not None and k.test(obj)), None)
    if found:
        return found
    raise InvalidInputError(f"cannot read a {type(obj).__name__}; workbench reads {READS}")


def _path_kind(p: Path, missing: type[Exception], must_exist: bool) -> str:
    low = p.name.lower()
    by_suffix = next(
        (k.name for k in KINDS.values() if k.suffixes and low.endswith(k.suffixes)), None
    )
    if not must_exist and by_suffix:
        return by_suffix
    if not p.exists():
        raise missing(f"{p}: no such file or folder; check the path")
    if p.is_dir():
        found = next((k.name for k in KINDS.values() if k.folder is not None and k.folder(p)), None)
        if found:
            return found
        raise missing(
            f"{p}: the folder holds no workbench dataset, no Zarr metadata and no .parquet "
            "files; point at a dataset, a Zarr store, a file, or a folder of .parquet files"
        )
    if by_suffix:
        return by_suffix
    with open(p, "rb") as f:
        head = f.read(8)
    found = next((k.name for k in KINDS.values() if k.magic and head.startswith(k.magic)), None)
    if found:
        return found
    raise InvalidInputError(
        f"{p}: unknown file type {p.suffix or '(no suffix)'!r}; workbench reads "
        f"{READS} (rename the file if it is one of those)"
    )


def _url_kind(url: str, missing: type[Exception]) -> str:
    if url.rstrip("/").lower().endswith(".zarr"):  # a URL's suffix names its kind: none is read
        return "zarr"
    raise missing(f"{url}: only a Zarr store URL (ending .zarr) is read as a URL here; check it")
