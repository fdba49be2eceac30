"""``wb.doctor(obj)``: the naive pitfalls of a Dataset, a DataLoader or a ``wb.loader``: what it
holds (h5py handles, Python objects, Dask collections, memmaps), how it is driven (workers,
shuffle, pin_memory, timeout), what an item costs against a batched read; each says what was seen
and a fix. Here: the ``Diagnosis`` and what the subject is; each check that looks: ``pitfalls``.

>>> ds = torch.utils.data.TensorDataset(torch.zeros(64, 2))
>>> doctor(torch.utils.data.DataLoader(ds, num_workers=1), measure=False).ids
['no-timeout']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import InvalidInputError
from ..monitoring.container import container_limits
from . import pitfalls, probes, zarrpitfalls
from .findings import KINDS, Finding, Setup, ordered, settings_findings, subject
from .shown import Shown

__all__ = ["Diagnosis", "doctor"]

ACCEPTS = "a torch Dataset, a torch.utils.data.DataLoader or a wb.loader(...)"


@dataclass(repr=False)
class Diagnosis(Shown):
    """What ``doctor`` found in ``subject``: ``findings`` (most severe first), ``measured`` if the
    timing probes ran, ``notes``; ``str()`` for text, rich in JupyterLab, ``to_dict()`` for JSON.

    Parameters
    ----------
    subject, findings, measured, notes : str, list of Finding, bool, list of str"""

    subject: str
    findings: list[Finding] = field(default_factory=list)
    measured: bool = True
    notes: list[str] = field(default_factory=list)
    view = "diagnosis"  # drawn by the shell's views (explore.shown)

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
        return {
            "subject": self.subject,
            "measured": self.measured,
            "checked": list(KINDS),
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }

    def __repr__(self) -> str:
        return f"Diagnosis({', '.join(self.ids) or 'no findings'})"


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
    found: list[Finding | None] = [
        pitfalls.h5py_before_fork(s),
        zarrpitfalls.zarr_before_fork(s),
        pitfalls.objects_copy_on_read(s, hs),
        pitfalls.memmap_workers(s, hs),
    ]
    if s.items is not None:
        try:
            with probes.synchronous_dask():
                batching = pitfalls.internal_batching(s, hs, measure)
                dask = pitfalls.dask_per_item(s, hs, measure)
                timed = measure and not (batching or dask)  # each already says items are slow
                per_item = pitfalls.per_item_reads(s) if timed else None
            found += [batching, dask, per_item]
        except Exception as e:  # a Dataset whose items fail: say so, keep the other findings
            notes.append(f"probing items stopped: {type(e).__name__}: {e}")
    found += zarrpitfalls.chunk_findings(s)
    found += settings_findings(
        s, torch.cuda.is_available(), container_limits().cores, torch.__version__
    )
    return Diagnosis(subject(s), ordered([f for f in found if f is not None]), measure, notes)


def _setup(obj: Any) -> Setup:
    from ..loading.loaders import Loader

    if isinstance(obj, Loader):
        procs = obj.worker_type == "process" and obj.num_workers > 0
        return _describe(
            "wb.loader",
            obj.dataset,
            obj.batch_size,
            shuffled=obj.order != "sequential",
            order=obj.order,
            workers=obj.num_workers,
            processes=procs,
            start=probes.start_method(obj.multiprocessing_context) if procs else "",
            pin_memory=obj.pin_memory,
            timeout=obj.timeout,
        )
    if isinstance(obj, torch.utils.data.DataLoader):
        n = int(obj.num_workers)
        return _describe(
            "DataLoader",
            obj.dataset,
            obj.batch_size,
            shuffled=isinstance(obj.sampler, torch.utils.data.RandomSampler),
            order="full" if isinstance(obj.sampler, torch.utils.data.RandomSampler) else "",
            workers=n,
            processes=n > 0,
            start=probes.start_method(obj.multiprocessing_context) if n else "",
            pin_memory=bool(obj.pin_memory),
            timeout=obj.timeout or None,
        )
    if isinstance(obj, torch.utils.data.Dataset):
        return _describe("Dataset", obj, None)
    raise InvalidInputError(
        f"doctor cannot examine a {type(obj).__module__}.{type(obj).__name__}; "
        f"pass {ACCEPTS} (for an array or a file, use wb.inspect)"
    )


def _describe(what: str, ds: Any, batch_size: int | None, **how: Any) -> Setup:
    map_style = (
        not isinstance(ds, torch.utils.data.IterableDataset)
        and hasattr(ds, "__len__")
        and hasattr(ds, "__getitem__")
    )
    own = getattr(ds, "batch_size", None)
    return Setup(
        what,
        ds,
        type(ds).__name__,
        len(ds) if map_style else None,
        batch_size,
        own_batch_size=own if isinstance(own, int) else None,
        **how,
    )
