"""Foreign HDF5 files: which datasets and CSR groups (``indptr``, ``indices``, optional
``values``/``data``) are columns. One scanner for ``convert`` (the :class:`H5Col` source below)
and ``open_dataset`` (the hdf5 layout's reader over the same members).

The file is opened only to scan it and inside each ``read``; no handle lives in the source, so it
pickles small and works from other processes.

>>> [(m.name, m.key, m.rows) for m in scan("data.h5", key=["x", "labels/y"])]  # wherever they live
[('x', '/x', 100), ('y', '/labels/y', 100)]
>>> from workbench.inputs import open_source
>>> src = open_source("data.h5", key="train", target="y")  # every dataset of group /train
>>> src.num_rows, sorted(src.read(0, 4))
(80, ['x', 'y'])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidInputError, SourceNotFoundError
from ..format.manifest import Column
from ..format.schema import select
from ..format.sparse import CSR
from .arraylike import Col
from .base import check_numeric, file_fingerprint
from .columns import ColumnsSource

__all__: list[str] = []


@dataclass(frozen=True)
class H5Member:
    """One column candidate: its name (the key's last part), key, rows, and what is wrong with
    it."""

    name: str
    key: str
    rows: int
    column: Column | None
    values: str = ""  # name of a CSR group's values dataset ("values", "data" or none)
    problem: str = ""  # why it cannot be read; raised only if the column is selected


def open_h5(path: str) -> Any:
    """``h5py.File(path, "r")``, or an error naming the file when it is not readable HDF5."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise InvalidInputError(
            f"{path}: not a readable HDF5 file ({e}); it may be truncated or "
            "not HDF5: write it again"
        ) from None


def scan(
    path: str, key: str | Sequence[str] | None, sparse: dict[str, int] | None = None
) -> list[H5Member]:
    """The members ``key`` names: None = the file's top level, a group = its members, a dataset
    path (or a list of them) = those. Plain groups and scalars inside a group are skipped."""
    import h5py

    with open_h5(path) as f:
        if key is None or (isinstance(key, str) and _is_plain_group(f.get(key))):
            group = f if key is None else f[key]
            nodes = [
                (f"{group.name.rstrip('/')}/{k}", v)
                for k, v in group.items()
                if (isinstance(v, h5py.Dataset) and v.ndim > 0) or _is_csr(v)
            ]
            if not nodes:
                raise InvalidInputError(
                    f"{path}: no datasets in {group.name!r}; pass key= with a dataset path"
                )
        else:
            nodes = []
            for k in [key] if isinstance(key, str) else list(key):
                node = f.get(k)
                if not (isinstance(node, h5py.Dataset) or _is_csr(node)):
                    raise SourceNotFoundError(
                        f"{path}: no dataset {k!r}; the datasets are {_datasets(f)}; "
                        "pass one of them as key="
                    )
                nodes.append((node.name, node))
        members = [_member(path, k, node, dict(sparse or {})) for k, node in nodes]
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise InvalidInputError(
            f"{path}: keys {[m.key for m in members]} end in the same name; pick "
            "keys with distinct names"
        )
    return members


def pick(path: str, members: list[H5Member], names: Sequence[str]) -> list[H5Member]:
    """The members called ``names``, each readable, all of one length."""
    chosen = [m for m in members if m.name in set(names)]
    for m in chosen:
        if m.problem:
            raise InvalidInputError(f"{path}: {m.problem}")
    rows = {m.name: m.rows for m in chosen}
    if len(set(rows.values())) > 1:
        raise InvalidInputError(
            f"{path}: the columns have different lengths {rows}; pick same-length "
            "ones with columns=/drop=, or the datasets of one table with key="
        )
    return chosen


def _is_csr(node: Any) -> bool:
    import h5py

    return isinstance(node, h5py.Group) and "indptr" in node and "indices" in node


def _is_plain_group(node: Any) -> bool:
    import h5py

    return isinstance(node, h5py.Group) and not _is_csr(node)


def _datasets(f: Any) -> list[str]:
    import h5py

    found: list[str] = []
    f.visititems(
        lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) or _is_csr(o) else None
    )
    return found


