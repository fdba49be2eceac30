"""``wb.inspect(obj)``: one look at any array or dataset: shape, dtype, bytes in memory and on
disk, the storage's own chunking, which of its bytes sit in the page cache right now, and what a
batch costs to read in each order. Reads metadata and ``mincore(2)`` only, never the data.

>>> ins = inspect("demo_data/demo.store", batch_size=1024)
>>> ins.kind, [a.name for a in ins.arrays], ins.costs["features"]["sequential"].amplification < 1.2
('dataset', ['features', 'tokens', 'label'], True)
>>> print(str(ins).splitlines()[0])
demo_data/demo.store: workbench dataset (store layout), 2,000 rows, 3 columns
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, SourceNotFoundError
from .facts import ArrayFacts, Cost, access_costs, strip

__all__ = ["Inspection", "inspect"]

DEFAULT_BATCH = 256  # the loader's default batch_size
FALLBACK_BLOCK_ROWS = 4096
ACCEPTS = ("a workbench dataset folder, a .npy path, a NumPy array or memmap, an HDF5 path "
           "(\"file.h5\" or \"file.h5:key\") or h5py File/Group/Dataset, a Parquet file or folder, "
           "a Dask array, a Dataset from wb.open_dataset, or a wb.loader")


@dataclass(repr=False)
class Inspection:
    """The facts ``inspect`` found; ``str()`` for text, rich in JupyterLab, ``to_dict()`` for JSON.

    Parameters
    ----------
    source : str
        The input inspected (a path, or a short name for an in-memory one).
    kind : str
        "dataset", "npy", "hdf5", "parquet", "array", "memmap", "dask" or "arrays".
    arrays : list of ArrayFacts
        Each array or column: shape, dtype, bytes in memory and on disk, its read units.
    batch_size, block_rows : int
        The batch the costs are for, and the block order's unit.
    costs : dict
        ``{array name: {order: Cost}}``: what one batch costs to read in each order.
    residency : list of dict
        Per file: ``path``, ``resident_bytes``, ``total_bytes`` and a ``strip`` of its pages.
    shards : list of dict
        A dataset's shards: ``index``, ``rows``, ``bytes`` and ``resident_fraction``.
    notes : list of str
        What the facts leave out, and why.
    title : str
        One line: what the input is.
    """

    source: str
    kind: str
    arrays: list[ArrayFacts]
    batch_size: int
    block_rows: int
    costs: dict[str, dict[str, Cost]]
    residency: list[dict[str, Any]] = field(default_factory=list)  # per file, with a strip
    shards: list[dict[str, Any]] = field(default_factory=list)     # datasets: per shard
    notes: list[str] = field(default_factory=list)
    title: str = ""

    @property
    def resident_fraction(self) -> float | None:
        total = sum(r["total_bytes"] for r in self.residency)
        return sum(r["resident_bytes"] for r in self.residency) / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "kind": self.kind, "title": self.title,
                "batch_size": self.batch_size, "block_rows": self.block_rows,
                "arrays": [a.to_dict() for a in self.arrays],
                "costs": {n: {o: c.to_dict() for o, c in by.items()} for n, by in self.costs.items()},
                "resident_fraction": self.resident_fraction, "residency": self.residency,
                "shards": self.shards, "notes": self.notes}

    def __repr__(self) -> str:
        return f"Inspection({self.source}: {self.title})"

    def __str__(self) -> str:
        from ..ui.reprs import inspection_text

        return inspection_text(self)

    def _repr_html_(self) -> str:
        from ..ui.reprs import inspection_html

        return inspection_html(self)


def inspect(obj: Any, batch_size: int | None = None) -> Inspection:
    """Inspect ``obj`` (see ``ACCEPTS``); costs are for batches of ``batch_size`` rows (default:
    the loader's own, or 256).

    Parameters
    ----------
    obj : path, array, h5py object, Dask array, dataset or loader
        A workbench dataset folder, a ``.npy``, HDF5 (``"file.h5:key"``) or Parquet path, a
        NumPy array or memmap, an h5py File, Group or Dataset, a Dask array, a Dataset from
        ``wb.open_dataset``, or a ``wb.loader`` (its dataset, with its batch size and blocks).
    batch_size : int, optional
        Rows a batch for the costs.

    Returns
    -------
    Inspection

    Raises
    ------
    SourceNotFoundError
        A path that does not exist.
    InvalidInputError
        An object or a file kind that inspect does not read (convert a CSV first).

    Examples
    --------
    >>> inspect(np.zeros((100, 4), "float32")).arrays[0].storage["in memory"]
    True
    """
    loader = obj if hasattr(obj, "sampler") and hasattr(obj, "dataset") else None
    if loader is not None:
        batch_size = batch_size or loader.batch_size
        obj = loader.dataset
    source, kind, title, arrays, extra = _gather(obj)
    block_rows = _block_rows(obj, loader)
    b = int(batch_size or DEFAULT_BATCH)
    ins = Inspection(source, kind, arrays, b, block_rows,
                     {a.name: access_costs(a, b, block_rows=block_rows) for a in arrays},
                     title=title, **extra)
    files = sorted({f for a in arrays for f in a.files})
    if files:
        ins.residency = _residency(files)
        if _on_tmpfs(files[0]):
            ins.notes.append("on tmpfs: its pages are memory, always resident; evict cannot drop "
                             "them, so cold reads cannot be measured here")
    if ins.shards:
        by_file = {r["path"]: r for r in ins.residency}
        for s in ins.shards:
            parts = [by_file[f] for f in s.pop("paths") if f in by_file]
            total = sum(p["total_bytes"] for p in parts)
            s["resident_fraction"] = sum(p["resident_bytes"] for p in parts) / total if total else 0.0
    return ins


def _gather(obj: Any) -> tuple[str, str, str, list[ArrayFacts], dict[str, Any]]:
    from ..inputs.kinds import is_dask_array
    from . import metadata as gather

    if hasattr(obj, "get_batch") and hasattr(obj, "where"):  # a Dataset from open_dataset
        where = str(obj.where)
        if os.path.exists(where) or os.path.exists(where.rsplit(":", 1)[0]):
            obj = where
        elif hasattr(obj, "arrays"):  # a MemoryDataset: its own arrays
            arrays = [gather.dask_facts(a, n) if is_dask_array(a) else gather.array_facts(a, n)
                      for n, a in obj.arrays.items() if hasattr(a, "dtype")]
            return where, "arrays", f"Dataset of {len(arrays)} in-memory columns", arrays, {}
    if isinstance(obj, (str, os.PathLike)):
        return _gather_path(str(obj))
    if isinstance(obj, np.ndarray):
        kind = "memmap" if isinstance(obj, np.memmap) or getattr(obj, "filename", None) else "array"
        name = Path(obj.filename).name if getattr(obj, "filename", None) else "array"
        return name, kind, f"NumPy {kind}", [gather.array_facts(obj, name)], {}
    if is_dask_array(obj):
        return getattr(obj, "name", "dask")[:40], "dask", "Dask array", [gather.dask_facts(obj, "array")], {}
    if type(obj).__module__.startswith("h5py"):
        import h5py

        filename = obj.file.filename
        if isinstance(obj, h5py.Dataset):
            return (f"{filename}:{obj.name}", "hdf5", "HDF5 dataset",
                    [gather.h5_dataset_facts(obj, obj.name.rsplit("/", 1)[-1], filename)], {})
        return (filename, "hdf5", "HDF5 file", gather.hdf5_facts(filename, obj.name), {})
    raise InvalidInputError(f"inspect cannot read a {type(obj).__module__}.{type(obj).__name__}; "
                            f"pass {ACCEPTS}")


def _gather_path(path: str) -> tuple[str, str, str, list[ArrayFacts], dict[str, Any]]:
    from ..format.catalog import is_dataset_dir
    from ..inputs.kinds import kind_of
    from . import metadata as gather

    key = None
    if not os.path.exists(path) and ":" in path:
        path, key = path.rsplit(":", 1)
    if not os.path.exists(path):
        raise SourceNotFoundError(f"{path}: no such file or folder; check the path")
    if is_dataset_dir(path):
        version, m, arrays = gather.dataset_facts(path)
        shards = [{"index": i, "rows": s.rows, "bytes": sum(f.bytes for f in s.files),
                   "paths": [str(version / f.path) for f in s.files]} for i, s in enumerate(m.shards)]
        title = (f"workbench dataset ({m.layout} layout), {m.num_rows:,} rows, "
                 f"{len(m.columns)} columns")
        return path, "dataset", title, arrays, {"shards": shards}
    kind = kind_of(path)
    if kind == "npy":
        facts = gather.npy_facts(path)
        return path, "npy", f".npy file, {facts.rows:,} rows", [facts], {}
    if kind == "hdf5":
        facts_list = gather.hdf5_facts(path, key)
        return (f"{path}:{key}" if key else path), "hdf5", f"HDF5 file, {len(facts_list)} datasets", \
            facts_list, {}
    if kind == "parquet":
        facts_list = gather.parquet_facts(path)
        rows = facts_list[0].rows if facts_list else 0
        return path, "parquet", f"Parquet, {rows:,} rows, {len(facts_list)} columns", facts_list, {}
    raise InvalidInputError(f"{path}: inspect reads no {kind} files; pass {ACCEPTS} "
                            "(convert CSV first: wb.convert)")


def _block_rows(obj: Any, loader: Any) -> int:
    if loader is not None:
        return int(loader.block_rows)
    own = getattr(obj, "block_rows", None)
    if own:
        return int(own)
    try:
        from ..datasets import open_dataset

        return int(open_dataset(obj).block_rows)
    except Exception:  # not openable as a dataset (a Dask array of unknown source, ...)
        return FALLBACK_BLOCK_ROWS


def _residency(files: list[str]) -> list[dict[str, Any]]:
    from ..monitoring.pagecache import residency

    r = residency(files, pages=True)
    return [{"path": f, "resident_bytes": res, "total_bytes": tot, "strip": strip(r.pages[f])}
            for f, (res, tot) in r.files.items()]


def _on_tmpfs(path: str) -> bool:
    best, fstype = "", ""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")) \
                        and len(parts[1]) > len(best):
                    best, fstype = parts[1], parts[2]
    except OSError:
        return False
    return fstype in ("tmpfs", "ramfs")



