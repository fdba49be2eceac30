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

from dataclasses import dataclass, field
from typing import Any

from .facts import ArrayFacts, Cost, access_costs, strip
from .shown import Shown
from .sources import describe

__all__ = ["Inspection", "inspect"]

DEFAULT_BATCH = 256  # the loader's default batch_size
FALLBACK_BLOCK_ROWS = 4096


@dataclass(repr=False)
class Inspection(Shown):
    """The facts ``inspect`` found; ``str()`` for text, rich in JupyterLab, ``to_dict()`` for JSON.

    Parameters
    ----------
    source : str
        The input inspected (a path, or a short name for an in-memory one).
    kind : str
        "dataset", "npy", "hdf5", "parquet", "zarr", "xarray", "array", "memmap", "dask" or
        "arrays".
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
    shards: list[dict[str, Any]] = field(default_factory=list)  # datasets: per shard
    notes: list[str] = field(default_factory=list)
    title: str = ""
    view = "inspection"  # drawn by the shell's views (explore.shown)

    @property
    def resident_fraction(self) -> float | None:
        total = sum(r["total_bytes"] for r in self.residency)
        return sum(r["resident_bytes"] for r in self.residency) / total if total else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "title": self.title,
            "batch_size": self.batch_size,
            "block_rows": self.block_rows,
            "arrays": [a.to_dict() for a in self.arrays],
            "costs": {n: {o: c.to_dict() for o, c in by.items()} for n, by in self.costs.items()},
            "resident_fraction": self.resident_fraction,
            "residency": self.residency,
            "shards": self.shards,
            "notes": self.notes,
        }

    def __repr__(self) -> str:
        return f"Inspection({self.source}: {self.title})"


def inspect(obj: Any, batch_size: int | None = None) -> Inspection:
    """Inspect ``obj`` (see ``sources.ACCEPTS``); costs are for batches of ``batch_size`` rows
    (default: the loader's own, or 256).

    Parameters
    ----------
    obj : path, array, h5py object, Dask array, dataset or loader
        A workbench dataset folder, a ``.npy``, HDF5 (``"file.h5:key"``), Parquet or Zarr path
        (a folder, zip store or URL; ``"store.zarr:key"``), a NumPy array or memmap, an h5py
        File, Group or Dataset, a zarr Array or Group, an xarray DataArray or Dataset, a Dask
        array (with the Zarr storage beneath one from ``da.from_zarr``), a Dataset from
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
    source, kind, title, arrays, extra = describe(obj)
    block_rows = _block_rows(obj, loader)
    b = int(batch_size or DEFAULT_BATCH)
    ins = Inspection(
        source,
        kind,
        arrays,
        b,
        block_rows,
        {a.name: access_costs(a, b, block_rows=block_rows) for a in arrays},
        title=title,
        **extra,
    )
    files = sorted({f for a in arrays for f in a.files})
    if files:
        ins.residency = _residency(files)
        from ..monitoring.warming import memory_backed

        if memory_backed(files[0]):
            ins.notes.append(
                "on tmpfs: its pages are memory, always resident; evict cannot drop "
                "them, so cold reads cannot be measured here"
            )
    tier = getattr(obj, "ram_tier", None)  # open_dataset(cache="ram")
    if tier is not None:
        where = "read from there" if tier.ready else "read from the files until it is ready"
        ins.notes.append(f"{tier.describe()}; rows are {where}")
    if ins.shards:
        by_file = {r["path"]: r for r in ins.residency}
        for s in ins.shards:
            parts = [by_file[f] for f in s.pop("paths") if f in by_file]
            total = sum(p["total_bytes"] for p in parts)
            s["resident_fraction"] = (
                sum(p["resident_bytes"] for p in parts) / total if total else 0.0
            )
    return ins


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
    return [
        {"path": f, "resident_bytes": res, "total_bytes": tot, "strip": strip(r.pages[f])}
        for f, (res, tot) in r.files.items()
    ]
