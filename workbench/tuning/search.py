""":func:`autotune`: a search of the loader's settings, one knob at a time, while the user's
step trains on a background :class:`~workbench.tuning.training.TrainingRun`; each setting is held
for a short trial under a memory budget that is never crossed (:mod:`workbench.tuning.budget`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..loading.feeds import shard_cache
from ..loading.loaders import Loader, loader
from ..loading.options import takes_loader_options
from ..monitoring.container import container_limits
from .budget import budget_bytes, heading_over, refusal
from .training import SAMPLE_S, TrainingRun, knobs
from .trials import Trial, best

__all__ = ["AutotuneResult", "autotune"]


@dataclass
class AutotuneResult:
    """What :func:`autotune` found; ``table()`` lists the trials as dicts.

    Parameters
    ----------
    best : dict
        The options to pass to ``wb.loader`` (with the ones you gave).
    trials : list of Trial
        Every setting tried or refused, in order (``Trial.cut`` says why one was stopped).
    memory_budget : int
        The budget in bytes, of PSS above ``base_pss``.
    seconds : float
        How long the search took.
    base_pss : int, default 0
        The process tree's PSS when the run started.
    cut : list of Trial
        The trials cut or refused by the budget.
    """

    best: dict[str, Any]
    trials: list[Trial]
    memory_budget: int
    seconds: float
    base_pss: int = 0
    cut: list[Trial] = field(default_factory=list)

    def table(self) -> list[dict[str, Any]]:
        return [t.as_dict() for t in self.trials]

    def __repr__(self) -> str:
        return (
            f"AutotuneResult(best={self.best}, {len(self.trials)} trials, "
            f"{len(self.cut)} cut by the {self.memory_budget / 2**20:,.0f} MiB budget, "
            f"{self.seconds:.1f} s)"
        )


def default_space(dl: Loader, batch_sizes: list[int] | None = None) -> dict[str, list[Any]]:
    """What autotune searches, one knob at a time: readers (in-process, threads, processes),
    read-ahead depth, the block order's window, and batch sizes only when given (they change
    what the model learns, so autotune keeps yours unless asked)."""
    cores = container_limits().cores  # a CPU quota counts, not only the affinity
    threads = sorted({1, 2, 2 * cores})  # threads wait on I/O and page faults: more than cores
    procs = sorted({1, 2, cores})  # torch warns past the cores: each process needs one
    space: dict[str, list[Any]] = {
        "readers": [("thread", 0)]
        + [("thread", n) for n in threads]
        + [("process", n) for n in procs],
        "prefetch_factor": [1, 2, 4],
    }
    # a streamed dataset's shard window is fitted to its cache: a wider one would refetch
    if dl.order == "block" or (dl.order == "shard" and shard_cache(dl.dataset) is None):
        space["window"] = [4, 8, 16]
    if batch_sizes:
        space["batch_size"] = sorted(set(batch_sizes))
    return space


def _apply(point: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in point.items() if k != "readers"}
    if "readers" in point:
        out["worker_type"], out["num_workers"] = point["readers"]
    return out


@takes_loader_options
def autotune(
    dataset: Any,
    *,
    step: Callable[[Any], Any] | None = None,
    memory_budget: int | str | None = None,
    time_budget_s: float = 60.0,
    batch_sizes: list[int] | None = None,
    space: dict[str, list[Any]] | None = None,
    device: str | None = None,
    **loader_options: Any,
) -> AutotuneResult:
    """Find fast loader settings for ``dataset`` while ``step(batch)`` trains, keeping the
    process tree's memory growth under ``memory_budget``. One knob at a time (readers,
    read-ahead, window; batch size if ``batch_sizes``), each value held for a short trial: far
    fewer trials than the grid of all combinations.

    Parameters
    ----------
    dataset : Dataset or Loader
        What to load; a Loader is tuned from its own settings (the loader options are then
        ignored).
    step : callable, optional
        ``step(batch)``, the user's training step; default: read the batch.
    memory_budget : int or str, optional
        Bytes (or "4GiB") the process tree may grow by; default: half the memory available.
    time_budget_s : float, default 60.0
        Seconds for the whole search.
    batch_sizes : list of int, optional
        Batch sizes to try; default: keep the given one (it changes what the model learns).
    space : dict, optional
        ``{knob: [values]}`` to search instead of :func:`default_space`'s.
    device : str, optional
        Move each batch there (``wb.to_device``) before ``step``.

    Returns
    -------
    AutotuneResult
        ``best`` (options for ``wb.loader``), every trial, and the trials the budget cut.

    Raises
    ------
    InvalidInputError
        An invalid loader option or budget.

    Examples
    --------
    >>> ds = wb.open_dataset({"x": np.zeros((50_000, 64), "float32")})
    >>> r = autotune(ds, time_budget_s=4, batch_size=512); wb.loader(ds, **r.best).batch_size
    512
    """
    dl = dataset if isinstance(dataset, Loader) else loader(dataset, **loader_options)
    run = TrainingRun(dl, step, device=device)
    try:
        return search(
            run,
            memory_budget=memory_budget,
            time_budget_s=time_budget_s,
            batch_sizes=batch_sizes,
            space=space,
            warm_up=True,
        )
    finally:
        run.close()


def search(
    run: TrainingRun,
    *,
    memory_budget: int | str | None = None,
    time_budget_s: float = 60.0,
    batch_sizes: list[int] | None = None,
    space: dict[str, list[Any]] | None = None,
    warm_up: bool = False,
) -> AutotuneResult:
    """:func:`autotune`'s search on a training run already going (``wb.tune``'s panel runs it
    on its own); ``warm_up`` waits half a trial first, for a run just started."""
    t0 = time.perf_counter()
    budget = budget_bytes(memory_budget)
    dl = run.loader
    space = space or default_space(dl, batch_sizes)
    start = knobs(dl)
    point = {
        "readers": (start["worker_type"], start["num_workers"]),
        **{k: start[k] for k in space if k != "readers"},
    }
    points = sum(len(v) for v in space.values())
    trial_s = max(0.3, time_budget_s / (points + 1))
    tuner = _Search(run, budget, trial_s, t0 + time_budget_s)
    if warm_up:  # a fresh run's first batches touch cold pages and caches: not the start's speed
        time.sleep(trial_s / 2)
    best_point, best_rate = point, tuner.measure(point)
    for knob, values in space.items():
        for value in values:
            if value == best_point[knob] or time.perf_counter() > tuner.deadline:
                continue
            candidate = {**best_point, knob: value}
            rate = tuner.measure(candidate)
            if rate > best_rate * 1.03:  # past the noise of one short trial
                best_point, best_rate = candidate, rate
    with run.lock:
        trials = list(run.log.trials)
    top = best(trials)
    return AutotuneResult(
        best=dict(top.config) if top else {**start, **_apply(point)},
        trials=trials,
        memory_budget=budget,
        seconds=time.perf_counter() - t0,
        base_pss=run.log.base_pss,
        cut=[t for t in trials if t.cut],
    )


class _Search:
    """Holds each setting for a trial, cutting it before the budget is crossed."""

    def __init__(self, run: TrainingRun, budget: int, trial_s: float, deadline: float) -> None:
        self.run, self.budget, self.trial_s, self.deadline = run, budget, trial_s, deadline
        self.safe: dict[str, Any] = {"num_workers": 0}  # in-process: no reader memory at all
        self.cut_at: dict[str, int] = {}  # worker type -> fewest workers cut

    def measure(self, point: dict[str, Any]) -> float:
        run, options = self.run, _apply(point)
        with run.lock:
            config = {**knobs(run.loader), **options}
            reason = refusal(run, self.budget, self.cut_at, config)
            if reason:
                trial = run.log.refuse(config, reason, time.perf_counter())
        if reason:
            return _rate(trial)
        with run.lock:
            held = _holds(run.log.current, options)
            if held:  # the setting running now (the search's start): measure it afresh, not
                run.log.start(dict(run.log.current.config), time.perf_counter())  # cold batches
        if not held:
            run.loader.reconfigure(**options)
        end, last = time.perf_counter() + self.trial_s * 4, []
        while time.perf_counter() < end and run.alive:
            time.sleep(SAMPLE_S / 2)
            with run.lock:
                trial = run.log.current
                ours = _holds(trial, options)
                grown = run.pss - run.log.base_pss
                last = (last + [(time.perf_counter(), grown)])[-3:]
                slope = (last[-1][1] - last[0][1]) / max(1e-3, last[-1][0] - last[0][0])
                if heading_over(grown, slope, self.budget):
                    if ours:
                        run.log.cut(
                            f"cut at {grown / 2**20:,.0f} MiB of the "
                            f"{self.budget / 2**20:,.0f} MiB budget",
                            time.perf_counter(),
                        )
                    if options.get("num_workers"):
                        kind = options.get("worker_type", "thread")
                        self.cut_at[kind] = min(
                            self.cut_at.get(kind, 1 << 30), options["num_workers"]
                        )
                    break
                if ours and trial.measured and time.perf_counter() - trial.started >= self.trial_s:
                    trial = run.log.finish(time.perf_counter())
                    self.safe = options if grown < self.budget / 2 else self.safe
                    return _rate(trial)
        run.loader.reconfigure(**self.safe)  # back to a setting known to fit
        return 0.0  # cut, or too slow to measure in the time it had


def _holds(trial: Trial | None, options: dict[str, Any]) -> bool:
    """Whether ``trial`` is of a setting with every one of ``options``."""
    return trial is not None and all(trial.config[k] == v for k, v in options.items())


def _rate(trial: Trial) -> float:
    return trial.samples_per_s if trial.measured else 0.0
