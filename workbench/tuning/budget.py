"""The memory budget autotune never crosses: its bytes, the settings it refuses without running
them, and when a running trial must be cut.

Memory is the PSS of this process and all its children (loader workers) above what it was when
the run started. A trial heading past the budget is cut before it gets there: the guard samples
every 0.1 s and cuts at ``GUARD`` of the budget, or earlier when the last samples' slope would
cross the budget before the next one; a setting with more worker processes than one already cut
(or predicted over budget from the PSS per worker measured so far) is refused without running.
So is a setting of N worker processes when N times this process's anonymous memory would not
fit: a forked worker may copy every such page (a Python list's refcounts are written on every
read), in less time than one memory sample takes, so only that worst case is safe to plan on.
"""

from __future__ import annotations

from typing import Any

from dask.utils import parse_bytes

from ..monitoring.container import container_limits, promised_bytes
from ..monitoring.memory import process_memory
from .training import SAMPLE_S, TrainingRun

__all__: list[str] = []

BUDGET_FRACTION = 0.5  # default memory_budget: this fraction of what the cgroup (or host) leaves
GUARD = 0.9  # cut a trial when it reaches this fraction of the budget


def budget_bytes(memory_budget: int | str | None) -> int:
    """Bytes of a budget given as bytes or text ("2GiB"); None: ``BUDGET_FRACTION`` of what is
    available now to this process (its container's room under the cgroup limit, not the
    host's), less what a RAM tier still copying will take."""
    if memory_budget is None:
        return max(0, int(BUDGET_FRACTION * container_limits().available) - promised_bytes())
    return int(parse_bytes(memory_budget) if isinstance(memory_budget, str) else memory_budget)


def refusal(run: TrainingRun, budget: int, cut_at: dict[str, int], options: dict[str, Any]) -> str:
    """Why the setting ``options`` may not run under ``budget`` ("" when it may); ``cut_at``
    maps a worker type to the fewest workers of it cut so far."""
    kind, n = options.get("worker_type"), options.get("num_workers", 0)
    if n and kind in cut_at and n >= cut_at[kind]:
        return f"refused: {cut_at[kind]} {kind} workers already reached the budget"
    if n and kind == "process":
        # A forked worker can copy, page by page, every anonymous page this process holds
        # (refcount writes to Python objects are enough), faster than any sampling can see:
        # refuse unless that worst case fits what the budget leaves.
        anon, grown = process_memory().anonymous, run.pss - run.log.base_pss
        if max(0, grown) + n * anon >= GUARD * budget:
            return (
                f"refused: {n} process worker{'s' if n > 1 else ''} could copy "
                f"{n * anon / 2**20:,.0f} MiB ({anon / 2**20:,.0f} MiB of this process's "
                f"anonymous memory each, copy-on-write after fork), over the budget"
            )
    done = [
        t
        for t in run.log.trials
        if t.config["worker_type"] == kind and t.config["num_workers"] and t.measured
    ]
    if n and kind == "process" and done:
        per = max(t.peak_bytes / t.config["num_workers"] for t in done)
        if per * n >= GUARD * budget:
            return (
                f"refused: {n} workers x {per / 2**20:,.0f} MiB measured per worker "
                f"would pass the budget"
            )
    return ""


def heading_over(grown: float, slope: float, budget: int) -> bool:
    """Whether memory ``grown`` bytes above the start, growing ``slope`` bytes/s, must be cut
    now: at ``GUARD`` of the budget, or when it would cross it before the next sample."""
    return grown >= GUARD * budget or grown + max(0.0, slope) * 2 * SAMPLE_S >= budget
