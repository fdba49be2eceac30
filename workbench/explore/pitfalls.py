"""The pitfalls ``wb.doctor`` looks for in what a Dataset holds and how its items read: each check
takes the ``Setup`` and returns a ``Finding`` (what was seen, with the fix line for this dataset)
or None. The wording and thresholds are pure (``findings``); what looks is ``probes``.

>>> from workbench.explore.findings import Setup
>>> ds = torch.utils.data.TensorDataset(torch.zeros(64, 2))
>>> memmap_workers(Setup("Dataset", ds, "TensorDataset", 64, None), []) is None
True
"""

from __future__ import annotations

import os
from typing import Any

from ..units import human_bytes
from . import probes
from .findings import (
    DASK_ITEM_S,
    PROCESS_SLOWDOWN,
    Finding,
    Setup,
    batches_itself,
    columns_expr,
    convert_line,
    expr,
    finding,
    item_is_batch,
    loader_line,
    per_item_is_slow,
    per_row,
    too_many_objects,
)
from .probes import Held

__all__: list[str] = []


def _batched_fix(s: Setup, arrays: list[Held], item: Any = None, **options: Any) -> str:
    """A fix line reading a Dataset's arrays with ours (``item``, one item, shapes it if none)."""
    h5 = [h for h in arrays if probes.is_h5py(h.value)]
    if h5:
        keys = [h.value.name.lstrip("/") for h in h5]
        source = f"{h5[0].value.file.filename!r}, key={keys!r}"
    elif arrays:
        paths = [h.path for h in arrays]
        source = expr(paths[0]) if len(paths) == 1 else columns_expr(paths)
    else:
        return convert_line(len(item) if isinstance(item, (tuple, list)) else None, s.fix_batch)
    return loader_line(f"wb.open_dataset({source})", s.fix_batch, **options)


def h5py_before_fork(s: Setup) -> Finding | None:
    """Open h5py handles that forked workers would share (or spawn could not pickle)."""
    if not (s.bare or s.processes):
        return None
    # the state workers get: a class that drops its handles in __getstate__ reopens them
    hs = [
        h
        for h in probes.held(s.dataset, pickled=True)
        if probes.is_h5py(h.value) and probes.h5py_open(h.value)
    ]
    if not hs:
        return None
    names = ", ".join(
        f"{h.path} (h5py {type(h.value).__name__} {h.value.file.filename}"
        + (f":{h.value.name})" if hasattr(h.value, "shape") else ")")
        for h in hs[:4]
    )
    return finding(
        "h5py-before-fork",
        f"{names} opened in this process (pid {os.getpid()}); {s.forks}: h5py does "
        "not support a handle used across fork (wrong data or crashes), and spawn or "
        "forkserver cannot pickle it",
        _batched_fix(s, [h for h in hs if hasattr(h.value, "shape")] or hs[:1]),
        s.fork_severity,
    )


def objects_copy_on_read(s: Setup, hs: list[Held]) -> Finding | None:
    """Many Python objects whose refcount writes copy a forked worker's pages."""
    if not (s.bare or s.processes):
        return None
    found = [
        o
        for h in hs
        if "[" not in h.path
        for o in [probes.objects(h.value, h.path)]
        if o is not None
    ]
    if not too_many_objects(sum(o.elements for o in found), sum(o.arrays for o in found)):
        return None
    total = sum(o.nbytes for o in found)
    found = sorted([o for o in found if o.nbytes >= 0.05 * total], key=lambda o: -o.nbytes)[:4]
    each = "; ".join(
        f"{o.path}: a {o.container} of {o.elements:,} {o.kind} (~{human_bytes(o.nbytes)})"
        for o in found
    )
    risk = (
        f"each forked worker's RSS grows toward ~{human_bytes(total)}"
        if s.bare
        else (
            f"up to ~{human_bytes(total)} more RSS per worker, ~{human_bytes(total * s.workers)} "
            f"over {s.workers} worker{'s' if s.workers > 1 else ''}"
        )
    )
    # the fix stacks the per-row containers into arrays, beside the row arrays already held
    rowed = [o for o in found if o.container in ("list", "tuple") and o.elements == s.items]
    arrays = [
        h.path
        for h in hs
        if "[" not in h.path and not probes.is_dask(h.value) and probes.rows_of(h.value) == s.items
    ]
    wrap = [
        "torch.stack" if o.kind == "torch.Tensor" else "np.stack" if o.arrays else "np.asarray"
        for o in rowed
    ] + [""] * len(arrays)
    cols = columns_expr([o.path for o in rowed] + arrays, wrap)
    return finding(
        "python-objects-copy-on-read",
        f"{each}; bytes from sys.getsizeof of up to 1,000 sampled elements, scaled. "
        "A worker reading an item writes the refcounts of its objects, which copies "
        f"the pages they sit on (copy-on-read): {risk}",
        loader_line(f"wb.open_dataset({cols})", s.fix_batch)
        if rowed
        else convert_line(None, s.fix_batch),
        s.fork_severity,
    )


def memmap_workers(s: Setup, hs: list[Held]) -> Finding | None:
    """Worker processes over memory-mapped data: each batch copied through shared memory."""
    if not s.processes:
        return None
    maps = [h.path for h in hs if probes.is_memmap(h.value)]
    if getattr(s.dataset, "kind", None) == "store":  # ours: its memmaps open lazily
        maps.insert(0, f"{s.name} (store layout: memory-mapped .npy files)")
    if not maps:
        return None
    fix = {"worker_type": "thread"} if s.what == "wb.loader" else {"num_workers": None}
    return finding(
        "process-workers-over-memmap",
        f"{s.workers} worker processes ({s.start}) read memory-mapped data "
        f"({', '.join(maps[:3])}): every batch is copied through shared memory to "
        f"this process; measured {PROCESS_SLOWDOWN} slower than reading in-process "
        "(benchmarks/README.md: 1 GiB memmap, 2 cores, batch 256)",
        loader_line("ds", s.same_batch, **fix),
    )


