"""The numpy → torch step every reader ends with: zero-copy tensors over read-only data, float
casts to the dataset's ``dtype``, and sparse columns expanded to dense, COO or CSR tensors.

>>> from workbench.format.manifest import Column
>>> batch = to_torch({"x": np.arange(4.0).reshape(2, 2)}, (Column("x", "float64", (2,)),),
...                  "dense", np.dtype("float32"))
>>> batch["x"].dtype
torch.float32
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError
from ..format.manifest import Column
from ..format.sparse import CSR

__all__: list[str] = []

_QUIET = False  # torch warns once per process about non-writable arrays; we silence that once


def shared_tensor(a: np.ndarray) -> torch.Tensor:
    """``torch.from_numpy`` without torch's one-time "not writable" warning.

    The tensor shares memory with ``a``; for a read-only memmap it is read-only page cache:
    writing into it in place crashes the process (SIGSEGV). Clone it before in-place edits.
    """
    global _QUIET
    if _QUIET:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="The given NumPy array is not writable", category=UserWarning
        )
        t = torch.from_numpy(a)
    _QUIET = True
    return t


def numpy_dtype(dtype: Any, where: str) -> np.dtype | None:
    """A dataset's ``dtype=`` (torch or NumPy, floating) as a NumPy dtype; None stays None."""
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        dtype = torch.empty(0, dtype=dtype).numpy().dtype
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InvalidInputError(
            f"{where}: dtype={dtype!r} is not a dtype; pass e.g. 'float32'"
        ) from None
    if dt.kind != "f":
        raise InvalidInputError(
            f"{where}: dtype={dt} must be a floating type (it casts float "
            "columns and sparse expansions); pass e.g. torch.float16"
        )
    return dt


def to_torch(
    chunk: dict[str, Any], cols: tuple[Column, ...], sparse: str, dtype: np.dtype | None
) -> dict[str, torch.Tensor]:
    """Column -> tensor for each of ``cols``: floats cast to ``dtype`` (None: as stored), other
    byte orders made native, read-only arrays shared zero-copy, sparse ones as ``sparse`` says."""
    out = {}
    for c in cols:
        v = chunk[c.name]
        if c.sparse:
            out[c.name] = expand(v, sparse, dtype)
            continue
        if dtype is not None and v.dtype.kind == "f" and v.dtype != dtype:
            v = v.astype(dtype)
        elif not v.dtype.isnative:
            v = v.astype(v.dtype.newbyteorder("="))
        out[c.name] = shared_tensor(v) if not v.flags.writeable else torch.from_numpy(v)
    return out


def expand(csr: CSR, sparse: str, dtype: np.dtype | None) -> torch.Tensor:
    """A CSR as a ``"dense"`` float tensor or a ``"coo"``/``"csr"`` torch sparse tensor."""
    dt = dtype if dtype is not None else np.dtype("float32")
    if sparse == "dense":
        return torch.from_numpy(csr.to_dense(dt))
    c = csr.compact()
    n, nnz = len(c), c.nnz
    vals = torch.from_numpy(np.ones(nnz, dt) if c.values is None else np.array(c.values, dtype=dt))
    cols = torch.from_numpy(np.array(c.indices, dtype=np.int64))
    indptr = np.asarray(c.indptr, dtype=np.int64)
    # invariants hold by construction (CSR.take / compact); checking them would cost a pass
    if sparse == "csr":
        with warnings.catch_warnings():
            warnings.filterwarnings(
                "ignore", message="Sparse CSR tensor support is in beta", category=UserWarning
            )
            return torch.sparse_csr_tensor(
                torch.from_numpy(indptr), cols, vals, size=(n, c.dim), check_invariants=False
            )
    rows = torch.from_numpy(np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr)))
    return torch.sparse_coo_tensor(
        torch.stack([rows, cols]), vals, size=(n, c.dim), check_invariants=False
    )
