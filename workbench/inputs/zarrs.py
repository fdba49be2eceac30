"""Zarr inputs (format 2 and 3): a folder, a zip store, an fsspec URL or a ``zarr`` Array or Group,
as columns. One scanner for ``convert`` (the :class:`ZarrCol` source below) and ``open_dataset``
(``datasets.zarrreader``): an array is one column (named by its basename, else ``"x"``); a group's
arrays are columns of equal row count; ``key=`` names a group or array inside the store, or a
list of arrays. An array whose only dimension is named like itself (a coordinate, as xarray
writes ``time``) is left out unless ``columns=`` or ``key=`` names it.

No open store is pickled: :class:`Reopened` opens the node again in each process (after fork an
fsspec store's event loop and a zip file's handle are the parent's), from its :class:`ZarrRef`.

>>> import zarr
>>> g = zarr.open_group("g.zarr", mode="w")
>>> g.create_array("x", shape=(100, 3), chunks=(10, 3), dtype="float32")[:] = 1
>>> g.create_array("y", shape=(100,), chunks=(25,), dtype="int64")[:] = 2
>>> [(m.name, m.rows, m.chunk_rows) for m in scan(*locate("g.zarr"), None, "g.zarr")]
[('x', 100, 10), ('y', 100, 25)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xxhash

from ..errors import InvalidInputError, SourceNotFoundError
from ..format.manifest import Column
from ..format.schema import select
from .arraylike import Col
from .columns import ColumnsSource
from .zarrstores import Reopened, ZarrRef, is_group, locate

__all__: list[str] = []

METADATA = ("zarr.json", ".zarray", ".zgroup")  # a node's metadata file, format 3 then 2


def is_zarr(obj: Any) -> bool:
    """A ``zarr`` Array or Group."""
    return type(obj).__module__.startswith("zarr") and type(obj).__name__ in ("Array", "Group")


def is_zarr_folder(path: Any) -> bool:
    """A folder holding a Zarr node's metadata at its top."""
    return any(os.path.isfile(os.path.join(path, m)) for m in METADATA)


@dataclass(frozen=True)
class ZarrMember:
    """One column candidate: its name, path in the store, rows, chunking and what is wrong."""

    name: str
    path: str
    rows: int
    column: Column | None
    chunk_rows: int = 0  # rows of one chunk (the read unit: the inner chunk of a sharded array)
    coordinate: bool = False  # 1-D, its one dimension named like itself: left out by default
    problem: str = ""


def scan(ref: ZarrRef, node: Any, key: str | Sequence[str] | None, where: str) -> list[ZarrMember]:
    """The members ``key`` names (None: the node itself, or a group's arrays)."""
    if key is None or isinstance(key, str):
        target = node if key is None else _child(node, key, where)
        if is_group(target):
            arrays = sorted(target.arrays(), key=lambda kv: kv[0])
            if not arrays:
                raise InvalidInputError(
                    f"{where}: the Zarr group {target.path or '/'!r} holds no arrays; pass key= "
                    f"with a group or array inside it (groups: {sorted(target.group_keys())})"
                )
            found = [_member(a, name, where) for name, a in arrays]
            if key is None and all(m.coordinate for m in found):
                found = [_replace_coordinate(m) for m in found]
            return found
        return [_member(target, target.basename or "x", where)]
    members = [_member(_array(node, k, where), k.rstrip("/").split("/")[-1], where) for k in key]
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"{where}: keys {list(key)} end in the same name; pick arrays with distinct names"
        )
    return [_replace_coordinate(m) for m in members]


def _replace_coordinate(m: ZarrMember) -> ZarrMember:
    return ZarrMember(m.name, m.path, m.rows, m.column, m.chunk_rows, False, m.problem)


def _child(node: Any, key: str, where: str) -> Any:
    if not is_group(node):
        raise InvalidInputError(
            f"{where}: key={key!r} names a node inside a group; this is an array"
        )
    try:
        return node[key.strip("/")]
    except KeyError:
        raise SourceNotFoundError(
            f"{where}: no array or group {key!r}; the arrays are {_all_arrays(node)}; pass one of "
            "them as key="
        ) from None


def _array(node: Any, key: str, where: str) -> Any:
    got = _child(node, key, where)
    if is_group(got):
        raise InvalidInputError(
            f"{where}: {key!r} is a group; pass it alone as key={key!r}, or name its arrays"
        )
    return got


def _all_arrays(group: Any) -> list[str]:
    return sorted(name for name, _ in group.arrays()) + [
        f"{g}/{a}" for g, sub in sorted(group.groups()) for a in _all_arrays(sub)
    ]


def dimension_names(a: Any) -> tuple[str, ...] | None:
    """An array's dimension names: format 3's ``dimension_names``, or xarray's
    ``_ARRAY_DIMENSIONS`` attribute in format 2."""
    names = getattr(a.metadata, "dimension_names", None)
    if names is None:
        names = a.attrs.get("_ARRAY_DIMENSIONS")
    return tuple(str(n) for n in names) if names else None


