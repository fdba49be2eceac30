"""``wb.autotune`` against an exhaustive grid over the same space, side by side in one run.

Each grid point is held exactly as autotune holds a trial (the same trial length, step and
measuring code: ``workbench.tuning.search._Search.measure`` on one background ``TrainingRun``),
only without a budget. Then autotune runs on the same dataset, and the two winners are re-measured
side by
side, interleaved, a few times each, as rows delivered over wall time (the trials' own figure is
a median of per-batch rates, printed too). Goals (issue 8): autotune's pick >= 0.9x the grid's
best, in <= 0.2x the grid's time, no trial over the budget.

Case "store": a store on disk, the default read step. Case "pylist": a map-style torch Dataset
holding ~400 MB of small Python objects whose ``__getitem__`` is pure Python (so process workers
are fastest) and reads random other records (negatives): each worker's refcount writes make the
fork-inherited pages private, so the tree's PSS grows by about the heap per worker. The budget
is set between the grid's 1- and 2-worker peaks; autotune must stay under it (an independent
sampler reads the tree's PSS every 20 ms throughout), say what it cut or refused, and pick a
setting within the budget.

    .venv/bin/python benchmarks/autotune.py [--quick] [--case store|pylist|both] [--seconds S]
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import workbench as wb
from workbench.tuning.search import _apply, _holds, _Search, autotune, default_space
from workbench.tuning.training import TrainingRun, knobs, tree_pss
from workbench.tuning.trials import WARMUP_BATCHES, Trial

MiB = 2**20
NO_BUDGET = 1 << 60
DATA = Path(__file__).resolve().parent.parent / "bench_data"


class Records(torch.utils.data.Dataset):
    """``n`` records of small Python objects (a tuple of two floats and a str, ~200 B each); item
    ``i`` combines record ``i`` with ``negatives`` random others, in pure Python."""

    def __init__(self, n: int, negatives: int = 16, width: int = 8) -> None:
        self.records = [(float(i), i * 0.5, str(i)) for i in range(n)]
        self.negatives, self.width = negatives, width

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> torch.Tensor:
        rng, n, a = random.Random(i), len(self.records), self.records[i]
        acc = [0.0] * self.width
        for _ in range(self.negatives):
            b = self.records[rng.randrange(n)]
            for k in range(self.width):
                acc[k] += (a[0] - b[0]) * (k + 1) + len(b[2])
        return torch.tensor(acc)


class Rows:
    """Every delivered batch's (time, rows), to measure rows over wall time in any window."""

    def __init__(self, dl: wb.Loader) -> None:
        self.events: list[tuple[float, int]] = []
        self.unsubscribe = dl.subscribe(lambda e: self.events.append((e.t, e.rows)))

    def rate(self, trial: Any) -> float:
        end = trial.started + trial.seconds
        got = [e for e in self.events if trial.started - 1e-9 <= e[0] <= end][WARMUP_BATCHES:]
        if len(got) < 2 or got[-1][0] <= got[0][0]:
            return 0.0
        return sum(r for _, r in got[1:]) / (got[-1][0] - got[0][0])


class Peak:
    """The tree's PSS above its start, sampled every ``every`` s on a thread of its own."""

    def __init__(self, every: float = 0.02) -> None:
        self.base, self.peak, self._stop = tree_pss(), 0, threading.Event()
        self._t = threading.Thread(target=self._loop, args=(every,), daemon=True)
        self._t.start()

    def _loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.peak = max(self.peak, tree_pss() - self.base)
            except Exception:  # a worker exited between listing and reading
                continue

    def stop(self) -> int:
        self._stop.set()
        self._t.join()
        return self.peak


def name(c: dict[str, Any]) -> str:
    n, kind = c["num_workers"], c["worker_type"]
    readers = (
        "in-process"
        if not n
        else f"{n} {kind}" + ("" if n == 1 else "es" if kind == "process" else "s")
    )
    return f"{readers:<11} prefetch={c['prefetch_factor']} window={c['window']}"


def point_of(c: dict[str, Any], space: dict[str, list[Any]]) -> dict[str, Any]:
    readers = (c["worker_type"], c["num_workers"]) if c["num_workers"] else ("thread", 0)
    return {"readers": readers, **{k: c[k] for k in space if k != "readers"}}


