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

from ..monitoring.stages import PRODUCER

__all__ = ["Trial"]

WARMUP_BATCHES = 2  # after a change: workers start, read-ahead refills
MIN_BATCHES = 3  # measured batches for a trial to count


@dataclass
class Trial:
    """One setting and what it measured: samples/s and MB/s over its batches (after the warm-up:
    rows over the time between them), the consumer's wait fraction, peak PSS above the start,
    and whether it was cut (stopped by the memory budget, or refused before it started: ``cut``
    says why).

    Parameters
    ----------
    config : dict
        The loader options of the setting.
    started, seconds : float
        When it started (``time.perf_counter``), and how long it was held.
    batches : int, default 0
        Batches measured (those after the warm-up).
    samples_per_s, mb_per_s, wait_fraction : float, default 0.0
        Over the measured batches: rows and MB over the time between them, and the share of
        that time the consumer waited.
    peak_bytes : int, default 0
        Peak PSS of the process tree above the run's start.
    cut : str, default ""
        Why it was stopped or refused ("" if it was not).
    stages : dict, default {}
        Seconds a batch per stage (``monitoring.stages.STAGES``), the loader's means over the
        trial's last batches (at most 200); empty before its first.
    sources : dict, default {}
        Rows from each source of a mixture (``wb.mix``) during the trial; empty otherwise.
    """

    config: dict[str, Any]
    started: float
    seconds: float = 0.0
    batches: int = 0
    samples_per_s: float = 0.0
    mb_per_s: float = 0.0
    wait_fraction: float = 0.0
    peak_bytes: int = 0
    cut: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    sources: dict[str, int] = field(default_factory=dict)
    _rows: int = field(default=0, repr=False)
    _bytes: int = field(default=0, repr=False)
    _wait: float = field(default=0.0, repr=False)
    _busy: float = field(default=0.0, repr=False)

    @property
    def measured(self) -> bool:
        """Held long enough to compare (and not cut)."""
        return not self.cut and self.batches >= MIN_BATCHES

    def add(self, rows: int, nbytes: int, wait_s: float, since_s: float) -> None:
        """Count one measured batch: ``rows`` of ``nbytes`` delivered ``since_s`` after the last,
        ``wait_s`` of it spent waiting."""
        self.batches += 1
        self._rows += rows
        self._bytes += nbytes
        self._wait += wait_s
        self._busy += since_s
        # rows over the time they took: per-batch rates are bursty under read-ahead (a median of
        # them overstated a trial 50x: 6.7M vs 119k rows/s measured over wall time)
        self.samples_per_s = self._rows / self._busy
        self.mb_per_s = self._bytes / 1e6 / self._busy
        self.wait_fraction = self._wait / self._busy

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
        self._source_base: dict[str, int] = {}  # the loader's source counts at the trial's start

    @property
    def current(self) -> Trial | None:
        return self._open

    def start(self, config: dict[str, Any], t: float) -> Trial:
        self.finish(t)
        self._open, self._seen, self._source_base = Trial(dict(config), started=t), 0, {}
        return self._open

    def source_counts(self, counts: dict[str, int], start: bool = False) -> None:
        """The loader's running rows per source of a mixture (``stats.sources``): the open
        trial counts those since it began (``start``: the counts as it begins)."""
        if start or any(v < self._source_base.get(k, 0) for k, v in counts.items()):
            self._source_base = dict(counts)  # this trial's start, or the counts restarted
        if self._open is not None and counts:
            base = self._source_base
            self._open.sources = {k: v - base.get(k, 0) for k, v in counts.items()}

    def batch(self, t: float, rows: int, nbytes: int, wait_s: float, since_s: float) -> None:
        trial = self._open
        if trial is None:
            return
        self._seen += 1
        if self._seen <= WARMUP_BATCHES or since_s <= 0:
            return
        trial.add(rows, nbytes, wait_s, since_s)

    def stage_means(self, means: dict[str, float]) -> None:
        """The loader's stage means now (its window holds only this setting's batches)."""
        if self._open is not None:
            self._open.stages = dict(means)

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


# the trials table, one set of columns and cells for every renderer (the CLI's text, wb.tune's HTML)
TRIAL_COLUMNS = ("setting", "samples/s", "MB/s", "wait", "peak MiB", "note")
STAGE_COLUMN = "time goes to"  # wb.tune's table adds it before the note: stage_text's cell


def stage_shares(stages: dict[str, float]) -> dict[str, float]:
    """Each reader stage's share of a batch's time in the readers (empty where none was timed).

    >>> stage_shares({"read": 0.001, "transform": 0.003, "wait": 0.5})
    {'read': 0.25, 'transform': 0.75}
    """
    total = sum(stages.get(s, 0.0) for s in PRODUCER)
    return {s: stages[s] / total for s in PRODUCER if stages.get(s)} if total > 0 else {}