def _member(a: Any, name: str, where: str) -> ZarrMember:
    path = a.path
    if a.ndim == 0:
        return ZarrMember(
            name, path, 0, None, problem=f"array {path!r} is a single value, not rows"
        )
    dt = np.dtype(a.dtype)
    rows, chunk_rows = int(a.shape[0]), int(a.chunks[0])
    coordinate = a.ndim == 1 and dimension_names(a) == (name,)
    if dt.kind not in "biuf" or dt.names:
        return ZarrMember(
            name,
            path,
            rows,
            None,
            chunk_rows,
            coordinate,
            problem=(
                f"array {path!r} is not numeric ({dt}); drop it (drop=[{name!r}] or columns=[...]) "
                "or encode it to numbers first"
            ),
        )
    col = Column(name, str(dt.newbyteorder("=")), tuple(int(s) for s in a.shape[1:]))
    return ZarrMember(name, path, rows, col, chunk_rows, coordinate)


def pick(
    where: str, members: list[ZarrMember], columns: Any, drop: Any = None, keep: Sequence[str] = ()
) -> list[ZarrMember]:
    """The members ``columns=``/``drop=`` select (coordinates only where named), each readable,
    all of one row count."""
    names = [m.name for m in members]
    default = [m.name for m in members if not m.coordinate]
    chosen_names = select(where, names, default if columns is None else columns, drop, keep)
    chosen = [m for name in chosen_names for m in members if m.name == name]
    for m in chosen:
        if m.problem:
            raise InvalidInputError(f"{where}: {m.problem}")
    rows = {m.name: m.rows for m in chosen}
    if len(set(rows.values())) > 1:
        raise InvalidInputError(
            f"{where}: the arrays have different row counts {rows}; pick arrays of one length "
            "with columns=/drop=, or a group of one table with key= (an xarray store: open it "
            "with xr.open_zarr and pass that)"
        )
    return chosen


def native(a: np.ndarray) -> np.ndarray:
    """``a`` in native byte order (a format 2 array may be stored big-endian)."""
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def chunk_offsets(rows: int, chunk_rows: int) -> np.ndarray:
    """Row offsets of a regular chunk grid along the rows, ending with ``rows``."""
    return np.unique(np.append(np.arange(0, rows, max(1, chunk_rows)), rows)).astype(np.int64)


class ZarrCol(Col):
    """One Zarr array read by row range, opened again in each process that reads it."""

    def __init__(self, arrays: Reopened, m: ZarrMember) -> None:
        assert m.column is not None
        self.arrays, self.path, self.n, self.chunk_rows = arrays, m.path, m.rows, m.chunk_rows
        self.small = arrays.ref.store != "object"  # an in-memory store would pickle its data
        self.kind = f"Zarr array {m.path or '/'} {(m.rows, *m.column.shape)} {m.column.dtype}"

    def read(self, a: int, b: int) -> np.ndarray:
        return native(np.asarray(self.arrays.array(self.path)[a:b]))

    def boundaries(self) -> np.ndarray:
        return chunk_offsets(self.n, self.chunk_rows)

    def fingerprint(self) -> str:
        return fingerprint(self.arrays.ref, self.arrays.array(self.path))


def fingerprint(ref: ZarrRef, a: Any) -> str:
    """The array's metadata, and the names, sizes and times of a local store's files."""
    h = xxhash.xxh3_64(f"{ref}|{a.metadata.to_dict()}".encode())
    if ref.store == "zip":
        st = os.stat(ref.location)
        h.update(f"{st.st_size}|{st.st_mtime_ns}".encode())
    elif ref.store == "local":
        for root, _, files in sorted(os.walk(os.path.join(ref.location, a.path))):
            for f in sorted(files):
                st = os.stat(os.path.join(root, f))
                h.update(f"{root}/{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()


def zarr_source(
    source: Any,
    key: str | Sequence[str] | None,
    *,
    columns=None,
    drop=None,
    target=None,
    sparse=None,
    nan="error",
    dtype=None,
) -> ColumnsSource:
    """``convert``'s Source over a Zarr array or group: each column read by row range, the reads
    aligned to the first column's chunks; splittable (each Dask worker opens the store itself)."""
    if sparse:
        raise InvalidInputError(f"{source}: sparse= does not apply to Zarr arrays; leave it out")
    ref, node = locate(source)
    where = str(ref)
    members = scan(ref, node, key, where)
    keep = [target] if target in {m.name for m in members} else []
    chosen = pick(where, members, columns, drop, keep)
    arrays = Reopened(ref, node)
    cols: dict[str, Col] = {m.name: ZarrCol(arrays, m) for m in chosen}
    src = ColumnsSource(
        cols,
        where=where,
        description=f"Zarr {where} [{', '.join(m.path or '/' for m in chosen)}]",
        nan=nan,
        dtype=dtype,
        target=target,
    )
    src.path = ref.location or None
    return src
