"""Trials of loader settings: what one setting, held for a while, measured (pure bookkeeping).

A trial collects the batches delivered under one setting and the memory samples taken meanwhile;
its figures skip the first batches after a change (readers starting up), and its peak memory is
the process tree's PSS above the starting point.

>>> log = TrialLog(base_pss=100)
>>> trial = log.start({"num_workers": 0}, t=0.0)
>>> for k in range(6): log.batch(t=0.1 * (k + 1), rows=10, nbytes=40, wait_s=0.01, since_s=0.1)
>>> log.memory(t=0.3, pss=150); t = log.finish(t=0.6)
>>> round(t.samples_per_s), t.peak_bytes, t.measured
(100, 50, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Trial"]

WARMUP_BATCHES = 2  # after a change: workers start, read-ahead refills
MIN_BATCHES = 3  # measured batches for a trial to count


@dataclass
class Trial:
    """One setting and what it measured: samples/s and MB/s over its batches (after the warm-up:
    rows over the time between them), the consumer's wait fraction, peak PSS above the start, and whether it was cut
    (stopped by the memory budget, or refused before it started: ``cut`` says why)."""

    config: dict[str, Any]
    started: float
    seconds: float = 0.0
    batches: int = 0
    samples_per_s: float = 0.0
    mb_per_s: float = 0.0
    wait_fraction: float = 0.0
    peak_bytes: int = 0
    cut: str = ""
    _rows: int = field(default=0, repr=False)
    _bytes: int = field(default=0, repr=False)
    _wait: float = field(default=0.0, repr=False)
    _busy: float = field(default=0.0, repr=False)

    @property
    def measured(self) -> bool:
        """Held long enough to compare (and not cut)."""
        return not self.cut and self.batches >= MIN_BATCHES

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        return {**out, "measured": self.measured}


class TrialLog:
    """The trials of one run, in order; the last one is open until :meth:`finish`."""

    def __init__(self, base_pss: int) -> None:
        self.base_pss = int(base_pss)
        self.trials: list[Trial] = []
        self._open: Trial | None = None
        self._seen = 0

    @property
    def current(self) -> Trial | None:
        return self._open

    def start(self, config: dict[str, Any], t: float) -> Trial:
        self.finish(t)
        self._open, self._seen = Trial(dict(config), started=t), 0
        return self._open

    def batch(self, t: float, rows: int, nbytes: int, wait_s: float, since_s: float) -> None:
        trial = self._open
        if trial is None:
            return
        self._seen += 1
        if self._seen <= WARMUP_BATCHES or since_s <= 0:
            return
        trial.batches += 1
        trial._rows += rows
        trial._bytes += nbytes
        trial._wait += wait_s
        trial._busy += since_s
        # rows over the time they took: per-batch rates are bursty under read-ahead (a median of
        # them overstated a trial 50x: 6.7M vs 119k rows/s measured over wall time)
        trial.samples_per_s = trial._rows / trial._busy
        trial.mb_per_s = trial._bytes / 1e6 / trial._busy
        trial.wait_fraction = trial._wait / trial._busy

    def memory(self, t: float, pss: int) -> None:
        if self._open is not None:
            self._open.peak_bytes = max(self._open.peak_bytes, int(pss) - self.base_pss)

    def cut(self, reason: str, t: float) -> None:
        """End the open trial as cut (by the memory budget)."""
        if self._open is not None:
            self._open.cut = reason
        self.finish(t)

    def refuse(self, config: dict[str, Any], reason: str, t: float) -> Trial:
        """Record a setting not run at all, and why."""
        self.finish(t)
        trial = Trial(dict(config), started=t, cut=reason)
        self.trials.append(trial)
        return trial

    def finish(self, t: float) -> Trial | None:
        trial, self._open = self._open, None
        if trial is not None:
            trial.seconds = t - trial.started
            self.trials.append(trial)
        return trial


def best(trials: list[Trial]) -> Trial | None:
    """The measured trial with the most samples per second, if any.

    >>> best([Trial({"a": 1}, 0, batches=5, samples_per_s=9.0), Trial({"a": 2}, 0, batches=5,
    ...       samples_per_s=12.0), Trial({"a": 3}, 0, samples_per_s=99.0, cut="memory")]).config
    {'a': 2}
    """
    ok = [t for t in trials if t.measured]
    return max(ok, key=lambda t: t.samples_per_s) if ok else None