def _member(path: str, key: str, node: Any, sparse: dict[str, int]) -> H5Member:
    import h5py

    name = key.rstrip("/").split("/")[-1]
    if not _is_csr(node):
        if node.ndim == 0:
            return H5Member(
                name, key, 0, None, problem=f"dataset {key!r} is a single value, not rows"
            )
        dt = node.dtype
        if h5py.check_string_dtype(dt) is not None or dt.kind not in "biuf" or dt.names:
            return H5Member(
                name,
                key,
                int(node.shape[0]),
                None,
                problem=(
                    f"dataset {key!r} is not numeric ({dt}); drop it (drop=[{name!r}] or "
                    "columns=[...]) or encode it to numbers first"
                ),
            )
        return H5Member(
            name,
            key,
            int(node.shape[0]),
            Column(name, str(dt.newbyteorder("=")), tuple(int(s) for s in node.shape[1:])),
        )
    dim = sparse.get(name, node.attrs.get("dim", None))
    if dim is None and "shape" in node.attrs:
        dim = node.attrs["shape"][-1]  # scipy/anndata-style CSR groups
    rows = int(node["indptr"].shape[0]) - 1
    if dim is None:
        return H5Member(
            name,
            key,
            rows,
            None,
            problem=(
                f"sparse group {key!r} has no 'dim' or 'shape' attribute; set it to the row width "
                f"(f[{key!r}].attrs['dim'] = width) or pass sparse={{{name!r}: width}}"
            ),
        )
    check_numeric(path, name, node["indices"].dtype)
    vname = "values" if "values" in node else "data" if "data" in node else ""
    vdt = str(node[vname].dtype) if vname else "float32"
    return H5Member(
        name,
        key,
        rows,
        Column(
            name,
            vdt,
            (int(dim),),
            sparse=True,
            index_dtype=str(node["indices"].dtype),
            has_values=bool(vname),
        ),
        values=vname,
    )


class H5Col(Col):
    small = True

    def __init__(self, path: str, m: H5Member):
        self.path, self.key, self.n = path, m.key, m.rows
        self.dim = m.column.shape[0] if m.column is not None and m.column.sparse else None
        self.values = m.values or None
        c = m.column
        self.kind = f"{m.key} sparse" if self.dim else f"{m.key} {(m.rows, *c.shape)} {c.dtype}"  # type: ignore[union-attr]

    def read(self, a: int, b: int) -> np.ndarray | CSR:
        import h5py

        with h5py.File(self.path, "r") as f:
            if self.dim is None:
                return f[self.key][a:b]
            g = f[self.key]
            ip = g["indptr"][a : b + 1].astype(np.int64)
            lo, hi = int(ip[0]), int(ip[-1])
            vals = None if self.values is None else g[self.values][lo:hi]
            return CSR(ip - lo, g["indices"][lo:hi], vals, self.dim)

    def fingerprint(self) -> str:
        return file_fingerprint([self.path]) + self.key


def h5_source(
    path: str,
    key: str | Sequence[str] | None,
    *,
    columns=None,
    drop=None,
    target=None,
    sparse=None,
    nan="error",
    dtype=None,
) -> ColumnsSource:
    members = scan(path, key, sparse)
    names = [m.name for m in members]
    keep = [*([target] if target in names else []), *(sparse or {})]
    chosen = pick(path, members, select(path, names, columns, drop, keep))
    cols: dict[str, Col] = {m.name: H5Col(path, m) for m in chosen}
    keys = ", ".join(m.key.lstrip("/") for m in chosen)
    src = ColumnsSource(
        cols,
        where=path,
        description=f"HDF5 file {path} [{keys}]",
        nan=nan,
        dtype=dtype,
        target=target,
    )
    src.path = path
    return src


def hdf5_dataset(
    source: Any,
    where: str,
    columns: Any,
    *,
    key: str | Sequence[str] | None,
    sparse_dims: dict[str, int] | None,
    **kw: Any,
) -> Any:
    """``open_dataset`` of a foreign HDF5 file: the hdf5 layout's reader over its members."""
    from ..layouts.hdf5.reader import Hdf5Dataset

    members = scan(where, key, sparse_dims)
    chosen = pick(where, members, select(where, [m.name for m in members], columns))
    return Hdf5Dataset(
        [where],
        {m.name: m.key for m in chosen},
        tuple(m.column for m in chosen),  # type: ignore[arg-type]
        [chosen[0].rows],
        where=where,
        values_name={m.name: m.values for m in chosen if m.values},
        **kw,
    )
