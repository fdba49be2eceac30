"""HDF5 files: dense datasets and CSR groups (``indptr``, ``indices``, optional ``values``/``data``).

The file is opened only to inspect it and inside each ``read``; no handle lives in the source,
so it pickles small and works from other processes.

>>> src = open_source("d.h5", key=["x", "labels/y"], target="y")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, SourceNotFoundError
from ..sparse import CSR
from .arrays import Col, ColumnsSource
from .base import check_numeric, file_fingerprint, select

class H5Col(Col):
    small = True

    def __init__(self, path: str, key: str, n: int, kind: str, dim: int | None = None,
                 values: str | None = None):
        self.path, self.key, self.n, self.kind, self.dim, self.values = path, key, n, kind, dim, values

    def read(self, a: int, b: int) -> np.ndarray | CSR:
        import h5py

        with h5py.File(self.path, "r") as f:
            if self.dim is None:
                return f[self.key][a:b]
            g = f[self.key]
            ip = g["indptr"][a:b + 1].astype(np.int64)
            lo, hi = int(ip[0]), int(ip[-1])
            vals = None if self.values is None else g[self.values][lo:hi]
            return CSR(ip - lo, g["indices"][lo:hi], vals, self.dim)

    def fingerprint(self) -> str:
        return file_fingerprint([self.path]) + self.key


def h5_source(path: str, key: str | Sequence[str] | None, *, columns=None, drop=None, target=None,
              sparse=None, nan="error", dtype=None) -> ColumnsSource:
    import h5py

    sparse = dict(sparse or {})
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise InvalidInputError(f"{path}: not a readable HDF5 file ({e}); it may be truncated or "
                                "not HDF5: write it again") from None
    with f:
        def is_csr(node: Any) -> bool:
            return isinstance(node, h5py.Group) and "indptr" in node and "indices" in node

        if key is None:
            keys = [k for k, v in f.items() if (isinstance(v, h5py.Dataset) and v.ndim > 0) or is_csr(v)]
            if not keys:
                raise InvalidInputError(f"{path}: no top-level datasets; pass key= with a dataset path")
        else:
            keys = [key] if isinstance(key, str) else list(key)
            for k in keys:
                node = f.get(k)
                if not (isinstance(node, h5py.Dataset) or is_csr(node)):
                    found: list[str] = []
                    f.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) or is_csr(o) else None)
                    raise SourceNotFoundError(
                        f"{path}: no dataset {k!r}; the datasets are {found}; pass one of them as key="
                    )
        cols: dict[str, Col] = {}
        names = [k.rstrip("/").split("/")[-1] for k in keys]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"{path}: keys {keys} end in the same name; pick keys with distinct names")
        chosen = set(select(path, names, columns, drop, [*([target] if target in names else []), *sparse]))
        for k, name in zip(keys, names):
            if name not in chosen:
                continue
            node = f[k]
            if isinstance(node, h5py.Dataset):
                if h5py.check_string_dtype(node.dtype) is not None or node.dtype.kind in "OSUV":
                    raise InvalidInputError(f"{path}: dataset {k!r} is not numeric ({node.dtype}); "
                                            f"drop it (drop=[{name!r}]) or encode it to numbers first")
                check_numeric(path, name, node.dtype)
                if node.ndim == 0:
                    raise InvalidInputError(f"{path}: dataset {k!r} is a single value, not rows")
                cols[name] = H5Col(path, k, node.shape[0], f"{k} {node.shape} {node.dtype}")
            else:
                dim = node.attrs.get("dim", None)
                if dim is None and "shape" in node.attrs:
                    dim = node.attrs["shape"][-1]
                dim = sparse.get(name, dim)
                if dim is None:
                    raise InvalidInputError(f"{path}: sparse group {k!r} has no 'dim' or 'shape' "
                                            f"attribute; pass sparse={{{name!r}: width}}")
                vals = "values" if "values" in node else "data" if "data" in node else None
                check_numeric(path, name, node["indices"].dtype)
                cols[name] = H5Col(path, k, node["indptr"].shape[0] - 1, f"{k} sparse", int(dim), vals)
        if key is None and len({c.n for c in cols.values()}) > 1:
            raise InvalidInputError(
                f"{path}: top-level datasets have different lengths "
                f"{ {k: c.n for k, c in cols.items()} }; pass key= with the datasets of one table"
            )
    src = ColumnsSource(cols, where=path, description=f"HDF5 file {path} [{', '.join(keys)}]",
                        nan=nan, dtype=dtype, target=target)
    src.path = path
    return src
