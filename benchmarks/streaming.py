"""Streaming from an HTTP server against reading the same store locally, side by side in one run.

A store is served by `python -m http.server` in its own process on 127.0.0.1 (so the server does
not share the loader's GIL). Each contender reads whole epochs in `shuffle="shard"` order and sums
every batch; the streamed ones start from an empty cache bounded to a quarter of the data (at least
the 4 shards shard order needs at window 1, and one to fetch ahead), so each epoch fetches every
shard again (the larger-than-disk case), once in shard order with the window the loader fits to
the cache (`window + 3` shards at once, and fetch-ahead: shard order tells the dataset the plan;
the local store reads with the same window) and once in full-shuffle order (no plan: shards
fetched on demand and refetched as the LRU cache thrashes).

    .venv/bin/python benchmarks/streaming.py [--mib 128] [--epochs 2]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

import workbench as wb

MIN_SHARDS = 5  # the least cache: window 1 holds 4 shards at once, and 1 is fetched ahead


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _epochs(ds, order: str, epochs: int, **window: int) -> tuple[float, int]:
    t0, rows = time.perf_counter(), 0
    for _ in range(epochs):
        for batch in wb.loader(ds, batch_size=1024, shuffle=order, num_workers=0, seed=0, **window):
            rows += len(batch["y"])
            float(batch["x"].sum())
    return time.perf_counter() - t0, rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=128, help="dataset size")
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-stream-bench-"))
    rows = (args.mib << 20) // (256 * 4)
    x = np.random.default_rng(0).random((rows, 256), dtype="float32")
    wb.convert(
        {"x": x, "y": np.arange(rows)},
        root / "www" / "d.store",
        shard_bytes=8 << 20,
        progress=False,
    )
    del x
    version, m = wb.read_manifest(root / "www" / "d.store")
    total = sum(f.bytes for s in m.shards for f in s.files)
    biggest = max(sum(f.bytes for f in s.files) for s in m.shards)
    bound = max(total // 4, MIN_SHARDS * biggest)
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(root / "www"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/d.store"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/CURRENT", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        streamed = wb.open_dataset(url, cache_dir=root / "cache", cache_bytes=bound)
        window = wb.loader(streamed, shuffle="shard").window  # what the loader fits to the cache
        local = wb.open_dataset(root / "www" / "d.store")
        _epochs(local, "shard", 1, window=window)  # warm the page cache: local reads: the ceiling
        results = [
            ("local store, shard order", *_epochs(local, "shard", args.epochs, window=window), None)
        ]
        for name, order in (
            ("streamed, shard order + fetch-ahead", "shard"),
            ("streamed, full order (no plan)", "full"),
        ):
            shutil.rmtree(root / "cache", ignore_errors=True)
            ds = wb.open_dataset(url, cache_dir=root / "cache", cache_bytes=bound)
            seconds, n = _epochs(ds, order, args.epochs)
            results.append((name, seconds, n, ds.cache))
        print(
            f"{args.mib} MiB store, {len(m.shards)} shards, cache bound {bound >> 20} MiB, "
            f"{args.epochs} epochs, batch 1024, shard order's window {window} (fitted), "
            "2-core machine"
        )
        print(f"{'contender':40} {'rows/s':>12} {'vs local':>9} {'fetches':>8} {'ahead':>6}")
        base = results[0][2] / results[0][1]
        for name, seconds, n, cache in results:
            rate = n / seconds
            fetches = "-" if cache is None else str(cache.fetches)
            ahead = "-" if cache is None else str(cache.prefetched)
            print(f"{name:40} {rate:>12,.0f} {rate / base:>9.2f} {fetches:>8} {ahead:>6}")
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
