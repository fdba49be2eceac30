"""What ``wb.inspect`` is looking at: from an object or a path, by its kind (a workbench dataset,
a ``.npy``, HDF5, Parquet, a NumPy array or memmap, a Dask array, h5py objects, an in-memory
Dataset), its source name, kind, one-line title and each array's facts, read from the storage's
metadata (``metadata``). Paths and arrays dispatch through the kind table
(``inputs.kinds.KINDS``, each kind's ``inspect``); h5py objects and in-memory Datasets are no
kinds and keep a short ladder in :func:`describe`.

>>> describe_path("x.npy")[:3]
('x.npy', 'npy', '.npy file, 1,000 rows')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, SourceNotFoundError
from .facts import ArrayFacts

__all__: list[str] = []

# (source, kind, title, arrays, extra Inspection fields): what every inspector returns.
Described = tuple[str, str, str, list[ArrayFacts], dict[str, Any]]

ACCEPTS = (
    "a workbench dataset folder, a .npy path, a NumPy array or memmap, an HDF5 path "
    '("file.h5" or "file.h5:key") or h5py File/Group/Dataset, a Parquet file or folder, '
    "a Zarr folder, zip store or URL (or a zarr Array/Group), an xarray DataArray/Dataset, "
    "a Dask array, a Dataset from wb.open_dataset, or a wb.loader"
)


def describe(obj: Any) -> Described:
    """``(source, kind, title, arrays, extra Inspection fields)`` of ``obj``, by its kind."""
    from ..inputs.kinds import KINDS, is_dask_array, kind_of, resolve
    from . import metadata as gather

    own = getattr(obj, "inspected", None)  # a Zarr or xarray Dataset: the object beneath
    if hasattr(obj, "get_batch") and callable(own):
        obj = own()
    if hasattr(obj, "get_batch") and hasattr(obj, "where"):  # a Dataset from open_dataset
        where = str(obj.where)
        if os.path.exists(where) or os.path.exists(where.rsplit(":", 1)[0]):
            obj = where
        elif hasattr(obj, "arrays"):  # a MemoryDataset: its own arrays
            arrays = [
                gather.dask_facts(a, n) if is_dask_array(a) else gather.array_facts(a, n)
                for n, a in obj.arrays.items()
                if hasattr(a, "dtype")
            ]
            return where, "arrays", f"Dataset of {len(arrays)} in-memory columns", arrays, {}
    if isinstance(obj, (str, os.PathLike)):
        return describe_path(str(obj))
    # h5py objects are no kind (kind_of calls them iterables): read here, not through KINDS.
    if type(obj).__module__.startswith("h5py"):
        import h5py

        filename = obj.file.filename
        if isinstance(obj, h5py.Dataset):
            return (
                f"{filename}:{obj.name}",
                "hdf5",
                "HDF5 dataset",
                [gather.h5_dataset_facts(obj, obj.name.rsplit("/", 1)[-1], filename)],
                {},
            )
        return (filename, "hdf5", "HDF5 file", gather.hdf5_facts(filename, obj.name), {})
    try:
        inspector = KINDS[kind_of(obj)].inspect
    except InvalidInputError:  # nothing workbench reads (or a dask DataFrame): refused below
        inspector = None
    if inspector is None:
        raise InvalidInputError(
            f"inspect cannot read a {type(obj).__module__}.{type(obj).__name__}; pass {ACCEPTS}"
        )
    return resolve(inspector)(obj, None)


def describe_path(path: str) -> Described:
    """``describe`` for a path (``"file.h5:key"`` names an HDF5 group or dataset)."""
    from ..inputs.kinds import KINDS, kind_of, resolve

    key = None
    if "://" in path:  # a URL (a Zarr store's): nothing on disk to find
        return resolve(str(KINDS[kind_of(path)].inspect))(path, None)
    if not os.path.exists(path) and ":" in path:
        path, key = path.rsplit(":", 1)
    if not os.path.exists(path):
        raise SourceNotFoundError(f"{path}: no such file or folder; check the path")
    kind = kind_of(path)
    if KINDS[kind].inspect is None:
        raise _refused(path, kind)
    return resolve(KINDS[kind].inspect)(path, key)


def _refused(path: str, kind: str) -> InvalidInputError:
    return InvalidInputError(
        f"{path}: inspect reads no {kind} files; pass {ACCEPTS} (convert CSV first: wb.convert)"
    )


# The kinds' inspectors (``Kind.inspect``): ``fn(path_or_obj, key) -> Described``.


def dataset_folder(path: str, key: str | None) -> Described:
    """A workbench dataset folder, with its shards; ``key`` is unused."""
    from ..format.catalog import is_dataset_dir
    from . import metadata as gather

    if not is_dataset_dir(path):  # kind "dataset" also names a folder of v-*.partial only
        raise _refused(path, "dataset")
    version, m, arrays = gather.dataset_facts(path)
    shards = [
        {
            "index": i,
            "rows": s.rows,
            "bytes": sum(f.bytes for f in s.files),
            "paths": [str(version / f.path) for f in s.files],
        }
        for i, s in enumerate(m.shards)
    ]
    title = f"workbench dataset ({m.layout} layout), {m.num_rows:,} rows, {len(m.columns)} columns"
    return path, "dataset", title, arrays, {"shards": shards}


def npy_file(path: str, key: str | None) -> Described:
    """A ``.npy`` file; ``key`` is unused."""
    from . import metadata as gather

    facts = gather.npy_facts(path)
    return path, "npy", f".npy file, {facts.rows:,} rows", [facts], {}


def hdf5_file(path: str, key: str | None) -> Described:
    """An HDF5 file, or its group or dataset ``key``."""
    from . import metadata as gather

    facts_list = gather.hdf5_facts(path, key)
    source = f"{path}:{key}" if key else path
    return source, "hdf5", f"HDF5 file, {len(facts_list)} datasets", facts_list, {}


def parquet_input(path: str, key: str | None) -> Described:
    """A Parquet file or folder; ``key`` is unused."""
    from . import metadata as gather

    facts_list = gather.parquet_facts(path)
    rows = facts_list[0].rows if facts_list else 0
    return path, "parquet", f"Parquet, {rows:,} rows, {len(facts_list)} columns", facts_list, {}


def numpy_array(obj: np.ndarray, key: str | None) -> Described:
    """A NumPy array or memmap (kind ``"memmap"`` when it maps a file); ``key`` is unused."""
    from . import metadata as gather

    kind = "memmap" if isinstance(obj, np.memmap) or getattr(obj, "filename", None) else "array"
    name = Path(obj.filename).name if getattr(obj, "filename", None) else "array"
    return name, kind, f"NumPy {kind}", [gather.array_facts(obj, name)], {}


def dask_array(obj: Any, key: str | None) -> Described:
    """A Dask array, and the Zarr storage beneath one built with ``da.from_zarr``; ``key`` is
    unused."""
    from . import metadata as gather
    from .zarrfacts import zarr_facts, zarr_under

    name = getattr(obj, "name", "dask")[:40]
    facts = [gather.dask_facts(obj, "array")]
    beneath = zarr_under(obj)
    if not beneath:
        return name, "dask", "Dask array", facts, {}
    facts += [zarr_facts(z, f"zarr {z.path or 'array'}") for z in beneath]
    return name, "dask", f"Dask array over {len(beneath)} Zarr array(s)", facts, {}
