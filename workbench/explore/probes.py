"""The probes behind ``wb.doctor``: what a Dataset holds (its attributes, what of it survives
pickling, the nested Datasets of a ``Subset`` or ``ConcatDataset``), how many bytes of Python
objects that is, and what one item and one batched read of the same rows cost. They read a few
dozen rows, never a pass.

>>> ds = torch.utils.data.TensorDataset(torch.zeros(100, 3))
>>> [h.path for h in held(ds)]
['TensorDataset.tensors', 'TensorDataset.tensors[0]']
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .findings import PROBE_ITEMS, SAMPLE_ELEMENTS, scaled

__all__: list[str] = []

MAX_DEPTH = 3  # nested Datasets followed (Subset of a ConcatDataset of ...)
SCAN_ELEMENTS = 64  # elements of a container looked into for handles, arrays, Datasets
ITEM_BUDGET_S = 0.25  # per-item timing stops here (after at least 4 items): slow items stay cheap


@dataclass(frozen=True)
class Held:
    """One thing a Dataset holds, by the expression that reaches it (``SeedHDF5Dataset.file``)."""

    path: str
    value: Any


def held(ds: Any, *, pickled: bool = False) -> list[Held]:
    """What ``ds`` holds: attributes, the first elements of containers, nested Datasets.

    ``pickled=True`` reads the state its class's ``__getstate__`` hands to workers instead of
    its ``__dict__`` (a class that drops its handles there says it reopens them per process)."""
    out: list[Held] = []
    seen: set[int] = set()

    def walk(obj: Any, prefix: str, depth: int) -> None:
        if id(obj) in seen or depth > MAX_DEPTH:
            return
        seen.add(id(obj))
        for name, value in _state(obj, pickled).items():
            path = f"{prefix}.{name}"
            subs = elements(path, value)
            out.extend([Held(path, value), *(Held(p, v) for p, v in subs)])
            for sub_path, sub in [(path, value), *subs]:
                if isinstance(sub, torch.utils.data.Dataset):  # Subset.dataset, ConcatDataset
                    walk(sub, sub_path, depth + 1)

    walk(ds, type(ds).__name__, 0)
    return out


def _state(obj: Any, pickled: bool) -> dict[str, Any]:
    own = getattr(type(obj), "__getstate__", None)
    if pickled and own is not None and own is not getattr(object, "__getstate__", None):
        try:
            state = obj.__getstate__()
        except Exception:  # a __getstate__ that refuses (h5py-style): fall back to the dict
            state = None
        if isinstance(state, dict):
            return state
    state = dict(getattr(obj, "__dict__", {}))
    slots = itertools.chain.from_iterable(getattr(c, "__slots__", ()) for c in type(obj).__mro__)
    for slot in slots:
        if isinstance(slot, str) and slot not in state and hasattr(obj, slot):
            state[slot] = getattr(obj, slot)
    return state


def elements(path: str, value: Any) -> list[tuple[str, Any]]:
    """The first ``SCAN_ELEMENTS`` elements of a list, tuple or dict, by expression."""
    if isinstance(value, (list, tuple)):
        return [(f"{path}[{i}]", v) for i, v in enumerate(value[:SCAN_ELEMENTS])]
    if isinstance(value, dict):
        return [(f"{path}[{k!r}]", v) for k, v in itertools.islice(value.items(), SCAN_ELEMENTS)]
    return []


# -- what things are --------------------------------------------------------------------------
def is_h5py(x: Any) -> bool:
    """An h5py File, Group or Dataset (open or closed: a closed one raises on ``.file``)."""
    kinds = ("File", "Group", "Dataset")
    return type(x).__module__.startswith("h5py") and type(x).__name__ in kinds


def h5py_open(x: Any) -> bool:
    try:
        return bool(x.id.valid)
    except Exception:  # a closed or half-built handle
        return False


def is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask") and hasattr(x, "compute")


def is_memmap(x: Any) -> bool:
    """A NumPy array over a memory map (``np.memmap``, ``np.load(mmap_mode=...)`` or a view)."""
    import mmap

    while isinstance(x, np.ndarray):
        if isinstance(x, np.memmap):
            return True
        x = x.base
    return isinstance(x, mmap.mmap)


def rows_of(x: Any) -> int | None:
    """Rows of an array-like (NumPy, torch, h5py, Dask array), None for anything else."""
    shape = getattr(x, "shape", None)
    if not isinstance(shape, tuple) or not shape or not hasattr(x, "dtype"):
        return None
    try:
        return int(shape[0])
    except (TypeError, ValueError):  # a Dask array of unknown chunk sizes: nan
        return None


def length(x: Any) -> int | None:
    """Rows of an array-like, or of a Dask DataFrame (``len`` computes it)."""
    rows = rows_of(x)
    if rows is None and is_dask(x) and hasattr(x, "npartitions"):
        return len(x)
    return rows


def parquet_path(ddf: Any) -> str | None:
    """The Parquet path a Dask DataFrame reads, from its expression (dask-expr), if it says."""
    try:
        for node in ddf.expr.walk():
            if type(node).__name__.startswith("ReadParquet"):
                path = node.operand("path")
                return str(path[0] if isinstance(path, (list, tuple)) else path)
    except Exception:  # another dask version or a frame not read from Parquet
        return None
    return None


# -- how items are read -----------------------------------------------------------------------
def start_method(context: Any) -> str:
    import multiprocessing as mp

    if context is None:  # the default without fixing it (get_start_method() would)
        return mp.get_start_method(allow_none=True) or mp.get_all_start_methods()[0]
    return context if isinstance(context, str) else context.get_start_method()


def synchronous_dask() -> Any:
    """Items are read with Dask's synchronous scheduler: a thread pool started here would be
    inherited by forked workers, which then hang on it."""
    if "dask" not in sys.modules:
        return contextlib.nullcontext()
    import dask

    return dask.config.set(scheduler="synchronous")


# -- bytes of Python objects ------------------------------------------------------------------
@dataclass(frozen=True)
class Objects:
    """A container of many Python objects held by a Dataset."""

    path: str
    container: str  # "list", "dict", "object array", ...
    elements: int  # elements (a dict counts keys and values)
    arrays: int  # of which arrays / tensors, each its own heap object
    nbytes: int  # sys.getsizeof of the container and its elements (sampled), tensor data too
    kind: str  # what the elements are: "torch.Tensor", "int", ...


def objects(value: Any, path: str) -> Objects | None:
    """The Python objects in a list, tuple, dict or object-dtype array (None for other values)."""
    if isinstance(value, np.ndarray) and value.dtype == object:
        items: Any = value.ravel()
    elif isinstance(value, dict):
        items = (
            list(itertools.chain.from_iterable(value.items()))
            if len(value) <= 100_000
            else list(
                itertools.chain.from_iterable(itertools.islice(value.items(), SAMPLE_ELEMENTS))
            )
        )
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        return None
    n = 2 * len(value) if isinstance(value, dict) else len(items)
    if not n:
        return None
    step = max(1, len(items) // SAMPLE_ELEMENTS)
    sample = [items[i] for i in range(0, len(items), step)][:SAMPLE_ELEMENTS]
    size = sum(_object_bytes(v) for v in sample)
    arrays = sum(isinstance(v, (np.ndarray, torch.Tensor)) for v in sample)
    kinds = {f"{type(v).__module__}.{type(v).__name__}".replace("builtins.", "") for v in sample}
    container = "object array" if isinstance(value, np.ndarray) else type(value).__name__
    return Objects(
        path,
        container,
        n,
        scaled(arrays, len(sample), n),
        sys.getsizeof(value) + scaled(size, len(sample), n),
        kinds.pop() if len(kinds) == 1 else "mixed objects",
    )


def _object_bytes(v: Any) -> int:
    size = sys.getsizeof(v)
    if isinstance(v, torch.Tensor):  # getsizeof sees the Python object only, not the storage
        size += v.element_size() * v.nelement()
    elif isinstance(v, (list, tuple)):
        size += sum(sys.getsizeof(e) for e in v[:SCAN_ELEMENTS])
    return size


# -- timing -----------------------------------------------------------------------------------
def probe_rows(n: int, seed: int = 0) -> np.ndarray:
    """``PROBE_ITEMS`` random rows of ``n`` (fewer when ``n`` is small), sorted and unique."""
    k = min(PROBE_ITEMS, n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def time_items(ds: Any, rows: np.ndarray, passes: int = 3) -> float:
    """Seconds per ``ds[i]`` over ``rows`` (in a shuffled order), after one warm-up item: the
    fastest of up to ``passes`` passes, so one busy moment of a shared machine does not decide."""
    order = np.random.default_rng(1).permutation(rows)
    ds[int(order[0])]  # first use may open files: not a per-item cost
    best, spent = float("inf"), 0.0
    for _ in range(passes):
        done, start = 0, time.perf_counter()
        for i in order:
            ds[int(i)]
            done += 1
            if done >= 4 and spent + time.perf_counter() - start > ITEM_BUDGET_S:
                break
        took = time.perf_counter() - start
        best, spent = min(best, took / done), spent + took
        if spent > ITEM_BUDGET_S:
            break
    return best


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """:func:`time_call` after one warm-up call."""
    fn()
    return time_call(fn, repeat)


def time_batched(arrays: list[Any], rows: np.ndarray) -> float | None:
    """Seconds per row for one batched read of ``rows`` from each of ``arrays`` (NumPy, memmap,
    torch, h5py), as a Dataset with ``__getitems__`` would read them; None when there are none."""
    if not arrays:
        return None
    index = torch.from_numpy(rows)

    def read() -> None:
        for a in arrays:
            if isinstance(a, torch.Tensor):
                a[index]
            else:
                np.asarray(a[rows])  # NumPy fancy index, h5py point selection (rows ascending)

    return best_of(read, repeat=5) / len(rows)


def time_call(fn: Callable[[], Any], repeat: int = 2) -> float:
    """The fastest of ``repeat`` calls of ``fn``, in seconds (no warm-up: the first may be it)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def first_rows(item: Any) -> int | None:
    """Rows of the first array-like in an item (a tensor, or a tuple/list/dict of them)."""
    if isinstance(item, dict):
        item = next(iter(item.values()), None)
    elif isinstance(item, (list, tuple)) and item and not hasattr(item, "shape"):
        item = item[0]
    rows = rows_of(item)
    return rows if rows is not None and len(getattr(item, "shape", ())) >= 1 else None
