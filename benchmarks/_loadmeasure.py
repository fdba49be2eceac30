"""Helpers for ``benchmarks/loaders.py``: the bench data, a memory sampler, timed runs.

Memory is sampled every 0.2 s in a background thread over this process and all its descendants
(DataLoader workers) from ``/proc/<pid>/smaps_rollup``: ``anon`` = Pss_Anon + Pss_Shmem summed
(real, non-page-cache memory; PSS splits pages that forked workers share, and shared-memory batch
tensors count), ``rss`` = summed RSS, which counts every mapped page-cache page once per process.

>>> paths = ensure_data(Path("bench_data/loaders-2048MiB"), rows=2_097_152)
>>> r = timed(lambda: iter(batches), seconds=6)        # {"samples": .., "peak_anon": .., ...}
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.bench.throughput import consume

# The consumer's sum runs on 1 torch thread in every contender: on 2 busy cores torch's 2-thread
# reductions stall on descheduled threads (a 256x256 sum: 30 us -> 2.6 ms), which measured torch's
# scheduling, not the loader. ``--torch-threads`` / this variable changes it.
torch.set_num_threads(int(os.environ.get("WB_BENCH_TORCH_THREADS", "1")))

FEATURES = 256
ROW_BYTES = FEATURES * 4 + 8  # float32 features + int64 label, per sample
GIB = 1 << 30


# ---- memory -----------------------------------------------------------------------------------


def _rollup(pid: int) -> tuple[int, int]:
    """(anonymous + shmem PSS, RSS) of one process in bytes; (0, 0) if it is gone."""
    anon = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss_Anon", "Pss_Shmem"):
                    anon += int(rest.split()[0]) << 10
                elif key == "Rss":
                    rss = int(rest.split()[0]) << 10
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return anon, rss


def tree_memory() -> tuple[int, int]:
    """Σ anonymous PSS and Σ RSS over this process and its descendants, in bytes."""
    import psutil

    me = psutil.Process()
    pids = [me.pid]
    try:
        pids += [c.pid for c in me.children(recursive=True)]
    except psutil.Error:
        pass
    anon = rss = 0
    for pid in pids:
        a, r = _rollup(pid)
        anon, rss = anon + a, rss + r
    return anon, rss


class MemSampler:
    """Background thread: peaks of :func:`tree_memory` every ``every`` seconds while running.

    ``mark()`` samples now and restarts ``peak_anon_since_mark`` (growth after a point)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak_anon, self.peak_rss, self.peak_anon_since_mark = every, 0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="memsampler")

    def sample(self) -> int:
        anon, rss = tree_memory()
        self.peak_anon, self.peak_rss = max(self.peak_anon, anon), max(self.peak_rss, rss)
        self.peak_anon_since_mark = max(self.peak_anon_since_mark, anon)
        return anon

    def mark(self) -> int:
        self.peak_anon_since_mark = 0
        return self.sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> MemSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---- timing -----------------------------------------------------------------------------------


def timed(
    make: Callable[[], Iterable[Any]],
    *,
    seconds: float,
    max_batches: int | None = None,
    rows_per_batch: int | None = None,
    from_start: bool = False,
) -> dict[str, float]:
    """One run: iterate ``make()`` consuming every batch until ``seconds`` or ``max_batches`` or
    the end (one epoch). Rates count from the first batch (``from_start``: from the call, the
    first batch's rows and time included); the first batch's latency is its own figure.
    Memory: peaks over the run, and ``anon_growth`` = peak after the first batch minus the level
    at the first batch (flat over the epoch means ~0)."""
    with MemSampler() as mem:
        t0 = time.perf_counter()
        it = iter(make())
        n = samples = nbytes = at_first = 0
        start = first = end = 0.0
        for batch in it:
            rows, b = consume(batch)
            now = time.perf_counter()
            n += 1
            if n == 1:
                start, first = (t0 if from_start else now), now - t0
                at_first = mem.mark()
            if n > 1 or from_start:
                samples += rows_per_batch or rows
                nbytes += b
            del batch
            if n >= 3 and ((max_batches and n >= max_batches) or now - t0 >= seconds):
                break
        end = time.perf_counter()
        mem.sample()
        close = getattr(it, "close", None) or getattr(it, "_shutdown_workers", None)
        if close is not None:
            close()
    secs = end - start if n > 1 or from_start else 0.0
    return {
        "samples": samples,
        "bytes": nbytes,
        "seconds": secs,
        "batches": n,
        "samples_per_s": samples / secs if secs > 0 else 0.0,
        "mb_per_s": nbytes / 1e6 / secs if secs > 0 else 0.0,
        "first_batch_s": first,
        "peak_anon": mem.peak_anon,
        "peak_rss": mem.peak_rss,
        "anon_growth": max(0, mem.peak_anon_since_mark - at_first),
    }


