"""The Zarr pitfalls ``wb.doctor`` looks for: a Dataset holding a zarr array over a store that
worker processes cannot share (an fsspec store's event loop, a zip file's handle), and the chunk
grid's costs for the batches and order it is driven with (the pure rules: ``chunk_rules``), for
our Zarr datasets and for zarr arrays a user's Dataset holds.

>>> from workbench.explore.findings import Setup
>>> ds = torch.utils.data.TensorDataset(torch.zeros(64, 2))
>>> chunk_findings(Setup("Dataset", ds, "TensorDataset", 64, None))
[]
"""

from __future__ import annotations

import os
from typing import Any

from . import probes
from .chunk_rules import Grid, grid_issues
from .findings import FALLBACK_BATCH, Finding, Setup, finding, loader_line

__all__: list[str] = []

SHARED_STORES = ("FsspecStore", "ZipStore")  # hold a loop or a file handle of this process


def _is_zarr(x: Any) -> bool:
    from ..inputs.zarrs import is_zarr

    return is_zarr(x)


def grid_of(a: Any, name: str, source: str) -> Grid:
    """The :class:`Grid` of a zarr Array (its inner chunks when sharded)."""
    from .zarrfacts import codecs

    said = codecs(a)
    shape = tuple(int(s) for s in a.shape)
    row_bytes = a.dtype.itemsize
    for w in shape[1:]:
        row_bytes *= w
    text = ", ".join(t for t in (said["filters"], said["compressors"]) if t)
    return Grid(
        name,
        shape[0],
        shape[1:],
        tuple(int(c) for c in a.chunks),
        int(row_bytes),
        bool(text),
        text,
        source,
    )


def _arrays(s: Setup) -> list[tuple[str, Any, str]]:
    """``(name, zarr array, source)`` of what the dataset reads: ours say, others hold them."""
    own = getattr(s.dataset, "zarr_arrays", None)
    if callable(own):
        where = str(getattr(s.dataset, "where", "data.zarr"))
        return [(name, a, where) for name, a in own().items()]
    found = []
    for h in probes.held(s.dataset):
        if "[" not in h.path and _is_zarr(h.value) and type(h.value).__name__ == "Array":
            found.append((h.path, h.value, str(h.value.store)))
    return found


def chunk_findings(s: Setup) -> list[Finding]:
    """The chunk grid's issues of each zarr array read, for this batch size and order."""
    batch = int(s.batch_size or s.own_batch_size or FALLBACK_BATCH)
    order = s.order or ("full" if s.shuffled else "")
    out, seen = [], set()
    for name, a, source in _arrays(s):
        if a.ndim == 0:
            continue
        for issue in grid_issues(grid_of(a, name, source), batch, order):
            if issue.id not in seen:  # one finding an issue: the first array's evidence
                seen.add(issue.id)
                out.append(finding(issue.id, issue.evidence, issue.fix))
    return out


def zarr_before_fork(s: Setup) -> Finding | None:
    """A zarr array over an fsspec or zip store, held where worker processes would use it."""
    if not (s.bare or s.processes):
        return None
    hs = [
        h
        for h in probes.held(s.dataset, pickled=True)
        if "[" not in h.path and _is_zarr(h.value) and type(h.value.store).__name__ in SHARED_STORES
    ]
    if not hs:
        return None
    names = ", ".join(
        f"{h.path} (zarr over {type(h.value.store).__name__} {h.value.store})" for h in hs[:3]
    )
    return finding(
        "zarr-store-before-fork",
        f"{names} opened in this process (pid {os.getpid()}); {s.forks}: an fsspec store's "
        "event loop does not survive fork (reads fail with 'Timeout context manager should be "
        "used inside a task' or hang) and forked readers of one zip file share its handle",
        loader_line(_open_line(hs[0].value), s.fix_batch),
        s.fork_severity,
    )


def _open_line(a: Any) -> str:
    """``wb.open_dataset('data.zarr', key='x')``: ours reopen the store in each worker."""
    from ..inputs.zarrstores import ref_of

    ref = ref_of(a)
    key = f", key={ref.path!r}" if ref.path else ""
    return f"wb.open_dataset({ref.location!r}{key})"
