"""Who should read the batches: in-process, threads or worker processes, with and without a
pure-Python per-batch transform, and whether ``num_workers=None`` (the default) picks well.

Goals (issue 11): ``worker_type="process"`` >= 0.5x the thread path on the same order, and faster
than threads when the per-batch transform is pure Python; ``num_workers=None`` never more than
10 % below the best explicit setting.

    .venv/bin/python benchmarks/workers.py                 # 128 MiB store, batch 256, full order
    .venv/bin/python benchmarks/workers.py --gib 0.25 --batch 1024 --repeats 3

Steady state, as a training run sees it: each contender reads one whole epoch first (worker
start-up, and a forked worker's first touch of every page of the memory map), then whole epochs
are timed until ``--seconds`` have passed; worker processes are persistent. Every contender sums
each batch (the same consumer); rounds are interleaved and the median is reported.
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

CONFIGS = {  # name -> loader options
    "num_workers=None (default)": dict(num_workers=None),
    "in-process (0)": dict(num_workers=0),
    "2 threads": dict(num_workers=2, worker_type="thread"),
    "2 processes": dict(num_workers=2, worker_type="process", persistent_workers=True),
}


def _score(batch: dict, values: int) -> dict:
    """Pure-Python per-row work over ``values`` numbers a row (as a tokenizer or an augmentation
    written in Python does); it holds the GIL: ~1 us a row at 16, ~8 us at 128 here."""
    rows = batch["x"][:, :values].tolist()
    batch["score"] = torch.tensor([sum(v * v for v in row) for row in rows])
    return batch


def light_transform(batch: dict) -> dict:
    return _score(batch, 16)


def heavy_transform(batch: dict) -> dict:
    return _score(batch, 128)


TRANSFORMS = {"none": None, "Python, light": light_transform, "Python, heavy": heavy_transform}


def _store(folder: Path, rows: int) -> Path:
    path = folder / "workers.store"
    rng = np.random.default_rng(0)
    chunks = (
        {
            "x": rng.random((min(65536, rows - a), 256), dtype="float32"),
            "y": np.arange(a, min(a + 65536, rows)),
        }
        for a in range(0, rows, 65536)
    )
    wb.convert(chunks, path, progress=False)
    return path


def rate(ds, batch: int, seconds: float, transform, options: dict) -> float:
    """Rows/s over whole epochs after a first, untimed one."""
    dl = wb.loader(ds, batch_size=batch, shuffle="full", seed=0, transform=transform, **options)
    try:
        for b in dl:  # the warm-up epoch
            b["x"].sum()
        rows, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            for b in dl:
                b["x"].sum()
                rows += len(b["x"])
        return rows / (time.perf_counter() - t0)
    finally:
        dl.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", type=float, default=0.125)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the consumer's own intra-op threads would spin on the workers' cores
    rows = int(args.gib * 2**30 / 1024)
    folder = Path(tempfile.mkdtemp(prefix="wb-workers-"))
    try:
        path = _store(folder, rows)
        wb.warm(path)
        ds = wb.open_dataset(path)
        runs: dict[tuple[str, str], list[float]] = {(t, c): [] for t in TRANSFORMS for c in CONFIGS}
        for _ in range(args.repeats):
            for (t, c), values in runs.items():
                values.append(rate(ds, args.batch, args.seconds, TRANSFORMS[t], CONFIGS[c]))
        med = {k: statistics.median(v) for k, v in runs.items()}
        print(
            f"{rows:,} rows x 1 KiB, batch {args.batch}, full order, warm cache, steady state, "
            f"median of {args.repeats}"
        )
        print(f"{'transform':14s} {'readers':28s} {'rows/s':>12s} {'x best':>7s}")
        for t in TRANSFORMS:
            best = max(med[(t, c)] for c in CONFIGS)
            for c in CONFIGS:
                print(f"{t:14s} {c:28s} {med[(t, c)]:12,.0f} {med[(t, c)] / best:7.2f}")
        print("goals:")
        checks = [
            (
                "processes >= 0.5x threads (no transform, 2 each)",
                med[("none", "2 processes")] / med[("none", "2 threads")],
                0.5,
            )
        ]
        for t in TRANSFORMS:
            if t != "none":
                checks.append(
                    (
                        f"processes > threads, {t} transform (2 processes / best thread setting)",
                        med[(t, "2 processes")]
                        / max(med[(t, c)] for c in ("in-process (0)", "2 threads")),
                        1.0,
                    )
                )
        for t in TRANSFORMS:
            best = max(med[(t, c)] for c in CONFIGS if "default" not in c)
            checks.append(
                (
                    f"num_workers=None >= 0.9x the best explicit setting ({t})",
                    med[(t, "num_workers=None (default)")] / best,
                    0.9,
                )
            )
        for name, ratio, need in checks:
            ok = ratio > need if need == 1.0 else ratio >= need
            print(f"  {'PASS' if ok else 'MISS'} {name}: {ratio:.2f}x")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
