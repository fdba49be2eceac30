"""``wb.stats(obj)``: out-of-core per-column statistics in one pass, chunk by chunk, with memory
bounded by one chunk plus the quantile sample; on a Dask array (or with a Dask ``client``) the
chunks are reduced as Dask tasks. How each figure is computed, and how far off the approximate
ones can be: :mod:`workbench.explore.moments`.

>>> s = stats("demo_data/demo.store")
>>> labels = np.load("demo_data/raw/labels.npy")
>>> s.rows, sorted(s.columns), round(float(s.columns["label"]["mean"][0]), 3) == round(
...     float(labels.mean()), 3
... )
(2000, ['features', 'label', 'tokens nnz/row'], True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InvalidInputError
from ..format.chunks import row_ranges
from .moments import Partial, merge, partial, summary
from .shown import Shown

__all__ = ["Stats", "stats"]

CHUNK_BYTES = 8 << 20  # rows read per step: about this many bytes


@dataclass(repr=False)
class Stats(Shown):
    """Per-column figures: ``columns[name][figure]`` is an array over the column's features.

    Parameters
    ----------
    source : str
        The input's path or name.
    rows : int
        Rows read.
    columns : dict
        ``{column: {figure: array}}``; figures: count, mean, std, min, max, nan, inf,
        zero_fraction, p1, p50, p99, hist_edges, hist_counts. A sparse column ``c`` appears as
        ``"c nnz/row"``.
    features : dict of str to list of str
        The feature names of the columns that have them.
    notes : list of str
        How the figures were computed, where that is not the default.
    """

    source: str
    rows: int
    columns: dict[str, dict[str, np.ndarray]]
    features: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    view = "stats"  # drawn by the shell's views (explore.shown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "notes": self.notes,
            "columns": {
                n: {k: np.asarray(v).tolist() for k, v in figs.items()}
                for n, figs in self.columns.items()
            },
            "features": self.features,
        }

    def __repr__(self) -> str:
        return f"Stats({self.source}: {self.rows:,} rows, {len(self.columns)} columns)"


def stats(
    obj: Any,
    columns: str | list[str] | None = None,
    *,
    client: Any = None,
    progress: bool = False,
    seed: int = 0,
) -> Stats:
    """Statistics of every dense column of ``obj`` (anything ``wb.open_dataset`` opens, or a
    Dask array); a sparse column gives its nonzeros per row.

    Parameters
    ----------
    obj : path, array, table, dataset or Dask array
        Anything ``wb.open_dataset`` opens, or a Dask array.
    columns : str or list of str, optional
        The columns to summarize (default: all).
    client : distributed.Client, optional
        Reduce the chunks on its workers (a path or a Dask array; other inputs in this process).
    progress : bool, default False
        Draw a progress bar.
    seed : int, default 0
        Seeds the quantile sample.

    Returns
    -------
    Stats

    Examples
    --------
    >>> stats(np.arange(12.0).reshape(6, 2)).columns["x"]["std"].round(3).tolist()
    [3.416, 3.416]
    """
    from ..inputs.kinds import is_dask_array

    if is_dask_array(obj):
        return _dask_stats(obj, client, seed)
    if client is not None and isinstance(obj, (str, os.PathLike)):
        return _client_stats(os.fspath(obj), columns, client, seed)
    from ..datasets import open_dataset
    from ..ui.progress import reporter

    ds = open_dataset(obj, columns=columns, sparse="csr")
    n = len(ds)
    step = max(1, CHUNK_BYTES // max(1, ds.row_nbytes))
    running: dict[str, Partial] = {}
    bar = reporter(progress, f"stats {_name(obj)}")
    try:
        for index, (start, stop) in enumerate(row_ranges(n, step)):
            for name, block in _blocks(ds.get_batch(np.arange(start, stop))).items():
                p = partial(block, index, seed)
                running[name] = merge(running[name], p) if name in running else p
            bar(stop, n)
    finally:
        bar.close()
    notes = (
        ["computed in this process (a client reduces only path inputs on its workers)"]
        if client is not None
        else []
    )
    return Stats(
        _name(obj), n, {k: summary(p) for k, p in running.items()}, _feature_names(ds), notes
    )


def _blocks(batch: dict[str, Any]) -> dict[str, np.ndarray]:
    import torch

    out = {}
    for name, t in batch.items():
        if t.layout == torch.sparse_csr:
            out[f"{name} nnz/row"] = np.diff(t.crow_indices().numpy()).reshape(-1, 1)
        else:
            a = t.numpy()
            out[name] = a.reshape(len(a), -1)
    return out


def _feature_names(ds: Any) -> dict[str, list[str]]:
    return {
        c.name: list(c.names) for c in getattr(ds, "column_specs", ()) if getattr(c, "names", None)
    }


def _name(obj: Any) -> str:
    if isinstance(obj, (str, os.PathLike)):
        return os.fspath(obj)
    return type(obj).__name__ if not isinstance(obj, np.ndarray) else "array"


def _range_partials(
    source: str, columns: Any, start: int, stop: int, index: int, seed: int
) -> dict[str, Partial]:
    """Runs on a worker: the partials of rows ``[start, stop)`` of ``source``."""
    from ..datasets import open_dataset

    ds = open_dataset(source, columns=columns, sparse="csr")
    return {
        k: partial(b, index, seed) for k, b in _blocks(ds.get_batch(np.arange(start, stop))).items()
    }


def _client_stats(source: str, columns: Any, client: Any, seed: int) -> Stats:
    from ..datasets import open_dataset

    ds = open_dataset(source, columns=columns, sparse="csr")
    n, step = len(ds), max(1, CHUNK_BYTES // max(1, ds.row_nbytes))
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    ranges = list(enumerate(row_ranges(n, step)))
    running: dict[str, Partial] = {}
    for wave in range(0, len(ranges), 2 * workers):  # bounded in flight: two tasks per worker
        futures = [
            client.submit(_range_partials, source, columns, a, b, i, seed, pure=False)
            for i, (a, b) in ranges[wave : wave + 2 * workers]
        ]
        for parts in client.gather(futures):
            for k, p in parts.items():
                running[k] = merge(running[k], p) if k in running else p
    return Stats(
        source,
        n,
        {k: summary(p) for k, p in running.items()},
        _feature_names(ds),
        [f"reduced on {workers} Dask workers"],
    )


def _dask_stats(arr: Any, client: Any, seed: int) -> Stats:
    import dask

    if any(np.isnan(c) for c in arr.chunks[0]):
        raise InvalidInputError(
            "the Dask array has unknown chunk sizes; call arr.compute_chunk_sizes() first"
        )
    flat = arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr
    flat = flat.rechunk({1: -1}) if flat.ndim == 2 else flat
    parts = [
        dask.delayed(partial)(block, i, seed) for i, block in enumerate(flat.to_delayed().ravel())
    ]
    while len(parts) > 1:  # a tree: at most a few partials alive at once
        parts = [
            dask.delayed(merge)(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    total = client.compute(parts[0]).result() if client is not None else parts[0].compute()
    return Stats(
        "dask array",
        int(arr.shape[0]),
        {"array": summary(total)},
        notes=[
            f"reduced as {len(flat.chunks[0])} Dask tasks"
            + (" on the client's workers" if client is not None else "")
        ],
    )
