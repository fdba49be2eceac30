"""``wb.doctor(obj)``: the naive pitfalls of a Dataset, a DataLoader or a ``wb.loader``: what it
holds (h5py handles, Python objects, Dask collections, memmaps), how it is driven (workers, shuffle,
pin_memory, timeout), what an item costs against a batched read; each says what was seen and a fix.

>>> ds = torch.utils.data.TensorDataset(torch.zeros(64, 2))
>>> doctor(torch.utils.data.DataLoader(ds, num_workers=1), measure=False).ids
['no-timeout']
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InvalidInputError
from ..units import human_bytes
from . import probes
from .findings import DASK_ITEM_S, KINDS, PROCESS_SLOWDOWN, Finding, Setup, batches_itself, columns_expr, convert_line, expr, finding, item_is_batch, loader_line, ordered, per_item_is_slow, per_row, settings_findings, subject, too_many_objects  # noqa: E501
from .probes import Held

__all__ = ["Diagnosis", "doctor"]

ACCEPTS = "a torch Dataset, a torch.utils.data.DataLoader or a wb.loader(...)"


@dataclass(repr=False)
class Diagnosis:
    """What ``doctor`` found in ``subject``: ``findings`` (most severe first), ``measured`` if the
    timing probes ran, ``notes``; ``str()`` for text, rich in JupyterLab, ``to_dict()`` for JSON.

    Parameters
    ----------
    subject, findings, measured, notes : str, list of Finding, bool, list of str"""

    subject: str
    findings: list[Finding] = field(default_factory=list)
    measured: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return [f.id for f in self.findings]

    def __len__(self) -> int:
        return len(self.findings)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __getitem__(self, i: int) -> Finding:
        return self.findings[i]

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "measured": self.measured, "checked": list(KINDS),
                "findings": [f.to_dict() for f in self.findings], "notes": list(self.notes)}

    def __repr__(self) -> str:
        return f"Diagnosis({', '.join(self.ids) or 'no findings'})"

    def __str__(self) -> str:
        from ..ui.diagnosis import diagnosis_text

        return diagnosis_text(self)

    def _repr_html_(self) -> str:
        from ..ui.diagnosis import diagnosis_html

        return diagnosis_html(self)


def doctor(obj: Any, *, measure: bool = True) -> Diagnosis:
    """Find the naive pitfalls of ``obj``; ``measure=False`` skips the timing probes (items read).

    Parameters
    ----------
    obj, measure : torch Dataset, DataLoader or wb.loader; bool, default True

    Returns
    -------
    Diagnosis

    Examples
    --------
    >>> dl = wb.loader(wb.open_dataset("demo_data/demo.store"), batch_size=256)
    >>> doctor(dl).ids
    []
    """
    s = _setup(obj)
    hs = probes.held(s.dataset)
    notes: list[str] = []
    found: list[Finding | None] = [_h5py(s), _objects(s, hs), _memmap_workers(s, hs)]
    if s.items is not None:
        try:
            with probes.synchronous_dask():
                batching = _internal_batching(s, hs, measure)
                dask = _dask(s, hs, measure)
                per_item = _per_item(s) if measure and not (batching or dask) else None
            found += [batching, dask, per_item]
        except Exception as e:  # a Dataset whose items fail: say so, keep the other findings
            notes.append(f"probing items stopped: {type(e).__name__}: {e}")
    found += settings_findings(s, torch.cuda.is_available(), len(os.sched_getaffinity(0)),
                               torch.__version__)
    return Diagnosis(subject(s), ordered([f for f in found if f is not None]), measure, notes)


def _setup(obj: Any) -> Setup:
    from ..loading.loaders import Loader

    if isinstance(obj, Loader):
        procs = obj.worker_type == "process" and obj.num_workers > 0
        return _describe("wb.loader", obj.dataset, obj.batch_size,
                         shuffled=obj.order != "sequential",
                         workers=obj.num_workers, processes=procs,
                         start=probes.start_method(obj.multiprocessing_context) if procs else "",
                         pin_memory=obj.pin_memory, timeout=obj.timeout)
    if isinstance(obj, torch.utils.data.DataLoader):
        n = int(obj.num_workers)
        return _describe("DataLoader", obj.dataset, obj.batch_size,
                         shuffled=isinstance(obj.sampler, torch.utils.data.RandomSampler),
                         workers=n, processes=n > 0,
                         start=probes.start_method(obj.multiprocessing_context) if n else "",
                         pin_memory=bool(obj.pin_memory), timeout=obj.timeout or None)
    if isinstance(obj, torch.utils.data.Dataset):
        return _describe("Dataset", obj, None)
    raise InvalidInputError(f"doctor cannot examine a {type(obj).__module__}.{type(obj).__name__}; "
                            f"pass {ACCEPTS} (for an array or a file, use wb.inspect)")


def _describe(what: str, ds: Any, batch_size: int | None, **how: Any) -> Setup:
    map_style = not isinstance(ds, torch.utils.data.IterableDataset) and hasattr(ds, "__len__") \
        and hasattr(ds, "__getitem__")
    own = getattr(ds, "batch_size", None)
    return Setup(what, ds, type(ds).__name__, len(ds) if map_style else None, batch_size,
                 own_batch_size=own if isinstance(own, int) else None, **how)


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


def _h5py(s: Setup) -> Finding | None:
    if not (s.bare or s.processes):
        return None
    # the state workers get: a class that drops its handles in __getstate__ reopens them
    hs = [h for h in probes.held(s.dataset, pickled=True)
          if probes.is_h5py(h.value) and probes.h5py_open(h.value)]
    if not hs:
        return None
    names = ", ".join(f"{h.path} (h5py {type(h.value).__name__} {h.value.file.filename}"
                      + (f":{h.value.name})" if hasattr(h.value, "shape") else ")") for h in hs[:4])
    return finding("h5py-before-fork",
                   f"{names} opened in this process (pid {os.getpid()}); {s.forks}: h5py does "
                   "not support a handle used across fork (wrong data or crashes), and spawn or "
                   "forkserver cannot pickle it",
                   _batched_fix(s, [h for h in hs if hasattr(h.value, "shape")] or hs[:1]),
                   s.fork_severity)


def _objects(s: Setup, hs: list[Held]) -> Finding | None:
    if not (s.bare or s.processes):
        return None
    found = [o for h in hs if "[" not in h.path
             for o in [probes.objects(h.value, h.path)] if o is not None]
    if not too_many_objects(sum(o.elements for o in found), sum(o.arrays for o in found)):
        return None
    total = sum(o.nbytes for o in found)
    found = sorted([o for o in found if o.nbytes >= 0.05 * total], key=lambda o: -o.nbytes)[:4]
    each = "; ".join(f"{o.path}: a {o.container} of {o.elements:,} {o.kind} "
                     f"(~{human_bytes(o.nbytes)})" for o in found)
    risk = f"each forked worker's RSS grows toward ~{human_bytes(total)}" if s.bare else \
        (f"up to ~{human_bytes(total)} more RSS per worker, ~{human_bytes(total * s.workers)} "
         f"over {s.workers} worker{'s' if s.workers > 1 else ''}")
    # the fix stacks the per-row containers into arrays, beside the row arrays already held
    rowed = [o for o in found if o.container in ("list", "tuple") and o.elements == s.items]
    arrays = [h.path for h in hs if "[" not in h.path and not probes.is_dask(h.value)
              and probes.rows_of(h.value) == s.items]
    wrap = ["torch.stack" if o.kind == "torch.Tensor" else "np.stack" if o.arrays else
            "np.asarray" for o in rowed] + [""] * len(arrays)
    cols = columns_expr([o.path for o in rowed] + arrays, wrap)
    return finding("python-objects-copy-on-read",
                   f"{each}; bytes from sys.getsizeof of up to 1,000 sampled elements, scaled. "
                   "A worker reading an item writes the refcounts of its objects, which copies "
                   f"the pages they sit on (copy-on-read): {risk}",
                   loader_line(f"wb.open_dataset({cols})", s.fix_batch) if rowed else
                   convert_line(None, s.fix_batch), s.fork_severity)


def _memmap_workers(s: Setup, hs: list[Held]) -> Finding | None:
    if not s.processes:
        return None
    maps = [h.path for h in hs if probes.is_memmap(h.value)]
    if getattr(s.dataset, "kind", None) == "store":  # ours: its memmaps open lazily
        maps.insert(0, f"{s.name} (store layout: memory-mapped .npy files)")
    if not maps:
        return None
    fix = {"worker_type": "thread"} if s.what == "wb.loader" else {"num_workers": None}
    return finding("process-workers-over-memmap",
                   f"{s.workers} worker processes ({s.start}) read memory-mapped data "
                   f"({', '.join(maps[:3])}): every batch is copied through shared memory to "
                   f"this process; measured {PROCESS_SLOWDOWN} slower than reading in-process "
                   "(benchmarks/README.md: 1 GiB memmap, 2 cores, batch 256)",
                   loader_line("ds", s.same_batch, **fix))


def _per_item(s: Setup) -> Finding | None:
    ds = s.dataset
    if callable(getattr(ds, "__getitems__", None)) or (s.items or 0) < 2:
        return None
    rows = probes.probe_rows(len(ds))
    item = probes.time_items(ds, rows)
    hs = [h for h in probes.held(ds) if "[" not in h.path]  # again: items may open files lazily
    arrays = [h for h in hs if not probes.is_dask(h.value) and probes.rows_of(h.value) == s.items]
    # a Python object per row (a list of tensors) has no batched read: the arrays are not it all
    per_row_objects = any(isinstance(h.value, (list, tuple)) and len(h.value) == s.items
                          for h in hs)
    batched = None if per_row_objects else probes.time_batched([h.value for h in arrays], rows)
    if not per_item_is_slow(item, batched):
        return None
    how = "no arrays to read the same rows from in one batch" if batched is None else \
        (f"batched: {per_row(batched)}/row ({', '.join(expr(h.path) for h in arrays)} indexed "
         f"with the same rows at once); {item / max(batched, 1e-9):,.0f}x")
    return finding("per-item-reads",
                   f"{s.name} has no __getitems__, so each batch calls __getitem__ once per row: "
                   f"per-item: {per_row(item)}/row over {len(rows)} random rows; {how}",
                   _batched_fix(s, arrays, item=ds[int(rows[0])]))


def _dask(s: Setup, hs: list[Held], measure: bool) -> Finding | None:
    ds = s.dataset
    found = [h for h in hs if "[" not in h.path and probes.is_dask(h.value)]
    if not found or callable(getattr(ds, "__getitems__", None)):
        return None
    took = probes.time_call(lambda: ds[0]) if measure else None
    if took is not None and took < DASK_ITEM_S:  # __getitem__ does not compute it
        return None
    said = f"ds[0] took {per_row(took)}" if took is not None else "not timed (measure=False)"
    names = ", ".join(f"{h.path} (a Dask {type(h.value).__name__})" for h in found[:3])
    return finding("dask-per-item",
                   f"{names} held by {s.name}, which has no __getitems__: every item builds, "
                   f"optimizes and runs a Dask graph; {said} (synchronous scheduler), about "
                   "what a batched read of thousands of rows costs", _dask_fix(s, found))


def _dask_fix(s: Setup, found: list[Held]) -> str:
    frames = [h for h in found if probes.rows_of(h.value) is None]
    path = probes.parquet_path(frames[0].value) if frames else None
    if path:
        store = os.path.splitext(os.path.basename(path))[0] + ".store"
        cols = [str(c) for c in frames[0].value.columns]
        # a str attribute naming a column (target_col="label") is the target: kept apart
        named = [h.value for h in probes.held(s.dataset) if "[" not in h.path
                 and isinstance(h.value, str) and h.value in cols]
        target = f", target={named[0]!r}" if named else ""
        return (f"wb.convert({path!r}, {store!r}, columns={cols!r}{target}); "
                + loader_line(f"wb.open_dataset({store!r})", s.fix_batch, shuffle="block"))
    arrays = [h for h in found if probes.rows_of(h.value) is not None]
    if len(arrays) == 1:
        return loader_line(f"wb.open_dataset({expr(arrays[0].path)})", s.fix_batch)
    if arrays:  # open_dataset takes one Dask array; several are converted together
        return (f"wb.convert({columns_expr([h.path for h in arrays])}, 'data.store'); "
                + loader_line("wb.open_dataset('data.store')", s.fix_batch, shuffle="block"))
    return _batched_fix(s, [])


def _internal_batching(s: Setup, hs: list[Held], measure: bool) -> Finding | None:
    ds, own = s.dataset, s.own_batch_size
    if s.bare or not s.shuffled or s.batch_size not in (None, 1) or not own or not s.items:
        return None
    sizes = [(h, r) for h in hs if "[" not in h.path for r in [probes.length(h.value)] if r]
    rows = max((r for _, r in sizes), default=0)
    item = probes.first_rows(ds[0]) if measure else None
    by_len = batches_itself(s.items, rows, own)
    if not (by_len or (item is not None and item_is_batch(item, own))):
        return None
    saw = (f"ds[0] holds {item:,} rows (batch_size={own}); " if item is not None else "") + \
        (f"len(ds) = {s.items:,} for {rows:,} rows" if rows else f"len(ds) = {s.items:,}")
    lost = rows - s.items * own if by_len and rows > s.items * own else 0
    biggest = [h for h, r in sizes if r == rows]
    fix = _dask_fix(s, biggest) if any(probes.is_dask(h.value) for h in biggest) else \
        _batched_fix(s, biggest, item=ds[0] if measure else None, shuffle="block")
    return finding("internal-batching-shuffle",
                   f"{s.name}.__getitem__ returns a whole batch: {saw}. Driven with "
                   f"batch_size={s.batch_size} and a random sampler, the {s.items:,} batches come "
                   "in a new order each epoch but the rows inside each never mix"
                   + (f"; the last {lost:,} rows are never served" if lost else ""), fix)

