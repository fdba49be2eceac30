"""Full shuffle from the RAM tier (``open_dataset(..., cache="ram")``) against the in-RAM gather
limit, in interleaved rounds of fresh processes.

    .venv/bin/python benchmarks/ramtier.py                      # 2M rows x 1 KiB, 5 rounds
    .venv/bin/python benchmarks/ramtier.py --rows 262144 --rounds 3 --seconds 2   # quick

Data: N rows x 256 float32 (1 KiB) + an int64 label, as ``features.npy`` / ``labels.npy`` and a
store (``workbench.convert``) under ``bench_data/ramtier-<N>/``, written once.
Contenders, each in its own fresh process, consuming every batch the same way (a sum of each
tensor, ``workbench.bench.throughput.consume``), timed for ``--seconds`` after a warm-up:

- ``limit``: the in-RAM gather limit: the full order's batches (sorted, as our sampler gives them)
  gathered with ``torch.index_select`` on every core from an in-memory copy (``np.array`` of the
  memmaps: NumPy asks for huge pages itself), the consumer on torch's default threads;
- ``ram``: ``workbench.loader(open_dataset(store, cache="ram"), shuffle="full")`` once the copy
  is ready (``ds.ram_tier.wait()``), ``num_workers`` left to the loader;
- ``page``: the same without ``cache=``: the page cache, as before.

Each round runs every (contender, batch size) once, the contenders' order rotated each round;
the ratios ``ram/limit`` and ``page/limit`` are taken within a round, and the medians and
quartiles over the rounds are printed. The goal (0.9x) is met where the lower quartile meets it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ("limit", "ram", "page")
GOAL = 0.9


def ensure_data(rows: int) -> Path:
    """``bench_data/ramtier-<rows>/``: features.npy, labels.npy and the store, written once."""
    root = ROOT / "bench_data" / f"ramtier-{rows}"
    root.mkdir(parents=True, exist_ok=True)
    fx, fy = root / "features.npy", root / "labels.npy"
    if not (fx.exists() and fy.exists()):
        rng = np.random.default_rng(0)
        x = np.lib.format.open_memmap(root / "f.tmp.npy", "w+", np.float32, (rows, 256))
        y = np.lib.format.open_memmap(root / "l.tmp.npy", "w+", np.int64, (rows,))
        for a in range(0, rows, 1 << 18):
            b = min(rows, a + (1 << 18))
            x[a:b] = rng.standard_normal((b - a, 256), dtype=np.float32)
            y[a:b] = rng.integers(0, 10, b - a)
        x.flush(), y.flush()
        del x, y
        os.replace(root / "f.tmp.npy", fx)
        os.replace(root / "l.tmp.npy", fy)
    if not (root / "store" / "CURRENT").exists():
        import workbench

        workbench.convert(
            {"features": str(fx), "label": str(fy)},
            root / "store",
            target="label",
            progress=False,
            overwrite=True,
        )
    return root


def _timed(batches: Iterator[Any], seconds: float) -> float:
    """Rows/s of ``batches`` consumed for ``seconds`` after a 0.5 s warm-up."""
    from workbench.bench.throughput import consume

    t0 = time.perf_counter()
    for b in batches:  # warm-up: the first batches, the helpers' start
        consume(b)
        if time.perf_counter() - t0 > 0.5:
            break
    rows, t0 = 0, time.perf_counter()
    for b in batches:
        rows += consume(b)[0]
        if time.perf_counter() - t0 >= seconds:
            break
    return rows / (time.perf_counter() - t0)


def _epochs(make: Any) -> Iterator[Any]:
    while True:
        yield from make()


def child(name: str, root: Path, batch: int, seconds: float) -> dict[str, Any]:
    """One contender's rows/s (and, for ``ram``, the copy's seconds)."""
    import torch

    import workbench
    from workbench.loading.orders import epoch_order

    if name == "limit":
        x = torch.from_numpy(np.array(np.load(root / "features.npy", mmap_mode="r")))
        y = torch.from_numpy(np.array(np.load(root / "labels.npy", mmap_mode="r")))
        order = torch.from_numpy(epoch_order(len(x), "full", seed=0))
        bx, by = torch.empty((batch, x.shape[1]), dtype=x.dtype), torch.empty(batch, dtype=y.dtype)
        every, consumer = len(os.sched_getaffinity(0)), torch.get_num_threads()

        def make() -> Iterator[Any]:
            for a in range(0, len(x) - batch + 1, batch):
                idx = order[a : a + batch].sort().values
                torch.set_num_threads(every)
                torch.index_select(x, 0, idx, out=bx)
                torch.index_select(y, 0, idx, out=by)
                torch.set_num_threads(consumer)
                yield bx, by

        return {"rows_s": _timed(_epochs(make), seconds)}
    cache = "ram" if name == "ram" else None
    ds = workbench.open_dataset(str(root / "store"), cache=cache)
    extra: dict[str, Any] = {}
    if cache:
        t = time.perf_counter()
        ds.ram_tier.wait()
        extra = {"copy_s": round(time.perf_counter() - t, 2), "tier": ds.ram_tier.describe()}
    dl = workbench.loader(ds, batch_size=batch, shuffle="full", seed=0)
    return {"rows_s": _timed(_epochs(lambda: iter(dl)), seconds), **extra}


def _quartiles(v: list[float]) -> tuple[float, float, float]:
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return float(q1), float(med), float(q3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--child", choices=CONTENDERS)
    args = ap.parse_args()
    root = ensure_data(args.rows)
    if args.child:
        got = child(args.child, root, args.batch[0], args.seconds)
        print(json.dumps(got))
        return
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in range(args.rounds):
        names = CONTENDERS[r % 3 :] + CONTENDERS[: r % 3]
        for batch in args.batch:
            for name in names:
                cmd = [sys.executable, "-W", "ignore", __file__, "--child", name]
                cmd += ["--rows", str(args.rows), "--seconds", str(args.seconds)]
                cmd += ["--batch", str(batch)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                got = json.loads(out.strip().splitlines()[-1])
                runs.setdefault((name, batch), []).append(got)
                print(
                    f"round {r + 1} bs {batch:>5} {name:>5}: {got['rows_s'] / 1e6:.2f}M rows/s"
                    + (f"  (copy {got['copy_s']} s: {got['tier']})" if "copy_s" in got else ""),
                    flush=True,
                )
    print(
        f"\n{args.rows:,} rows x 1 KiB, full shuffle, {args.rounds} rounds, "
        f"{args.seconds:g} s each; ratio to the in-RAM gather limit (torch.index_select, "
        f"{len(os.sched_getaffinity(0))} cores, in-memory copy), per round:"
    )
    for batch in args.batch:
        lim = [g["rows_s"] for g in runs[("limit", batch)]]
        q = _quartiles(lim)
        print(
            f"  bs {batch:>5} limit  median {q[1] / 1e6:.2f}M rows/s "
            f"(quartiles {q[0] / 1e6:.2f}-{q[2] / 1e6:.2f}M)"
        )
        for name in ("ram", "page"):
            ratios = [g["rows_s"] / b for g, b in zip(runs[(name, batch)], lim)]
            q1, med, q3 = _quartiles(ratios)
            met = "met" if q1 >= GOAL else "not met"
            goal = f"  goal {GOAL}x: {met}" if name == "ram" else ""
            print(
                f"  bs {batch:>5} {name:>5}  {med:.2f}x (quartiles {q1:.2f}-{q3:.2f}; "
                f"rounds {', '.join(f'{x:.2f}' for x in ratios)}){goal}"
            )


if __name__ == "__main__":
    main()