def per_item_reads(s: Setup) -> Finding | None:
    """No ``__getitems__``, and reading row by row measured slow (against a batched read)."""
    ds = s.dataset
    if callable(getattr(ds, "__getitems__", None)) or (s.items or 0) < 2:
        return None
    rows = probes.probe_rows(len(ds))
    item = probes.time_items(ds, rows)
    hs = [h for h in probes.held(ds) if "[" not in h.path]  # again: items may open files lazily
    arrays = [h for h in hs if not probes.is_dask(h.value) and probes.rows_of(h.value) == s.items]
    # a Python object per row (a list of tensors) has no batched read: the arrays are not it all
    per_row_objects = any(
        isinstance(h.value, (list, tuple)) and len(h.value) == s.items for h in hs
    )
    batched = None if per_row_objects else probes.time_batched([h.value for h in arrays], rows)
    if not per_item_is_slow(item, batched):
        return None
    how = (
        "no arrays to read the same rows from in one batch"
        if batched is None
        else (
            f"batched: {per_row(batched)}/row ({', '.join(expr(h.path) for h in arrays)} indexed "
            f"with the same rows at once); {item / max(batched, 1e-9):,.0f}x"
        )
    )
    return finding(
        "per-item-reads",
        f"{s.name} has no __getitems__, so each batch calls __getitem__ once per row: "
        f"per-item: {per_row(item)}/row over {len(rows)} random rows; {how}",
        _batched_fix(s, arrays, item=ds[int(rows[0])]),
    )


def dask_per_item(s: Setup, hs: list[Held], measure: bool) -> Finding | None:
    """A Dask collection read item by item: each item builds and runs a graph."""
    ds = s.dataset
    found = [h for h in hs if "[" not in h.path and probes.is_dask(h.value)]
    if not found or callable(getattr(ds, "__getitems__", None)):
        return None
    took = probes.time_call(lambda: ds[0]) if measure else None
    if took is not None and took < DASK_ITEM_S:  # __getitem__ does not compute it
        return None
    said = f"ds[0] took {per_row(took)}" if took is not None else "not timed (measure=False)"
    names = ", ".join(f"{h.path} (a Dask {type(h.value).__name__})" for h in found[:3])
    return finding(
        "dask-per-item",
        f"{names} held by {s.name}, which has no __getitems__: every item builds, "
        f"optimizes and runs a Dask graph; {said} (synchronous scheduler), about "
        "what a batched read of thousands of rows costs",
        _dask_fix(s, found),
    )


def _dask_fix(s: Setup, found: list[Held]) -> str:
    frames = [h for h in found if probes.rows_of(h.value) is None]
    path = probes.parquet_path(frames[0].value) if frames else None
    if path:
        store = os.path.splitext(os.path.basename(path))[0] + ".store"
        cols = [str(c) for c in frames[0].value.columns]
        # a str attribute naming a column (target_col="label") is the target: kept apart
        named = [
            h.value
            for h in probes.held(s.dataset)
            if "[" not in h.path and isinstance(h.value, str) and h.value in cols
        ]
        target = f", target={named[0]!r}" if named else ""
        return f"wb.convert({path!r}, {store!r}, columns={cols!r}{target}); " + loader_line(
            f"wb.open_dataset({store!r})", s.fix_batch, shuffle="block"
        )
    arrays = [h for h in found if probes.rows_of(h.value) is not None]
    if len(arrays) == 1:
        return loader_line(f"wb.open_dataset({expr(arrays[0].path)})", s.fix_batch)
    if arrays:  # open_dataset takes one Dask array; several are converted together
        return (
            f"wb.convert({columns_expr([h.path for h in arrays])}, 'data.store'); "
            + loader_line("wb.open_dataset('data.store')", s.fix_batch, shuffle="block")
        )
    return _batched_fix(s, [])


def internal_batching(s: Setup, hs: list[Held], measure: bool) -> Finding | None:
    """A Dataset that returns whole batches, shuffled as batches: rows never mix."""
    ds, own = s.dataset, s.own_batch_size
    if s.bare or not s.shuffled or s.batch_size not in (None, 1) or not own or not s.items:
        return None
    sizes = [(h, r) for h in hs if "[" not in h.path for r in [probes.length(h.value)] if r]
    rows = max((r for _, r in sizes), default=0)
    item = probes.first_rows(ds[0]) if measure else None
    by_len = batches_itself(s.items, rows, own)
    if not (by_len or (item is not None and item_is_batch(item, own))):
        return None
    saw = (f"ds[0] holds {item:,} rows (batch_size={own}); " if item is not None else "") + (
        f"len(ds) = {s.items:,} for {rows:,} rows" if rows else f"len(ds) = {s.items:,}"
    )
    lost = rows - s.items * own if by_len and rows > s.items * own else 0
    biggest = [h for h, r in sizes if r == rows]
    fix = (
        _dask_fix(s, biggest)
        if any(probes.is_dask(h.value) for h in biggest)
        else _batched_fix(s, biggest, item=ds[0] if measure else None, shuffle="block")
    )
    return finding(
        "internal-batching-shuffle",
        f"{s.name}.__getitem__ returns a whole batch: {saw}. Driven with "
        f"batch_size={s.batch_size} and a random sampler, the {s.items:,} batches come "
        "in a new order each epoch but the rows inside each never mix"
        + (f"; the last {lost:,} rows are never served" if lost else ""),
        fix,
    )
