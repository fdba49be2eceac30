"""Each shuffle order against its own physical limit and the seeds' naive Datasets, in one run.

A loader's rate means little alone, and less against the wrong ceiling: a shuffled batch is a
gather of scattered rows, which no loader copies at memcpy speed. So every order is set beside
the fastest way to get the same rows from the same bytes, measured in the same run:

- ``sequential`` against zero-copy views of the same batch-sized slices (nothing is copied);
- ``block`` against a contiguous memcpy of those slices into a reused buffer;
- ``full`` against a random gather of the same rows (each batch's rows sorted, as the sampler
  does) into a reused buffer, from the page cache: ``np.take`` on one core,
  ``torch.index_select`` on every core and, where it is built, the compiled gather the readers
  use (``take_rows``) on every core, the fastest of them;

and beside the seeds' naive Dataset classes (:mod:`workbench.bench.naive`) read through a plain
``DataLoader`` on the same data, in the order each one offers. Every reader consumes each batch
the same way (a sum over every tensor, :func:`workbench.bench.throughput.consume`), on a warm page
cache; the readers take turns, ``rounds`` times ``seconds`` each, and each keeps its best round,
so a busy machine slows them alike (the table's "worst" column is the worst round over the best:
how noisy the run was). Memory stays at a few batches: nothing is loaded whole. The limits are
serial (read, then sum, on one core); a loader that reads ahead on another core while this one
sums can pass 1.0x.

``print(wb.compare_orders(store).text())`` prints the table; ``workbench demo`` does.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError
from ..format.catalog import read_manifest
from ..units import human_bytes
from .throughput import measure

__all__ = ["OrderComparison", "compare_orders"]

COMPARED = ("sequential", "block", "full")
LIMITS = {"sequential": "a zero-copy read of the same batches",
          "block": "a memcpy of the same bytes", "full": "the random-gather limit"}
LABELS = {"sequential": "sequential", "block": "block", "full": "full shuffle"}


@dataclass(frozen=True)
class Reading:
    """One reader's best round: ``kind`` is "limit", "workbench" or "naive"; ``runs`` holds the
    rows/s of every round, ``rows_per_s`` and ``mb_per_s`` the best."""

    name: str
    kind: str
    order: str
    rows_per_s: float
    mb_per_s: float
    runs: tuple[float, ...]


@dataclass(frozen=True)
class OrderComparison:
    """What :func:`compare_orders` measured; every ratio is computed from these readings."""

    source: str
    rows: int
    row_bytes: int
    batch_size: int
    seconds: float
    rounds: int
    readings: tuple[Reading, ...]

    def _of(self, kind: str, order: str) -> list[Reading]:
        return [r for r in self.readings if r.kind == kind and r.order == order]

    def limit(self, order: str) -> Reading:
        """The order's limit: the fastest limit reader for it (for "full", the faster gather)."""
        return max(self._of("limit", order), key=lambda r: r.rows_per_s)

    def ours(self, order: str) -> Reading:
        return self._of("workbench", order)[0]

    def naive(self, order: str) -> list[Reading]:
        return self._of("naive", order)

    def ratio(self, order: str, against: Reading | None = None) -> float:
        """workbench's rows/s in ``order`` over ``against`` (default: the order's limit)."""
        ref = against or self.limit(order)
        return self.ours(order).rows_per_s / ref.rows_per_s if ref.rows_per_s else float("inf")

    def header(self) -> str:
        return (f"{self.rows:,} rows x {self.row_bytes:,} B ({human_bytes(self.rows * self.row_bytes)})"
                f" of {self.source}, batch {self.batch_size:,}, warm page cache; the naive Datasets"
                f" through DataLoader(num_workers=0); every reader sums each batch; best of"
                f" {self.rounds} interleaved rounds of {self.seconds:g} s each")

    def table(self) -> str:
        lines = [f"{'reader':<59}{'order':<11}{'rows/s':>11}{'MB/s':>8}{'worst':>7}"]
        for r in self.readings:
            worst = min(r.runs) / r.rows_per_s if r.rows_per_s else 0.0
            lines.append(f"{r.name:<59}{r.order:<11}{r.rows_per_s:>11,.0f}{r.mb_per_s:>8,.0f}"
                         f"{worst:>7.2f}")
        return "\n".join(lines)

    def verdicts(self) -> list[str]:
        """One sentence per order: its rate, then each ratio spelled out (wrapped at 96)."""
        out = []
        for order in COMPARED:
            lim = self.limit(order)
            words = (f"{LABELS[order]}: {_rate(self.ours(order).rows_per_s)} rows/s = "
                     f"{_times(self.ratio(order))} {LIMITS[order]} ({_rate(lim.rows_per_s)} rows/s"
                     f"{', ' + lim.name.split(', ', 1)[1] if order == 'full' else ''})")
            naive = [f"{_times(self.ratio(order, r))} {r.name.removeprefix('naive: ')}"
                     for r in self.naive(order)]
            for r in self._of("runs", order):  # the option that trades mixing for copy speed
                rows = r.name.split("run_rows=")[1].rstrip(")")
                words += (f"; with run_rows={rows}: {_times(r.rows_per_s / lim.rows_per_s)} "
                          f"{LIMITS[order]}")
            out.append(textwrap.fill(words + ("; " + ", ".join(naive) if naive else ""), 96,
                                     subsequent_indent="    ", break_on_hyphens=False))
        return out

    def text(self) -> str:
        """The header, the table and the verdicts: what the demo and the notebook print."""
        head = textwrap.fill(self.header(), 96, break_on_hyphens=False)
        return "\n".join([head, "", self.table(), "", *self.verdicts()])


