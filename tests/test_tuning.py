"""``wb.autotune`` at trait level: its ``best`` builds a loader, it runs far fewer trials than the
grid of the same space, its memory budget holds on a dataset built to break it, and nothing it
started outlives it."""

from __future__ import annotations

import math
import random
import threading
import time

import numpy as np
import psutil
import pytest
import torch

import workbench as wb
from workbench.loading.config import LoaderConfig
from workbench.tuning.search import autotune, budget_bytes, default_space
from workbench.tuning.training import TrainingRun, tree_pss


class Records(torch.utils.data.Dataset):
    """Small Python objects read in pure Python, item ``i`` with 16 random other records: a worker
    process's refcount writes make the fork-inherited pages its own, so each worker's PSS grows
    by about the whole list (the case a memory budget has to refuse)."""

    def __init__(self, n: int) -> None:
        self.records = [(float(i), i * 0.5, str(i)) for i in range(n)]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> torch.Tensor:
        rng, a = random.Random(i), self.records[i]
        acc = 0.0
        for _ in range(16):
            b = self.records[rng.randrange(len(self.records))]
            acc += (a[0] - b[0]) + len(b[2])
        return torch.tensor([acc])


class TreePeak:
    """The tree's PSS above its start, read every 20 ms on its own thread, independently of the
    run autotune samples."""

    def __init__(self) -> None:
        self.base, self.peak, self._stop = tree_pss(), 0, threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, tree_pss() - self.base)
            except psutil.Error:
                continue

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _settled(threads: int, children: set[int], timeout: float = 10.0) -> tuple[int, set[int]]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        now = threading.active_count(), {p.pid for p in psutil.Process().children(recursive=True)}
        if now[0] <= threads and now[1] <= children:
            break
        time.sleep(0.1)
    return now


@pytest.fixture
def arrays():
    return wb.open_dataset(
        {
            "x": np.random.default_rng(0).random((60_000, 16), dtype="float32"),
            "y": np.arange(60_000),
        }
    )


def test_best_builds_a_loader_with_the_settings_kept(arrays):
    r = autotune(arrays, time_budget_s=3, batch_size=512, shuffle="full")
    assert set(r.best) <= {f for f in LoaderConfig.__dataclass_fields__}
    dl = wb.loader(arrays, **r.best)
    assert dl.batch_size == 512 and dl.config.shuffle == "full"  # what the user fixed is kept
    assert len(next(iter(dl))["y"]) == 512
    dl.close()
    measured = [t for t in r.trials if t.measured]
    assert measured and r.best == max(measured, key=lambda t: t.samples_per_s).config
    assert all(t.samples_per_s > 0 and t.batches >= 3 for t in measured)


def test_the_search_runs_far_fewer_trials_than_the_grid(arrays):
    dl = wb.loader(arrays, batch_size=256)
    space = default_space(dl, [128, 512])
    dl.close()
    grid = math.prod(len(v) for v in space.values())
    r = autotune(arrays, time_budget_s=4, batch_sizes=[128, 512], batch_size=256)
    assert grid >= 100  # 6 readers x 3 read-aheads x 3 windows x 2 batch sizes
    assert len(r.trials) <= sum(len(v) for v in space.values()) + 1 <= grid / 6
    assert r.seconds < 4 * 1.5  # the time budget holds too (a trial in flight may finish)


def test_budget_strings_and_the_default():
    assert budget_bytes("1.5GiB") == 3 * 2**29 and budget_bytes(1000) == 1000
    assert 0 < budget_bytes(None) <= psutil.virtual_memory().available
    with pytest.raises(ValueError):
        budget_bytes("lots")


def test_the_budget_holds_against_process_workers_that_copy_a_python_list():
    ds = Records(300_000)  # ~60 MiB of small objects: each process worker copies most of it
    dl = wb.loader(ds, batch_size=128, num_workers=0)
    base, grown = tree_pss(), 0
    for _, _ in zip(range(40), dl):  # the in-process baseline: no worker, no copy
        grown = max(grown, tree_pss() - base)
    dl.close()
    budget = grown + 24 * 2**20  # just above it: one worker's copies alone pass it
    threads, children = threading.active_count(), {p.pid for p in psutil.Process().children()}
    peak = TreePeak()
    space = {"readers": [("thread", 0), ("thread", 2), ("process", 1), ("process", 2)]}
    r = autotune(ds, memory_budget=budget, time_budget_s=6, space=space, batch_size=128)
    tree = peak.stop()
    assert r.memory_budget == budget
    assert all(t.peak_bytes < budget for t in r.trials), [
        (t.config, t.peak_bytes) for t in r.trials
    ]
    assert tree < budget, (
        f"the tree reached {tree / 2**20:.0f} MiB of a {budget / 2**20:.0f} budget"
    )
    procs = [
        t for t in r.trials if t.config["worker_type"] == "process" and t.config["num_workers"]
    ]
    assert {t.config["num_workers"] for t in procs} == {1, 2}  # both tried or refused, and...
    assert all(t.cut and not t.measured for t in procs)  # ...none was allowed to finish
    assert all("budget" in t.cut for t in procs), [t.cut for t in procs]
    assert all(t.cut.startswith(("cut at", "refused:")) for t in procs)
    assert r.cut == [t for t in r.trials if t.cut] and set(map(id, procs)) <= set(map(id, r.cut))
    assert r.best["num_workers"] == 0 or r.best["worker_type"] == "thread"
    assert _settled(threads, children) == (threads, children)