def hold(
    dl: wb.Loader, points: list[dict[str, Any]], trial_s: float, budget: int = NO_BUDGET
) -> tuple[list[tuple[dict, Any, float]], float]:
    """Hold each point as autotune holds a trial, on one TrainingRun: (point, trial, wall rate)."""
    t0 = time.perf_counter()
    run, rows = TrainingRun(dl), Rows(dl)
    search = _Search(run, budget, trial_s, float("inf"))
    out = []
    try:
        for point in points:
            want = _apply(point)
            search.measure(point)
            with run.lock:
                mine = [t for t in run.log.trials if _holds(t, want)]
            trial = (
                mine[-1]
                if mine
                else Trial(
                    {**knobs(dl), **want},
                    time.perf_counter(),
                    cut=f"no batch in {4 * trial_s:.1f} s",
                )
            )
            out.append((point, trial, rows.rate(trial)))
    finally:
        rows.unsubscribe()
        run.close()
    return out, time.perf_counter() - t0


def table(rows: list[tuple[dict, Any, float]], budget: int | None) -> None:
    print(f"  {'setting':<36} {'wall/s':>9} {'median/s':>9} {'wait':>5} {'peak MiB':>9}  note")
    for _, t, wall in rows:
        over = " OVER BUDGET" if budget and t.peak_bytes >= budget else ""
        print(
            f"  {name(t.config):<36} {wall:>9,.0f} {t.samples_per_s:>9,.0f} "
            f"{t.wait_fraction:>5.2f} {t.peak_bytes / MiB:>9,.0f}  {t.cut}{over}"
        )


def case(
    title: str,
    make_loader: Any,
    seconds: float,
    repeats: int,
    budget_from_grid: bool,
    budget: int | None,
) -> None:
    print(f"\n== {title} ==")
    dl = make_loader()
    space = default_space(dl)
    dl.close()
    trial_s = max(0.3, seconds / (sum(len(v) for v in space.values()) + 1))  # autotune's rule
    keys = list(space)
    grid_points = [dict(zip(keys, vs)) for vs in itertools.product(*space.values())]
    print(
        f"space: {space}\ngrid: {len(grid_points)} points of {trial_s:.2f} s (autotune's trial "
        f"length for time_budget_s={seconds:g})"
    )
    first = _apply(grid_points[0])
    warm = make_loader(num_workers=0)  # one epoch first: page cache and memory maps warm for all
    for _ in itertools.islice(warm, 2000):
        pass
    warm.close()
    grid, grid_s = hold(make_loader(**first), grid_points, trial_s)
    if budget_from_grid and budget is None:
        p1 = max(t.peak_bytes for p, t, _ in grid if p["readers"] == ("process", 1))
        p2 = max(t.peak_bytes for p, t, _ in grid if p["readers"] == ("process", 2))
        budget = (p1 + p2) // 2
        print(
            f"budget: {budget / MiB:,.0f} MiB, between the grid's peaks with 1 process worker "
            f"({p1 / MiB:,.0f} MiB) and 2 ({p2 / MiB:,.0f} MiB)"
        )
    print(f"grid: {grid_s:.1f} s")
    table(grid, budget)
    top = max(grid, key=lambda r: r[2])
    fits = [r for r in grid if budget is None or r[1].peak_bytes < budget]
    top_fit = max(fits, key=lambda r: r[2])
    print(
        f"grid's best: {name(top[1].config)} {top[2]:,.0f} samples/s, peak "
        f"{top[1].peak_bytes / MiB:,.0f} MiB"
        + (f" ({'OVER' if top[1].peak_bytes >= budget else 'within'} the budget)" if budget else "")
    )
    if top_fit is not top:
        print(
            f"grid's best within the budget: {name(top_fit[1].config)} {top_fit[2]:,.0f} samples/s"
        )

    peak = Peak()
    r = autotune(make_loader(**first), memory_budget=budget, time_budget_s=seconds)
    tree_peak = peak.stop()
    print(
        f"\nautotune: {r.seconds:.1f} s, {len(r.trials)} trials, budget "
        f"{r.memory_budget / MiB:,.0f} MiB, {len(r.cut)} cut or refused"
    )
    print(f"  {'setting':<36} {'median/s':>9} {'wait':>5} {'peak MiB':>9}  note")
    for t in r.trials:
        print(
            f"  {name(t.config):<36} {t.samples_per_s:>9,.0f} {t.wait_fraction:>5.2f} "
            f"{t.peak_bytes / MiB:>9,.0f}  {t.cut}"
        )
    worst = max(t.peak_bytes for t in r.trials)
    print(
        f"peak PSS above the start: every trial <= {worst / MiB:,.0f} MiB, the tree sampled "
        f"every 20 ms {tree_peak / MiB:,.0f} MiB, budget {r.memory_budget / MiB:,.0f} MiB: "
        f"{'HELD' if max(worst, tree_peak) < r.memory_budget else 'CROSSED'}"
    )
    print(f"autotune chose: {name(r.best)}")

    # the two winners side by side, interleaved, as rows over wall time
    a, b = point_of(r.best, space), top_fit[0]
    hold_s = max(1.0, 3 * trial_s)
    same = a == b  # one setting: hold it (a trial of the setting held continues, not restarts)
    again, _ = hold(
        make_loader(**_apply(a)),
        [a] if same else [a, b] * repeats,
        hold_s * (repeats if same else 1),
    )  # speed only: both ran in the grid
    again = again * 2 if same else again
    rate_a = statistics.median(w for p, _, w in again[0::2])
    rate_b = statistics.median(w for p, _, w in again[1::2])
    runs = lambda rows: " ".join(f"{w:,.0f}" for _, _, w in rows)  # noqa: E731
    print(f"\nre-measured, interleaved, {repeats} x {hold_s:.1f} s each (rows / wall s):")
    print(f"  autotune's  {name(r.best)}: {rate_a:>10,.0f}  ({runs(again[0::2])})")
    print(f"  grid's best {name(top_fit[1].config)}: {rate_b:>10,.0f}  ({runs(again[1::2])})")
    ratio, cost = rate_a / rate_b, r.seconds / grid_s
    print(
        f"chosen / grid best: {ratio:.2f} (goal >= 0.9) {'PASS' if ratio >= 0.9 else 'MISS'}; "
        f"autotune's time / grid's: {r.seconds:.1f} / {grid_s:.1f} s = {cost:.2f} "
        f"(goal <= 0.2) {'PASS' if cost <= 0.2 else 'MISS'}"
    )
    if budget_from_grid:
        picked = max(t.peak_bytes for t in r.trials if t.config == r.best)
        print(
            f"grid's fastest over the budget: {'yes' if top[1].peak_bytes >= budget else 'no'}; "
            f"autotune's pick peaked at {picked / MiB:,.0f} MiB: "
            f"{'within' if picked < budget else 'OVER'} the budget"
        )


