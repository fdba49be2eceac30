"""The readers :func:`~workbench.bench.limits.compare_orders` times, each an endless stream of
batches of the same rows: the physical limits (a zero-copy read, a memcpy, random gathers),
``workbench.loader`` in each order, and the seeds' naive Datasets through a plain DataLoader.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .comparison import COMPARED

__all__: list[str] = []

Make = Callable[[], Iterator[Any]]


def every_reader(
    ds: Any, fx: Path, fy: Path, b: int, hdf5: Any, keys: tuple[str, str]
) -> list[tuple[str, str, str, Make]]:
    """``(name, kind, order, make)`` for every reader; ``make()`` starts a fresh endless stream."""
    from torch.utils.data import DataLoader

    from ..datasets.base import shared_tensor
    from ..datasets.gather import native, sharded_ok
    from ..loading.loaders import loader
    from ..loading.orders import epoch_order
    from .naive import MemmapPerItemDataset, MemoryMappedDataset, SeedHDF5Dataset

    x, y = np.load(fx, mmap_mode="r"), np.load(fy, mmap_mode="r")
    b = min(b, len(x))
    n = len(x) - len(x) % b  # whole batches: the limits reuse one buffer of b rows
    bx, by = np.empty((b, *x.shape[1:]), x.dtype), np.empty((b, *y.shape[1:]), y.dtype)
    tx, ty = torch.from_numpy(bx), torch.from_numpy(by)
    order = epoch_order(len(x), "full", seed=0)
    every = len(os.sched_getaffinity(0))

    def zero_copy() -> Iterator[Any]:
        while True:
            for a in range(0, n, b):
                yield (
                    shared_tensor(np.asarray(x[a : a + b])),
                    shared_tensor(np.asarray(y[a : a + b])),
                )

    def memcpy() -> Iterator[Any]:
        while True:
            for a in range(0, n, b):
                np.copyto(bx, x[a : a + b])
                np.copyto(by, y[a : a + b])
                yield tx, ty

    def gather(how: str) -> Make:
        sx, sy = shared_tensor(np.asarray(x)), shared_tensor(np.asarray(y))  # views, no copy
        xs, ys, zero = [np.asarray(x)], [np.asarray(y)], np.zeros(1, np.int64)

        def run() -> Iterator[Any]:
            while True:
                for a in range(0, n, b):
                    idx = np.sort(order[a : a + b]).astype(np.int64, copy=False)
                    if how == "compiled":
                        native.take_rows(xs, zero, idx, bx, every)
                        native.take_rows(ys, zero, idx, by, 1)
                    elif how == "torch":  # every core for the gather; the sum keeps one
                        keep = torch.get_num_threads()
                        torch.set_num_threads(every)
                        i = torch.from_numpy(idx)
                        torch.index_select(sx, 0, i, out=tx)
                        torch.index_select(sy, 0, i, out=ty)
                        torch.set_num_threads(keep)
                    else:
                        np.take(x, idx, axis=0, out=bx, mode="clip")  # "raise" buffers out
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
        ("limit: random gather, np.take on 1 core", "limit", "full", gather("take")),
    ]
    if every > 1:
        out.append(
            (
                f"limit: random gather, torch.index_select on {every} threads",
                "limit",
                "full",
                gather("torch"),
            )
        )
    if native is not None and sharded_ok([np.asarray(x)]) and sharded_ok([np.asarray(y)]):
        out.append(
            (
                f"limit: random gather, compiled take_rows on {every} threads",
                "limit",
                "full",
                gather("compiled"),
            )
        )
    for o in COMPARED:  # named with the read-ahead its defaults choose for this batch size
        with loader(ds, batch_size=b, shuffle=o, seed=0) as probe:
            w, kind = probe.num_workers, probe.worker_type
        how = f"{w} {kind}s" if w > 1 else f"1 {kind}" if w else "in-process"
        out.append((f"workbench.loader(shuffle={o!r}), {how}", "workbench", o, ours(o)))
    runs = max(1, b // 16)  # 16 contiguous runs per batch: copied as slices
    out.append(
        (
            f"workbench.loader(shuffle='block', run_rows={runs})",
            "runs",
            "block",
            ours("block", run_rows=runs),
        )
    )
    out += [
        (
            "naive: seed 000's MemoryMappedDataset, fixed batches",
            "naive",
            "sequential",
            plain(lambda: MemoryMappedDataset(fx, fy, b), batch_size=None),
        ),
        (
            "naive: seed 000's MemoryMappedDataset, whole-batch shuffle",
            "naive",
            "block",
            plain(lambda: MemoryMappedDataset(fx, fy, b), batch_size=None, shuffle=True),
        ),
        (
            "naive: seed 001's per-item memmap Dataset",
            "naive",
            "full",
            plain(lambda: MemmapPerItemDataset(fx, fy), batch_size=b, shuffle=True),
        ),
    ]
    if hdf5 is not None:
        out.append(
            (
                "naive: seed 000's per-item HDF5Dataset",
                "naive",
                "full",
                plain(lambda: SeedHDF5Dataset(hdf5, *keys), batch_size=b, shuffle=True),
            )
        )
    return out