def drop_caches() -> None:
    """Flush dirty pages and drop the page cache (root only). Live mappings keep their pages."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def median_of(
    make: Callable[[], Iterable[Any]],
    *,
    runs: int | None = None,
    seconds: float,
    warmup_s: float = 1.5,
    max_batches: int | None = None,
    cold: bool = False,
    rows_per_batch: int | None = None,
) -> dict[str, Any]:
    """A warm-up run (none when cold), then ``runs`` timed runs; medians plus every run's rate.

    ``cold``: the page cache is dropped before each run; ``make`` must open a new mapping. Cold
    rates count from the start, the first batch included: with the device's read-ahead
    (``read_ahead_kb``, 8 MiB on this VM's disk) the first batch of a shuffled order can fault in
    most of a file, and a rate from the first batch on would leave that read out.
    ``runs`` defaults to ``WB_BENCH_RUNS`` (3): loaders.py sets 1 and repeats the child in
    interleaved rounds instead."""
    runs = runs or int(os.environ.get("WB_BENCH_RUNS", "3"))
    if not cold and warmup_s > 0:
        timed(make, seconds=warmup_s, max_batches=max_batches, rows_per_batch=rows_per_batch)
    results = []
    for _ in range(runs):
        if cold:
            drop_caches()
        results.append(
            timed(
                make,
                seconds=seconds,
                max_batches=max_batches,
                rows_per_batch=rows_per_batch,
                from_start=cold,
            )
        )
    rates = [r["samples_per_s"] for r in results]
    mid = sorted(results, key=lambda r: r["samples_per_s"])[len(results) // 2]
    return {
        **mid,
        "runs": rates,
        "peak_anon": max(r["peak_anon"] for r in results),
        "peak_rss": max(r["peak_rss"] for r in results),
        "anon_growth": max(r["anon_growth"] for r in results),
        "first_batch_s": statistics.median(r["first_batch_s"] for r in results),
    }


class OrderSampler(torch.utils.data.Sampler):
    """A fixed order of items (the shared full-shuffle order) as a torch Sampler."""

    def __init__(self, order: np.ndarray) -> None:
        self.order = order

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())


# ---- data -------------------------------------------------------------------------------------


def ensure_data(root: Path, rows: int, *, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Write (or reuse) the bench files under ``root``: rows × 256 float32 + int64 labels.

    features.npy / labels.npy (memmaps), ``store`` (workbench.convert), ``data.h5``
    (``features``/``label``, 1024-row chunks), ``fsl.parquet`` (``features`` fixed_size_list +
    ``label``, 64k-row groups: HF datasets), ``wide.parquet`` (``f0..f255`` + ``label``,
    8192-row groups: the seed's Parquet + Dask class selects feature columns by name)."""
    root.mkdir(parents=True, exist_ok=True)
    p = {
        k: root / v
        for k, v in dict(
            features="features.npy",
            labels="labels.npy",
            store="store",
            h5="data.h5",
            fsl="fsl.parquet",
            wide="wide.parquet",
            hf_cache="hf_cache",
        ).items()
    }
    step = 1 << 18
    if not (p["features"].exists() and p["labels"].exists()):
        t = time.perf_counter()
        rng = np.random.default_rng(0)
        x = np.lib.format.open_memmap(root / "features.tmp.npy", "w+", np.float32, (rows, FEATURES))
        y = np.lib.format.open_memmap(root / "labels.tmp.npy", "w+", np.int64, (rows,))
        for a in range(0, rows, step):
            b = min(rows, a + step)
            x[a:b] = rng.standard_normal((b - a, FEATURES), dtype=np.float32)
            y[a:b] = rng.integers(0, 10, b - a)
        x.flush(), y.flush()
        del x, y
        os.replace(root / "labels.tmp.npy", p["labels"])
        os.replace(root / "features.tmp.npy", p["features"])
        log(f"  wrote features.npy + labels.npy in {time.perf_counter() - t:.1f} s")
    x = np.load(p["features"], mmap_mode="r")
    y = np.load(p["labels"], mmap_mode="r")
    if not (p["store"] / "CURRENT").exists():
        import workbench

        t = time.perf_counter()
        workbench.convert(
            {"features": str(p["features"]), "label": str(p["labels"])},
            p["store"],
            target="label",
            progress=False,
            overwrite=True,
        )
        log(f"  wrote store (workbench.convert) in {time.perf_counter() - t:.1f} s")
    if not p["h5"].exists():
        import h5py

        t = time.perf_counter()
        tmp = root / "data.tmp.h5"
        with h5py.File(tmp, "w") as f:
            fx = f.create_dataset("features", (rows, FEATURES), np.float32, chunks=(1024, FEATURES))
            fy = f.create_dataset("label", (rows,), np.int64, chunks=(min(rows, 1 << 16),))
            for a in range(0, rows, step):
                fx[a : a + step] = x[a : a + step]
                fy[a : a + step] = y[a : a + step]
        os.replace(tmp, p["h5"])
        log(f"  wrote data.h5 in {time.perf_counter() - t:.1f} s")
    for key, wide, group in (("fsl", False, 1 << 16), ("wide", True, 8192)):
        if not p[key].exists():
            t = time.perf_counter()
            _write_parquet(p[key], x, y, wide=wide, row_group=group)
            log(f"  wrote {p[key].name} in {time.perf_counter() - t:.1f} s")
    return p


def _write_parquet(path: Path, x: np.ndarray, y: np.ndarray, *, wide: bool, row_group: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def table(a: int, b: int) -> pa.Table:
        xs = np.ascontiguousarray(x[a:b])
        if wide:
            cols = {f"f{j}": xs[:, j] for j in range(FEATURES)}
        else:
            cols = {
                "features": pa.FixedSizeListArray.from_arrays(pa.array(xs.reshape(-1)), FEATURES)
            }
        return pa.table({**cols, "label": np.asarray(y[a:b])})

    tmp = path.with_suffix(".tmp")
    writer = None
    for a in range(0, len(x), row_group):
        t = table(a, min(len(x), a + row_group))
        if writer is None:
            writer = pq.ParquetWriter(tmp, t.schema, compression="none")
        writer.write_table(t, row_group_size=row_group)
    assert writer is not None
    writer.close()
    os.replace(tmp, path)


def hf_dataset(p: dict[str, Path]) -> Any:
    """The fsl Parquet as a Hugging Face Dataset (its Arrow cache is built once, under hf_cache)."""
    import datasets

    datasets.disable_progress_bars()
    ds = datasets.Dataset.from_parquet(str(p["fsl"]), cache_dir=str(p["hf_cache"]))
    return ds.with_format("torch")