def stage_text(stages: dict[str, float]) -> str:
    """A trial's stage split in a cell: the stage that dominates and its share.

    >>> stage_text({"read": 0.001, "transform": 0.003}), stage_text({"wait": 0.1}), stage_text({})
    ('transform 75%', 'not timed', '')
    """
    shares = stage_shares(stages)
    if not shares:
        return "not timed" if stages else ""
    top = max(shares, key=shares.__getitem__)
    return f"{top} {shares[top]:.0%}"


def shares_text(counts: dict[str, int]) -> str:
    """Each source's share of the rows of a mixture, "" where none was counted.

    >>> shares_text({"a": 700, "b": 300}), shares_text({})
    ('a 70%, b 30%', '')
    """
    n = sum(counts.values())
    return ", ".join(f"{k} {v / n:.0%}" for k, v in counts.items()) if n else ""


def setting_text(config: dict[str, Any]) -> str:
    """A trial's setting in words, from the options it has (run rows and pinning only when set).

    >>> setting_text({"num_workers": 2, "worker_type": "process", "batch_size": 512,
    ...               "prefetch_factor": 4, "window": 8, "run_rows": 1, "shuffle": "block"})
    '2 processes, batch 512, prefetch 4, window 8, shuffle block'
    """
    c, parts = config, []
    n, kind = c.get("num_workers"), c.get("worker_type", "thread")
    if n is not None:
        parts.append(
            "in-process"
            if not n
            else f"{n} {kind}" + ("" if n == 1 else "es" if kind == "process" else "s")
        )
    parts += [
        f"{word} {c[k]}"
        for k, word in (
            ("batch_size", "batch"),
            ("prefetch_factor", "prefetch"),
            ("window", "window"),
        )
        if k in c
    ]
    if c.get("run_rows", 1) != 1:
        parts.append(f"run rows {c['run_rows']}")
    if "shuffle" in c:
        parts.append(f"shuffle {c['shuffle']}")
    return ", ".join(parts + (["pinned"] if c.get("pin_memory") else []))


def trial_rows(trials: list[Any]) -> tuple[list[tuple[str, ...]], int | None]:
    """The table's rows (text cells in :data:`TRIAL_COLUMNS`' order) of ``trials``
    (:class:`Trial` or its :meth:`~Trial.as_dict`), and which row is the best: the fastest
    measured one.

    >>> rows, top = trial_rows([Trial({"batch_size": 64}, 0, seconds=1, batches=5,
    ...                               samples_per_s=1e4, mb_per_s=4.1, peak_bytes=3 << 20)])
    >>> rows[top]
    ('batch 64', '10,000', '4.1', '0.00', '3', 'best')
    """
    ts = [t.as_dict() if isinstance(t, Trial) else t for t in trials]
    measured = [i for i, t in enumerate(ts) if t["measured"]]
    top = max(measured, key=lambda i: ts[i]["samples_per_s"]) if measured else None
    rows: list[tuple[str, ...]] = []
    for i, t in enumerate(ts):
        note = t["cut"] or (
            "best"
            if i == top
            else ""
            if t["measured"]
            else "too few batches to measure"
            if t.get("seconds")
            else "measuring"
        )
        shares = shares_text(t.get("sources") or {})  # wb.mix: of the trial's rows
        note = "; ".join(x for x in (note, shares) if x)
        rows.append(
            (
                setting_text(t["config"]),
                f"{t['samples_per_s']:,.0f}",
                f"{t['mb_per_s']:,.1f}",
                f"{t['wait_fraction']:.2f}",
                f"{t['peak_bytes'] / 2**20:,.0f}",
                note,
            )
        )
    return rows, top


def trials_text(trials: list[Any]) -> str:
    """The trials table as aligned text: a header, a rule, a row per trial.

    >>> print(trials_text([Trial({"batch_size": 64}, 0, cut="refused: over the budget")]))
    setting   samples/s  MB/s  wait  peak MiB  note
    -----------------------------------------------
    batch 64          0   0.0  0.00         0  refused: over the budget
    """
    rows, _ = trial_rows(trials)
    widths = [max(map(len, cells)) for cells in zip(TRIAL_COLUMNS, *rows)]

    def line(r: tuple[str, ...]) -> str:
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:-1], widths[1:])]
        return "  ".join([*cells, r[-1]]).rstrip()

    head = line(TRIAL_COLUMNS)
    return "\n".join([head, "-" * len(head), *map(line, rows)])
