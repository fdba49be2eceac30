"""xarray inputs: a ``DataArray`` (one column, named by its name, else ``"x"``) or a ``Dataset``
(its data variables along the row dimension, as columns), over Zarr, NetCDF, Dask or memory.
The row dimension is a DataArray's first, a Dataset's the one most data variables have (the
longest of those); a variable with it elsewhere is transposed so rows come first, one without it
is left out. The
coordinates along the row dimension label rows: ``wb.inspect`` and ``wb.preview`` show them.

>>> import xarray as xr
>>> t = xr.Dataset({"t": (("time", "lat"), np.zeros((6, 2), "float32")),
...                 "y": ("time", np.arange(6))}, coords={"time": np.arange(6) * 10})
>>> dim, members = scan(t, "t")
>>> dim, [(m.name, m.rows, m.column.shape) for m in members]
('time', [('t', 6, (2,)), ('y', 6, ())])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.manifest import Column
from ..format.schema import select
from .arraylike import Col
from .base import array_fingerprint
from .columns import ColumnsSource

__all__: list[str] = []


def is_xarray(obj: Any) -> bool:
    """An xarray ``DataArray`` or ``Dataset``."""
    return type(obj).__module__.startswith("xarray") and type(obj).__name__ in (
        "DataArray",
        "Dataset",
    )


@dataclass(frozen=True)
class XMember:
    """One data variable: its name, the variable (rows first), rows, and what is wrong."""

    name: str
    var: Any
    rows: int
    column: Column | None
    problem: str = ""


def label(obj: Any) -> str:
    """``xarray Dataset (time: 100, lat: 4)``: what error messages and titles call it."""
    sizes = ", ".join(f"{d}: {n}" for d, n in obj.sizes.items())
    return f"xarray {type(obj).__name__} ({sizes})"


def row_dim(obj: Any, where: str) -> str:
    """The row dimension: a DataArray's first; a Dataset's that most data variables have, the
    longest of those (stores do not keep the variables' order)."""
    if type(obj).__name__ == "DataArray" and obj.dims:
        return str(obj.dims[0])
    dims = [d for v in getattr(obj, "data_vars", {}).values() for d in v.dims]
    if not dims:
        raise InvalidInputError(
            f"{where}: no data variable with a dimension to read rows along; give a DataArray or "
            "Dataset with at least one dimensioned data variable"
        )
    return str(max(dict.fromkeys(dims), key=lambda d: (dims.count(d), obj.sizes[d])))


def scan(obj: Any, where: str) -> tuple[str, list[XMember]]:
    """``(row dimension, members)``: each data variable along the row dimension."""
    dim = row_dim(obj, where)
    if type(obj).__name__ == "DataArray":
        named = {str(obj.name) if obj.name is not None else "x": obj}
    else:
        named = {str(k): v for k, v in obj.data_vars.items() if dim in v.dims}
    out = []
    for name, v in named.items():
        v = v.transpose(dim, ...)
        dt = np.dtype(v.dtype)
        rows = int(v.sizes[dim])
        if dt.kind not in "biuf" or dt.names:
            problem = (
                f"variable {name!r} is not numeric ({dt}); drop it (drop=[{name!r}] or "
                "columns=[...]) or encode it to numbers first"
            )
            out.append(XMember(name, v, rows, None, problem))
            continue
        col = Column(name, str(dt.newbyteorder("=")), tuple(int(s) for s in v.shape[1:]))
        out.append(XMember(name, v, rows, col))
    return dim, out


def pick(
    where: str, members: list[XMember], columns: Any, drop: Any = None, keep: Any = ()
) -> list[XMember]:
    """The members ``columns=``/``drop=`` select, each readable."""
    names = select(where, [m.name for m in members], columns, drop, keep)
    chosen = [m for n in names for m in members if m.name == n]
    for m in chosen:
        if m.problem:
            raise InvalidInputError(f"{where}: {m.problem}")
    return chosen


def file_backed(obj: Any, var: Any) -> bool:
    """Read lazily from a file or store (its xarray file manager reopens it where unpickled)."""
    return "source" in obj.encoding or "source" in var.encoding


def row_offsets(var: Any, dim: str) -> np.ndarray | None:
    """Row offsets of the variable's storage chunks along ``dim`` (Dask's chunks, else the
    Zarr or NetCDF chunks in its encoding), ending with its rows; None when unchunked."""
    rows = int(var.sizes[dim])
    if var.chunks is not None:
        sizes = var.chunksizes[dim]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    enc = var.encoding
    chunk = (enc.get("preferred_chunks") or {}).get(dim)
    if chunk is None:
        axis = var.dims.index(dim)
        shape = enc.get("chunks") or enc.get("chunksizes")
        chunk = shape[axis] if shape else None
    if not chunk:
        return None
    return np.unique(np.append(np.arange(0, rows, int(chunk)), rows)).astype(np.int64)


def take(var: Any, dim: str, a: int, b: int) -> np.ndarray:
    """Rows ``[a, b)`` of ``var`` as a native-order array (Dask on its synchronous scheduler:
    the threaded one hangs in forked workers)."""
    import dask

    with dask.config.set(scheduler="synchronous"):
        out = np.asarray(var.isel({dim: slice(a, b)}).values)
    return out if out.dtype.isnative else out.astype(out.dtype.newbyteorder("="))


class XCol(Col):
    """One data variable read by row range."""

    def __init__(self, obj: Any, dim: str, m: XMember) -> None:
        self.var, self.dim, self.n, self.name = m.var, dim, m.rows, m.name
        self.small = file_backed(obj, m.var)  # pickles as its file manager, not its data
        self.source = str(obj.encoding.get("source") or m.var.encoding.get("source") or "")
        self.kind = f"xarray variable {m.name} {m.var.dims} {m.var.dtype}"

    def read(self, a: int, b: int) -> np.ndarray:
        return take(self.var, self.dim, a, b)

    def boundaries(self) -> np.ndarray | None:
        return row_offsets(self.var, self.dim)

    def fingerprint(self) -> str:
        if self.source:
            return f"xarray:{self.source}:{self.name}:{self.var.shape}:{self.var.dtype}"
        if self.var.chunks is not None:
            return f"xarray:dask:{self.var.data.name}"
        return array_fingerprint([(self.name, np.asarray(self.var.values))])


def xarray_source(
    obj: Any, *, columns=None, drop=None, target=None, sparse=None, nan="error", dtype=None
) -> ColumnsSource:
    """``convert``'s Source over a DataArray or Dataset: each variable read by row range."""
    where = label(obj)
    if sparse:
        raise InvalidInputError(f"{where}: sparse= does not apply to xarray inputs; leave it out")
    dim, members = scan(obj, where)
    keep = [target] if target in {m.name for m in members} else []
    chosen = pick(where, members, columns, drop, keep)
    cols: dict[str, Col] = {m.name: XCol(obj, dim, m) for m in chosen}
    return ColumnsSource(
        cols,
        where=where,
        description=f"{where} [{', '.join(cols)}] along {dim!r}",
        nan=nan,
        dtype=dtype,
        target=target,
    )


def coordinates(obj: Any, dim: str) -> dict[str, Any]:
    """The coordinates that label rows: 1-D along ``dim`` (name -> DataArray)."""
    return {str(k): c for k, c in obj.coords.items() if c.dims == (dim,)}