def store(rows: int) -> Path:
    path = DATA / f"autotune-{rows}" / "store"
    if not (path / "CURRENT").exists():
        x = np.random.default_rng(0).random((rows, 128), dtype="float32")
        wb.convert({"x": x, "y": np.arange(rows)}, path, progress=False, overwrite=True)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small data, short trials (~1.5 min)")
    p.add_argument("--case", choices=["store", "pylist", "both"], default="both")
    p.add_argument("--seconds", type=float, help="autotune's time_budget_s (sets the trial length)")
    p.add_argument(
        "--budget-mib", type=float, help="pylist case: the budget (default: from the grid)"
    )
    args = p.parse_args()
    seconds = args.seconds or (5.0 if args.quick else 20.0)
    repeats = 2 if args.quick else 3
    print(
        f"machine: {os.cpu_count()} cores, torch {torch.__version__}, load average "
        f"{os.getloadavg()[0]:.1f}"
    )
    if args.case in ("store", "both"):
        rows = 250_000 if args.quick else 1_000_000
        ds = wb.open_dataset(store(rows))
        case(
            f"store: {rows:,} rows x 128 float32 ({rows * 512 / MiB:,.0f} MiB), batch 1024, read "
            f"step",
            lambda **o: wb.loader(ds, batch_size=1024, **o),
            seconds,
            repeats,
            False,
            None,
        )
    if args.case in ("pylist", "both"):
        n = 600_000 if args.quick else 2_000_000
        before = tree_pss()
        ds = Records(n)
        print(f"\nRecords({n:,}): {(tree_pss() - before) / MiB:,.0f} MiB of Python objects")
        budget = int(args.budget_mib * MiB) if args.budget_mib else None
        case(
            "pylist: process workers fastest, each one's PSS grows by the heap",
            lambda **o: wb.loader(ds, batch_size=256, **o),
            seconds,
            repeats,
            True,
            budget,
        )


if __name__ == "__main__":
    main()