def _rate(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k" if x >= 1e4 else f"{x:,.0f}"


def _times(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:,.0f}x"


def compare_orders(store: str | os.PathLike[str], *, batch_size: int = 1024, seconds: float = 0.5,
                   rounds: int = 3, features: str = "features", target: str | None = None,
                   hdf5: str | os.PathLike[str] | None = None) -> OrderComparison:
    """Measure ``workbench.loader`` in each order next to that order's limit and the naive
    Datasets, on the ``features`` and ``target`` columns (default: the store's target) of a
    workbench store. The limits and the memmap Datasets read the first shard's own ``.npy``
    files, the bytes the loader reads (one shard is like with like); ``hdf5``, a file holding the
    same rows as datasets named like the columns, adds the seed's per-item ``SeedHDF5Dataset``.
    Takes about ``(rounds + 1) * seconds`` per reader (11 readers with ``hdf5``).

    >>> c = compare_orders("demo_data/demo.store", batch_size=256, seconds=0.05, rounds=1,
    ...                    hdf5="demo_data/raw/demo.h5")
    >>> [r.order for r in c.readings if r.kind == "workbench"]
    ['sequential', 'block', 'full']
    >>> all(c.limit(o).rows_per_s > 0 and c.ratio(o) > 0 for o in COMPARED)
    True
    >>> words = " ".join(c.verdicts()[2].split())   # one sentence per order, wrapped at 96
    >>> words.startswith("full shuffle: "), "x the random-gather limit (" in words
    (True, True)
    """
    if batch_size < 1 or seconds <= 0 or rounds < 1:
        raise InvalidInputError(f"compare_orders: batch_size={batch_size}, seconds={seconds}, "
                                f"rounds={rounds}; pass batch_size >= 1, seconds > 0, rounds >= 1")
    from ..datasets import open_dataset

    version, m = read_manifest(store)
    target = target or m.target
    files = {f.column: version / f.path for f in m.shards[0].files}
    if features not in files or target not in files:
        raise InvalidInputError(f"compare_orders: {store} needs dense columns {features!r} and "
                                f"{target!r} (has {sorted(files)}); name them with features=, target=")
    ds = open_dataset(store, columns=[features, target])
    readers = _readers(ds, files[features], files[target], batch_size, hdf5, (features, target))
    best: dict[str, tuple[float, float]] = {}
    runs: dict[str, list[float]] = {name: [] for name, *_ in readers}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # the consumer's sum on one thread everywhere, as the benchmark does
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            for rnd in range(rounds + 1):   # round 0 warms every reader up and is not kept
                for name, _, _, make in readers:
                    it = make()
                    try:
                        t = measure(it, max_seconds=seconds if rnd else seconds / 2)
                    finally:
                        it.close()
                    if rnd:
                        runs[name].append(t.samples_per_s)
                        if t.samples_per_s >= best.get(name, (-1.0, 0.0))[0]:
                            best[name] = (t.samples_per_s, t.mb_per_s)
    finally:
        torch.set_num_threads(threads)
    got = tuple(Reading(name, kind, order, *best[name], tuple(runs[name]))
                for name, kind, order, _ in readers)
    return OrderComparison(str(store), m.shards[0].rows, ds.row_nbytes, batch_size, seconds,
                           rounds, got)


Make = Callable[[], Iterator[Any]]


def _readers(ds: Any, fx: Path, fy: Path, b: int, hdf5: Any,
             keys: tuple[str, str]) -> list[tuple[str, str, str, Make]]:
    """``(name, kind, order, make)`` for every reader; ``make()`` starts a fresh endless stream."""
    from torch.utils.data import DataLoader

    from ..datasets.base import shared_tensor
    from ..datasets.gather import native, sharded_ok
    from ..loading.loaders import loader
    from ..loading.orders import epoch_order
    from .naive import MemmapPerItemDataset, MemoryMappedDataset, SeedHDF5Dataset

    x, y = np.load(fx, mmap_mode="r"), np.load(fy, mmap_mode="r")
    b = min(b, len(x))
    n = len(x) - len(x) % b   # whole batches: the limits reuse one buffer of b rows
    bx, by = np.empty((b, *x.shape[1:]), x.dtype), np.empty((b, *y.shape[1:]), y.dtype)
    tx, ty = torch.from_numpy(bx), torch.from_numpy(by)
    order = epoch_order(len(x), "full", seed=0)
    every = len(os.sched_getaffinity(0))

    def zero_copy() -> Iterator[Any]:
        while True:
            for a in range(0, n, b):
                yield shared_tensor(np.asarray(x[a:a + b])), shared_tensor(np.asarray(y[a:a + b]))

    def memcpy() -> Iterator[Any]:
        while True:
            for a in range(0, n, b):
                np.copyto(bx, x[a:a + b])
                np.copyto(by, y[a:a + b])
                yield tx, ty

    def gather(how: str) -> Make:
        sx, sy = shared_tensor(np.asarray(x)), shared_tensor(np.asarray(y))   # views, no copy
        xs, ys, zero = [np.asarray(x)], [np.asarray(y)], np.zeros(1, np.int64)

        def run() -> Iterator[Any]:
            while True:
                for a in range(0, n, b):
                    idx = np.sort(order[a:a + b]).astype(np.int64, copy=False)
                    if how == "compiled":
                        native.take_rows(xs, zero, idx, bx, every)
                        native.take_rows(ys, zero, idx, by, 1)
                    elif how == "torch":   # every core for the gather; the sum keeps one
                        keep = torch.get_num_threads()
                        torch.set_num_threads(every)
                        i = torch.from_numpy(idx)
                        torch.index_select(sx, 0, i, out=tx)
                        torch.index_select(sy, 0, i, out=ty)
                        torch.set_num_threads(keep)
                    else:
                        np.take(x, idx, axis=0, out=bx, mode="clip")   # "raise" buffers out
                        np.take(y, idx, axis=0, out=by, mode="clip")
                    yield tx, ty
        return run

    def ours(order_: str, **options: Any) -> Make:
        def run() -> Iterator[Any]:
            with loader(ds, batch_size=b, shuffle=order_, seed=0, **options) as dl:
                while True:
                    yield from dl
        return run

    def plain(make_ds: Callable[[], Any], **kw: Any) -> Make:
        def run() -> Iterator[Any]:
            data = make_ds()
            while True:
                yield from DataLoader(data, generator=torch.Generator().manual_seed(0), **kw)
        return run

    out: list[tuple[str, str, str, Make]] = [
        ("limit: zero-copy read of the same batches", "limit", "sequential", zero_copy),
        ("limit: memcpy of the same batches", "limit", "block", memcpy),
        ("limit: random gather, np.take on 1 core", "limit", "full", gather("take"))]
    if every > 1:
        out.append((f"limit: random gather, torch.index_select on {every} threads", "limit",
                    "full", gather("torch")))
    if native is not None and sharded_ok([np.asarray(x)]) and sharded_ok([np.asarray(y)]):
        out.append((f"limit: random gather, compiled take_rows on {every} threads", "limit",
                    "full", gather("compiled")))
    for o in COMPARED:   # named with the read-ahead its defaults choose for this batch size
        with loader(ds, batch_size=b, shuffle=o, seed=0) as probe:
            w, kind = probe.num_workers, probe.worker_type
        how = f"{w} {kind}s" if w > 1 else f"1 {kind}" if w else "in-process"
        out.append((f"workbench.loader(shuffle={o!r}), {how}", "workbench", o, ours(o)))
    runs = max(1, b // 16)  # 16 contiguous runs per batch: copied as slices
    out.append((f"workbench.loader(shuffle='block', run_rows={runs})", "runs", "block",
                ours("block", run_rows=runs)))
    out += [
        ("naive: seed 000's MemoryMappedDataset, fixed batches", "naive", "sequential",
         plain(lambda: MemoryMappedDataset(fx, fy, b), batch_size=None)),
        ("naive: seed 000's MemoryMappedDataset, whole-batch shuffle", "naive", "block",
         plain(lambda: MemoryMappedDataset(fx, fy, b), batch_size=None, shuffle=True)),
        ("naive: seed 001's per-item memmap Dataset", "naive", "full",
         plain(lambda: MemmapPerItemDataset(fx, fy), batch_size=b, shuffle=True))]
    if hdf5 is not None:
        out.append(("naive: seed 000's per-item HDF5Dataset", "naive", "full",
                    plain(lambda: SeedHDF5Dataset(hdf5, *keys), batch_size=b, shuffle=True)))
    return out
