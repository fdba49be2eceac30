"""Where a full-shuffle batch's time goes in-process, in one process, interleaved: the compiled
random-gather limit (the same rows, reused buffers), ``get_batch`` in a loop, the loader, and the
loader without its background gather of the next batch.

    .venv/bin/python benchmarks/gather_gap.py --batch 256      # needs loaders.py's data (1 GiB)

Every contender sums each batch; medians of 5 rounds, microseconds a batch.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import workbench as wb
from workbench.datasets.gather import native
from workbench.loading import fetch as _fetch
from workbench.loading.orders import epoch_order

ROOT = Path(__file__).resolve().parent.parent / "bench_data" / "loaders-1048576"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)  # as loaders.py: the consumer's sum on one thread
    bs = args.batch
    x, y = (np.load(ROOT / f, mmap_mode="r") for f in ("features.npy", "labels.npy"))
    ds = wb.open_dataset(ROOT / "store")
    order = epoch_order(len(x), "full", seed=0)
    nb = min(3000, len(x) // bs)
    bx, by, zero = np.empty((bs, x.shape[1]), x.dtype), np.empty(bs, y.dtype), np.zeros(1, np.int64)

    def limit() -> None:
        for k in range(nb):
            idx = np.sort(order[k * bs : (k + 1) * bs])
            native.take_rows([x], zero, idx, bx, 2)
            native.take_rows([y], zero, idx, by, 1)
            float(torch.from_numpy(bx).sum()) + float(torch.from_numpy(by).sum())

    def get_batch() -> None:
        for k in range(nb):
            b = ds.get_batch(np.sort(order[k * bs : (k + 1) * bs]))
            float(b["features"].sum()) + float(b["label"].sum())

    def loader() -> None:
        for k, b in enumerate(wb.loader(ds, batch_size=bs, shuffle="full", seed=0, num_workers=0)):
            float(b["features"].sum()) + float(b["label"].sum())
            if k == nb - 1:
                break

    def loader_no_background() -> None:
        start = _fetch.Fetch.start
        _fetch.Fetch.start = lambda self, idx: None
        try:
            loader()
        finally:
            _fetch.Fetch.start = start

    runs: dict[str, list[float]] = {
        f.__name__: [] for f in (limit, get_batch, loader, loader_no_background)
    }
    for f in (limit, get_batch, loader, loader_no_background):
        f()  # warm-up: pages mapped, helpers started
    for _ in range(args.rounds):
        for f in (limit, get_batch, loader, loader_no_background):
            t = time.perf_counter()
            f()
            runs[f.__name__].append((time.perf_counter() - t) / nb * 1e6)
    lim = statistics.median(runs["limit"])
    print(
        f"batch {bs}, {nb} batches a round, full shuffle, 1 KiB rows; us a batch (median of "
        f"{args.rounds}), and the limit's time / its time"
    )
    for name, v in runs.items():
        med = statistics.median(v)
        print(f"  {name:22s} {med:7.1f} us   {lim / med:5.2f}x the limit's rate")


if __name__ == "__main__":
    main()
