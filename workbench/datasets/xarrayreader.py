"""``open_dataset`` of an xarray ``DataArray`` or ``Dataset``: its data variables along the row
dimension as columns, read block by block, the blocks cut at the storage's chunks along that
dimension (Dask's, or the Zarr / NetCDF chunks in the encoding). ``dims`` and :meth:`coordinates`
say which dimension each column has and label rows (``wb.preview`` shows them).

A file-backed object is opened again in each process: in a forked worker the open files of
xarray's file cache are the parent's (HDF5 handles must not cross fork), so the first read there
empties that cache (xarray reopens each file on its next read); a Zarr store's event loop cannot
cross fork either, so variables read from Zarr are opened again from the store's source.

>>> import xarray as xr
>>> a = xr.DataArray(np.arange(12.0).reshape(6, 2), dims=("time", "band"), name="v",
...                  coords={"time": np.arange(6) * 10})
>>> ds = wb.open_dataset(a)
>>> ds.columns, ds.dims["v"], ds.coordinates([5])["time"].tolist()
(('v',), ('time', 'band'), [50])
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from .arrays import Array
from .blocks import DASK_BLOCK_BYTES
from .zarrreader import WindowBlocks

__all__: list[str] = []

_cleared_in: list[int] = []  # pids whose xarray file cache was emptied after fork


class XarrayDataset(WindowBlocks):
    """xarray data variables as columns (see the module)."""

    kind = "xarray"

    def __init__(self, obj: Any, dim: str, members: list[Any], *, where: str, **kw: Any) -> None:
        from ..inputs.xarrays import coordinates, file_backed, row_offsets

        super().__init__(tuple(m.column for m in members), members[0].rows, where=where, **kw)
        self.row_dim = dim
        self.dims = {m.name: tuple(str(d) for d in m.var.dims) for m in members}
        self._vars = {m.name: m.var for m in members}
        self._coords = coordinates(obj, dim)
        self._source: Any = obj  # for wb.inspect, in this process only (not pickled)
        self._reopen = any(file_backed(obj, m.var) for m in members)
        zarr = any(
            "compressors" in m.var.encoding or "serializer" in m.var.encoding for m in members
        )
        self._zarr_source = str(obj.encoding.get("source") or "") if zarr else ""
        self._pid = os.getpid()
        cuts = [row_offsets(m.var, dim) for m in members]
        edges = next((c for c in cuts if c is not None), None)
        per = max(1, DASK_BLOCK_BYTES // max(1, self.row_nbytes))
        if edges is None:  # unchunked: blocks of about 64 MiB
            edges = np.unique(np.append(np.arange(0, self._n, per), self._n))
        rows = [
            min(per, int(b - a) - s)
            for a, b in zip(edges[:-1], edges[1:])
            for s in range(0, int(b - a), per)
        ]
        self._set_blocks(rows)
        self.block_rows = max(rows) if rows else 64

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "_pid": None, "_source": None}

    def inspected(self) -> Any:
        """What ``wb.inspect`` looks at for this dataset: the DataArray or Dataset given (in the
        process that opened it; elsewhere its variables, as a Dataset)."""
        if self._source is not None:
            return self._source
        import xarray as xr

        return xr.Dataset(self._variables())

    def coordinates(self, rows: Any) -> dict[str, np.ndarray]:
        """The row-labelling coordinates' values at ``rows`` (name -> array)."""
        idx = np.asarray(rows, dtype=np.int64)
        return {k: np.asarray(c.values)[idx] for k, c in self._coords.items()}

    def _variables(self) -> dict[str, Any]:
        if self._pid != os.getpid():  # forked: reopen what the parent had open
            if self._reopen:
                self._reopened()
            self._pid = os.getpid()
        return self._vars

    def _reopened(self) -> None:
        from xarray.backends.file_manager import FILE_CACHE

        if os.getpid() not in _cleared_in:
            FILE_CACHE.clear()  # the parent's handles: closed here, reopened on the next read
            _cleared_in.append(os.getpid())
        if self._zarr_source:
            import xarray as xr

            fresh = xr.open_zarr(self._zarr_source, chunks=None)
            got = {k: fresh[k].transpose(self.row_dim, ...) for k in self._vars if k in fresh}
            same = len(got) == len(self._vars)
            if same and all(got[k].shape == v.shape for k, v in self._vars.items()):
                self._vars = got
            elif "://" in self._zarr_source:  # a selection of a remote store: cannot reopen it
                raise InvalidInputError(
                    f"{self.where}: a selection of {self._zarr_source} cannot be read in a "
                    "worker process (an fsspec store does not survive fork); pass "
                    "worker_type='thread', or convert it first: wb.convert(obj, 'data.store')"
                )

    def _load_block(self, b: int) -> dict[str, Array]:
        from ..inputs.xarrays import take

        lo, hi = self._offs[b], self._offs[b + 1]
        out = {}
        for name, var in self._variables().items():
            a = take(var, self.row_dim, lo, hi)
            a.flags.writeable = False  # cached: batches are copies, nothing may edit the block
            out[name] = a
        return out

    def describe_source(self) -> str:
        dims = "; ".join(f"{k}{v}" for k, v in self.dims.items())
        return f"{self.where}: rows along {self.row_dim!r}; {dims}"


def xarray_dataset(source: Any, where: str, columns: Any, **kw: Any) -> XarrayDataset:
    """A DataArray or Dataset, its data variables along the row dimension as columns."""
    from ..inputs.xarrays import label, pick, scan

    name = label(source)
    dim, members = scan(source, name)
    return XarrayDataset(source, dim, pick(name, members, columns), where=name, **kw)
