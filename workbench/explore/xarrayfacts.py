"""What ``wb.inspect`` reads of an xarray ``DataArray`` or ``Dataset``: each data variable's
dimension names and storage (the Zarr chunks and codecs of one opened from Zarr, its NetCDF/HDF5
chunks and filters, as its encoding says; its Dask chunks; or memory), and the coordinates that
label its rows.

>>> import xarray as xr
>>> a = xr.DataArray(np.zeros((6, 2), "float32"), dims=("time", "band"), name="v",
...                  coords={"time": np.arange(6) * 10})
>>> source, kind, title, facts, extra = xarray_input(a, None)
>>> print(title, facts[0].storage["dims"], extra["notes"][0], sep="; ")
1 data variables along 'time'; ('time', 'band'); coordinate time (time) int64: 0 .. 50
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .facts import ArrayFacts, regular_chunks
from .sources import Described

__all__: list[str] = []


def _encoded(var: Any, dim: str) -> tuple[str, int, dict[str, Any]]:
    """``(read unit, rows per unit, storage words)`` from a variable's encoding."""
    enc = var.encoding
    rows = int(var.sizes[dim])
    if "compressors" in enc or "serializer" in enc:  # written by Zarr
        from .zarrfacts import codec_name

        chunks = tuple(int(c) for c in enc.get("chunks") or var.shape)
        words = {
            "zarr chunks": chunks,
            "shards": enc.get("shards"),
            "compressors": ", ".join(codec_name(c) for c in enc.get("compressors") or ()) or None,
            "filters": ", ".join(codec_name(c) for c in enc.get("filters") or ()) or None,
        }
        return "zarr chunk", min(chunks[0], max(1, rows)), words
    if enc.get("chunksizes"):  # NetCDF4 / HDF5
        chunks = tuple(int(c) for c in enc["chunksizes"])
        filters = [f for f in ("zlib", "szip", "zstd", "bzip2", "blosc", "shuffle") if enc.get(f)]
        words = {"hdf5 chunks": chunks, "filters": ", ".join(filters) or None}
        return "hdf5 chunk", min(chunks[0], max(1, rows)), words
    return "", 0, {}


def variable_facts(var: Any, name: str, dim: str) -> ArrayFacts:
    """One data variable (rows first): shape, dims, chunks and codecs."""
    var = var.transpose(dim, ...)
    shape, dt = tuple(int(s) for s in var.shape), np.dtype(var.dtype)
    row_bytes = int(dt.itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    unit, unit_rows, words = _encoded(var, dim)
    storage: dict[str, Any] = {"dims": tuple(str(d) for d in var.dims), **words}
    row_cuts: tuple[int, ...] = ()
    if var.chunks is not None:
        row_cuts = tuple(int(c) for c in var.chunksizes[dim])
        storage["dask chunks"] = tuple(max(c) for c in var.chunks)
        if not unit:
            unit, unit_rows = "dask chunk", max(row_cuts)
    elif unit_rows:
        row_cuts = regular_chunks(shape[0], unit_rows)
    source = var.encoding.get("source")
    if source:
        storage["source"] = source
    if not unit and source:  # a contiguous variable in a file: read by pages
        from .metadata import PAGE

        unit, unit_rows = "page", max(1, PAGE // max(1, row_bytes))
    if not unit:
        return ArrayFacts(name, shape, str(dt), storage={"in memory": True, **storage})
    return ArrayFacts(
        name,
        shape,
        str(dt.newbyteorder("=")),
        disk_bytes=None,
        unit=unit,
        unit_rows=float(unit_rows),
        unit_bytes=int(unit_rows * row_bytes),
        row_chunks=row_cuts,
        storage=storage,
    )


def coordinate_notes(obj: Any) -> list[str]:
    """One line a coordinate: its dims, dtype and first .. last values."""
    out = []
    for k, c in obj.coords.items():
        values = np.asarray(c.values).reshape(-1)
        span = f"{values[0]} .. {values[-1]}" if values.size else "empty"
        out.append(f"coordinate {k} ({', '.join(map(str, c.dims))}) {c.dtype}: {span}")
    return out


def xarray_input(obj: Any, key: str | None) -> Described:
    """A DataArray or Dataset: its variables along the row dimension; ``key`` is unused."""
    from ..inputs.xarrays import label, row_dim, scan

    where = label(obj)
    dim = row_dim(obj, where)
    facts = [variable_facts(m.var, m.name, dim) for m in scan(obj, where)[1]]
    title = f"{len(facts)} data variables along {dim!r}"
    return where, "xarray", title, facts, {"notes": coordinate_notes(obj)}