def test_nothing_outlives_autotune_even_when_the_step_fails(arrays):
    threads, children = threading.active_count(), {p.pid for p in psutil.Process().children()}
    space = {"readers": [("thread", 2), ("process", 2)]}
    autotune(arrays, time_budget_s=2, space=space, batch_size=256)
    assert _settled(threads, children) == (threads, children)
    calls = []

    def step(batch):
        calls.append(1)
        if len(calls) > 5:
            raise RuntimeError("the model blew up")

    with pytest.raises(RuntimeError, match="blew up"):
        autotune(arrays, step=step, time_budget_s=2, space=space, batch_size=256)
    assert _settled(threads, children) == (threads, children)


def _busy(batch):
    """A pure-Python transform that holds the GIL for 4 us a row (2 ms a batch of 500)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 4e-6 * len(batch["y"]):
        pass
    return batch


def test_each_trial_carries_the_stage_split_of_its_own_batches(arrays):
    from workbench.monitoring.stages import STAGES
    from workbench.tuning.trials import stage_shares, stage_text, trials_text

    dl = wb.loader(arrays, batch_size=500, num_workers=0, transform=_busy)
    run = TrainingRun(dl, lambda batch: time.sleep(0.004))  # a 4 ms step: the reader keeps up
    try:
        assert _until(lambda: run.holding()[-1].batches >= 20)
        dl.reconfigure(batch_size=100)  # a new trial: a fifth of the transform a batch
        assert _until(lambda: len(run.holding()) == 2 and run.holding()[-1].batches >= 20)
    finally:
        run.close()
    slow, fast = run.log.trials[:2]
    assert set(slow.stages) == set(STAGES) and set(fast.stages) == set(STAGES)
    # each trial's own batches: 2 ms of transform a batch in the first, 0.4 ms in the second
    assert slow.config["batch_size"] == 500 and fast.config["batch_size"] == 100
    assert slow.stages["transform"] >= 0.0018 and fast.stages["transform"] < 0.001
    assert (
        stage_text(slow.stages).startswith("transform ")
        and stage_shares(slow.stages)["transform"] > 0.5
    )
    assert slow.stages["step"] >= 0.0035  # the consumer's 4 ms step, measured beside them
    assert slow.as_dict()["stages"] == slow.stages
    assert "setting" in trials_text(run.log.trials)  # the CLI's table is unchanged by them


def _until(predicate, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_each_trial_counts_the_rows_of_each_source_of_a_mixture():
    from workbench.tuning.trials import WARMUP_BATCHES, trials_text

    srcs = {
        k: wb.open_dataset({"x": np.full((n, 4), i, "float32")})
        for i, (k, n) in enumerate((("a", 7000), ("b", 3000)))
    }
    dl = wb.loader(wb.mix(srcs, weights={"a": 0.7, "b": 0.3}), batch_size=100, shuffle="full")
    run = TrainingRun(dl, lambda batch: time.sleep(0.002))
    try:
        assert _until(lambda: sum(run.holding()[-1].sources.values()) >= 3000)
        dl.reconfigure(batch_size=50)
        assert _until(lambda: len(run.holding()) == 2 and run.holding()[-1].batches >= 40)
        time.sleep(0.3)  # a few more counts of the open trial
    finally:
        run.close()
    first, second = run.log.trials[:2]
    for trial in (first, second):  # each trial its own rows, in the mixture's proportions
        n = sum(trial.sources.values())
        assert set(trial.sources) == {"a", "b"} and abs(trial.sources["a"] / n - 0.7) < 0.05
    # the second trial's own rows, not the loader's running total (the first had 3,000+)
    assert sum(second.sources.values()) <= (second.batches + WARMUP_BATCHES + 5) * 50
    n = sum(first.sources.values())
    shares = f"a {first.sources['a'] / n:.0%}, b {first.sources['b'] / n:.0%}"
    assert shares in trials_text(run.log.trials)
