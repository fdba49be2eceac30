"""Why is it slow (issue 26): what timing every batch's stages costs, and the built cases of known
cause, each with ``wb.bottleneck``'s verdict and the rate before and after applying its advice.

    .venv/bin/python benchmarks/why_slow.py                 # both sections (~1 min)
    .venv/bin/python benchmarks/why_slow.py --overhead      # what timing costs only
    .venv/bin/python benchmarks/why_slow.py --cases         # the built cases only

Overhead: the loader with its stages timed (``WB_STAGE_TIMES=1``, the default) against untimed,
in-process, on 2 threads and on 2 worker processes; bs 256 of 1 KiB rows (+ an int64 label, the
rows of ``benchmarks/loaders.py``), full shuffle, each batch summed; rounds interleaved, the
fastest of each (the least disturbed). A shared machine's noise can hide a small difference, so
the cost is also measured where the batch itself costs little (64 rows of one int64 column: the
timing code is a larger part of each batch) and in the main process's CPU time (median), which
other work on the machine disturbs less than wall time; "/wall" is that CPU cost over the wall
time a batch.

Cases: a slow pure-Python transform (and one holding the GIL without using a core), tiny
batches, cold storage (256 MiB evicted from the page cache; skipped on tmpfs), a slow URL (a local
HTTP server taking 50 ms a GET), a slow consumer. "after" is the same loader after
``loader.reconfigure(**verdict.change)``, or a new one with the change (``shuffle``: from the
next epoch); cases whose advice is outside the loader have no "after".
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import gc
import statistics
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import workbench as wb
from workbench.loading import passes
from workbench.monitoring.warming import memory_backed

_LIBC = ctypes.PyDLL(ctypes.util.find_library("c"))


def _busy(batch: Any, *, loops: int = 30_000) -> Any:
    s = 0
    for i in range(loops):
        s += i
    return batch


def _gil(batch: Any) -> Any:
    _LIBC.usleep(4500)  # holds the GIL, uses no core
    return batch


def _consume(batch: Any) -> None:
    for t in batch.values():
        t.sum()


def epoch_us(dl: Any) -> tuple[float, float]:
    """Wall and this process's CPU microseconds a batch over one epoch of ``dl`` (each batch
    summed); CPU time is what other work on a shared machine disturbs least."""
    t0, c0, n = time.perf_counter(), time.process_time(), 0
    for batch in dl:
        _consume(batch)
        n += 1
    return (time.perf_counter() - t0) / n * 1e6, (time.process_time() - c0) / n * 1e6


def overhead(rounds: int) -> None:
    rows = 65536
    ds = wb.open_dataset(
        {"x": np.random.default_rng(0).random((rows, 256), dtype="float32"), "y": np.arange(rows)}
    )
    print(f"timing every batch's stages: bs 256 x 1 KiB rows, full shuffle, {rows} rows an epoch")
    print(f"{'':<24} {'wall us a batch (fastest)':>25}  {'main process CPU us (median)':>33}")
    print(
        f"{'readers':<24} {'untimed':>8} {'timed':>8} {'cost':>7}  {'untimed':>8} {'timed':>8} "
        f"{'cost':>7} {'/wall':>7}"
    )
    tiny = wb.open_dataset({"y": np.arange(rows)})
    for name, data, bs, kw in (
        ("in-process, bs 64 int64", tiny, 64, {"num_workers": 0}),
        ("in-process", ds, 256, {"num_workers": 0}),
        ("2 threads", ds, 256, {"num_workers": 2, "worker_type": "thread"}),
        (
            "2 processes",
            ds,
            256,
            {"num_workers": 2, "worker_type": "process", "persistent_workers": True},
        ),
    ):
        runs: dict[bool, list[float]] = {False: [], True: []}
        cpu: dict[bool, list[float]] = {False: [], True: []}
        loaders = {t: wb.loader(data, batch_size=bs, shuffle="full", **kw) for t in (False, True)}
        for timed in (False, True):  # warm-up: workers, pages, the allocator
            passes.TIMED = timed
            epoch_us(loaders[timed])
        for _ in range(rounds):
            for timed in (False, True):
                passes.TIMED = timed
                wall, used = epoch_us(loaders[timed])
                runs[timed].append(wall)
                cpu[timed].append(used)
        for dl in loaders.values():
            dl.close()
        off, on = min(runs[False]), min(runs[True])  # the least disturbed round of each
        c_off, c_on = statistics.median(cpu[False]), statistics.median(cpu[True])
        print(
            f"{name:<24} {off:>8.1f} {on:>8.1f} {(on - off) / off:>7.1%}  "
            f"{c_off:>8.1f} {c_on:>8.1f} {c_on - c_off:>7.2f} {(c_on - c_off) / off:>7.1%}"
        )
    passes.TIMED = True


def rate(dl: Any, batches: int, step_s: float = 0.0, skip: int = 3) -> float:
    """Rows a second the consumer receives over ``batches`` batches, after ``skip``."""
    it, rows = iter(dl), 0
    for i in range(skip + batches):
        if i == skip:
            t0, rows = time.perf_counter(), 0
        rows += len(next(it)["y"])
        if step_s:
            time.sleep(step_s)
    it.close()
    return rows / (time.perf_counter() - t0)


def _dataset(rows: int, width: int) -> Any:
    return wb.open_dataset({"x": np.ones((rows, width), "float32"), "y": np.arange(rows)})


def case_transform(fn: Callable[..., Any], step_s: float) -> tuple[str, float, float | None]:
    dl = wb.loader(_dataset(16384, 32), batch_size=64, shuffle="full", num_workers=0, transform=fn)
    before, v = rate(dl, 60, step_s), None
    v = wb.bottleneck(dl)
    dl.reconfigure(**v.change)
    after = rate(dl, 60, step_s, skip=40)
    dl.close()
    return str(v), before, after


def case_tiny() -> tuple[str, float, float | None]:
    dl = wb.loader(_dataset(65536, 8), batch_size=8, shuffle="full", num_workers=0)
    before = rate(dl, 400)
    v = wb.bottleneck(dl)
    dl.reconfigure(**v.change)
    return str(v), before, rate(dl, 40)


def case_consumer() -> tuple[str, float, float | None]:
    dl = wb.loader(_dataset(8192, 32), batch_size=256, num_workers=0)
    before = rate(dl, 20, 0.02)
    return str(wb.bottleneck(dl)), before, None


def case_cold() -> tuple[str, float, float | None]:
    base = next((b for b in (tempfile.gettempdir(), "/var/tmp") if not memory_backed(b)), None)
    if base is None:
        return "skipped: every temporary folder is on tmpfs", 0.0, None
    with tempfile.TemporaryDirectory(dir=base) as d:
        path = Path(d) / "cold.store"
        x = np.random.default_rng(0).random((65536, 1024), dtype="float32")  # 256 MiB
        wb.convert({"x": x, "y": np.arange(65536)}, path, progress=False)
        del x
        out, v = [], None
        for shuffle in ("full", "change"):
            wb.evict(path)
            order = "full" if v is None else v.change.get("shuffle", "full")
            dl = wb.loader(wb.open_dataset(path), batch_size=64, shuffle=order)
            out.append(rate(dl, 200, skip=0))
            v = wb.bottleneck(dl) if v is None else v
            dl.close()
            del dl
            gc.collect()  # its maps hold the pages: the next eviction must drop them
    return str(v), out[0], out[1]


def case_remote() -> tuple[str, float, float | None]:
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "www"
        x = np.random.default_rng(0).random((8192, 16), dtype="float32")
        wb.convert({"x": x, "y": np.arange(8192)}, root / "d.store", shard_bytes=32 << 10)

        class Slow(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                time.sleep(0.05)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Slow, directory=root))
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/d.store"
            ds = wb.open_dataset(url, cache_dir=Path(d) / "c", cache_bytes=1 << 20)
            dl = wb.loader(ds, batch_size=256, num_workers=0)
            before = rate(dl, 20)
            v = wb.bottleneck(dl)
        finally:
            httpd.shutdown()
            httpd.server_close()
    return str(v), before, None


def cases() -> None:
    t0 = time.perf_counter()
    for _ in range(5):
        _busy(None, loops=100_000)
    heavy = functools.partial(_busy, loops=100_000)
    step = (time.perf_counter() - t0) / 5
    built = [
        ("slow Python transform", lambda: case_transform(heavy, step)),
        ("transform holding the GIL", lambda: case_transform(_gil, 0.003)),
        ("tiny batches (8 rows)", case_tiny),
        ("cold storage", case_cold),
        ("slow remote (50 ms a GET)", case_remote),
        ("slow consumer (20 ms step)", case_consumer),
    ]
    print(f"\n{'case':<28} {'before rows/s':>14} {'after rows/s':>13} {'gain':>6}  verdict")
    for name, run in built:
        text, before, after = run()
        gain = f"{after / before:.2f}x" if after and before else "-"
        shown = f"{after:>13,.0f}" if after else f"{'-':>13}"
        print(f"{name:<28} {before:>14,.0f} {shown} {gain:>6}  {text}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--overhead", action="store_true", help="what timing costs only")
    ap.add_argument("--cases", action="store_true", help="the built cases only")
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (overhead)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.cases:
        overhead(args.rounds)
    if not args.overhead:
        cases()


if __name__ == "__main__":
    main()
