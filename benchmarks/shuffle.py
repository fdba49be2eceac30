"""Speed against shuffle quality: each order, and block order with contiguous runs (``run_rows``),
read in-process from a warm memory-mapped store, beside the physical limits of the same run.

Goal (issue 11): block order >= 0.8x a contiguous memcpy of the same bytes "with the option"
(``run_rows``); this prints which R gets there and what it costs in mixing
(``workbench.loading.orders.shuffle_quality``: 1.0 = a full shuffle, 0 = sequential).

    .venv/bin/python benchmarks/shuffle.py                  # 1 GiB store, 1 KiB rows, batch 1024
    .venv/bin/python benchmarks/shuffle.py --gib 0.25 --repeats 3

Every contender sums each batch (the same consumer); contenders run round-robin ``--repeats``
times and the median is reported, so a noisy machine slows all of them alike.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import workbench as wb
from workbench.loading.orders import shuffle_quality


def _store(folder: Path, rows: int) -> Path:
    path = folder / "shuffle.store"
    rng = np.random.default_rng(0)
    chunks = (
        rng.random((min(65536, rows - a), 256), dtype="float32") for a in range(0, rows, 65536)
    )
    wb.convert(chunks, path, progress=False)
    return path


def _loader_rate(ds, seconds: float, **options) -> tuple[float, float]:
    """Rows/s over ``seconds`` of batches, and the shuffle quality of those batches."""
    dl = wb.loader(ds, batch_size=options.pop("batch_size"), num_workers=0, seed=0, **options)
    rows, seen, t0 = 0, [], time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for batch in dl:
            batch["x"].sum()
            rows += len(batch["x"])
            if len(seen) < 200:
                seen.append(
                    dl.sampler._batch(
                        dl.sampler._epoch_order(dl.sampler.epoch), dl.sampler.batches_done - 1
                    )
                )
            if time.perf_counter() - t0 >= seconds:
                break
    dl.close()
    return rows / (time.perf_counter() - t0), shuffle_quality(seen, len(ds))


def _memcpy_rate(x: np.ndarray, batch: int, seconds: float) -> float:
    out, rows, t0 = np.empty((batch, x.shape[1]), x.dtype), 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for a in range(0, len(x) - batch, batch):
            np.copyto(out, x[a : a + batch])
            torch.from_numpy(out).sum()
            rows += batch
            if time.perf_counter() - t0 >= seconds:
                break
    return rows / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows = int(args.gib * 2**30 / 1024)
    folder = Path(tempfile.mkdtemp(prefix="wb-shuffle-"))
    try:
        path = _store(folder, rows)
        ds = wb.open_dataset(path)
        wb.warm(path)
        x = np.load(next(path.glob("**/x.npy")), mmap_mode="r")
        contenders = {
            "sequential": dict(shuffle="sequential"),
            "full": dict(shuffle="full"),
            "block": dict(shuffle="block"),
        }
        for r in (16, 64, 256):
            contenders[f"block run_rows={r}"] = dict(shuffle="block", run_rows=r)
        rates: dict[str, list[float]] = {k: [] for k in ["memcpy (one shard)", *contenders]}
        quality: dict[str, float] = {}
        for _ in range(args.repeats):
            rates["memcpy (one shard)"].append(_memcpy_rate(x, args.batch, args.seconds))
            for name, options in contenders.items():
                rate, q = _loader_rate(ds, args.seconds, batch_size=args.batch, **options)
                rates[name].append(rate)
                quality[name] = q
        memcpy = statistics.median(rates["memcpy (one shard)"])
        print(
            f"{rows:,} rows x 1 KiB, batch {args.batch}, warm cache, in-process, median of "
            f"{args.repeats}"
        )
        print(f"{'contender':24s} {'rows/s':>12s} {'x memcpy':>9s} {'quality':>8s}")
        for name, values in rates.items():
            rate = statistics.median(values)
            q = f"{quality[name]:8.2f}" if name in quality else " " * 8
            print(f"{name:24s} {rate:12,.0f} {rate / memcpy:9.2f} {q}")
        best = max(
            (n for n in contenders if n.startswith("block")),
            key=lambda n: statistics.median(rates[n]),
        )
        ratio = statistics.median(rates[best]) / memcpy
        print(
            f"goal block >= 0.8x memcpy: {best} {ratio:.2f}x "
            f"{'PASS' if ratio >= 0.8 else 'MISS'} (quality {quality[best]:.2f})"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
