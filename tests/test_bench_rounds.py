"""benchmarks/loaders.py's figures survive noise: contenders run in interleaved rounds, ratios are
taken round by round, and a goal is met only when the lower quartile of its ratio meets it."""

from __future__ import annotations

import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import loaders  # noqa: E402


def result(rate: float) -> dict:
    return {
        "samples_per_s": rate,
        "mb_per_s": rate / 1e3,
        "peak_anon": rate,
        "peak_rss": 2 * rate,
        "anon_growth": 0,
        "first_batch_s": 0.1,
    }


def row(name: str, func: str, rates: list[float | None], order: str = "full") -> dict:
    r = loaders._row(name, func, order, "thread 0", 256)
    r["rounds"] = [result(x) if x else None for x in rates]
    r["res"] = loaders.over_rounds(r["rounds"])
    return r


def test_a_contender_is_the_median_of_its_rounds_and_failed_rounds_stay_in_place():
    r = row("x", "ours", [3.0, None, 1.0, 2.0])
    assert r["res"]["samples_per_s"] == 2.0  # the median of the three that ran
    assert r["res"]["peak_anon"] == 3.0  # memory: the worst round
    assert r["res"]["runs"][0] == 3.0 and math.isnan(r["res"]["runs"][1])
    assert loaders.over_rounds([None, None]) is None


def test_ratios_pair_rounds_and_skip_the_failed_ones():
    a = row("a", "ours", [2.0, 4.0, None, 9.0])
    b = row("b", "limit_memcpy", [1.0, 8.0, 5.0, 3.0])
    assert loaders.per_round(a, b) == [2.0, 0.5, 3.0]
    lo, mid, hi = loaders.ratio_of(a, b)
    assert (lo, mid, hi) == (1.25, 2.0, 2.5)


def test_a_goal_is_judged_on_the_lower_quartile_not_the_median():
    zc = row("limit: zero-copy", "limit_zero_copy", [10.0] * 5, "sequential")
    mc = row("limit: memcpy", "limit_memcpy", [10.0] * 5, "sequential")
    steady = row("workbench loader", "ours", [9.6, 9.7, 9.8, 9.6, 9.7], "sequential")
    text = loaders.goals([zc, mc, steady], None, 256)
    assert "- PASS sequential ≥ 0.95× zero-copy read: 0.97× [quartiles 0.96–0.97]" in text
    # a median above the goal with a lower quartile under it is a miss
    noisy = row("workbench loader", "ours", [12.0, 9.7, 8.0, 9.0, 11.0], "sequential")
    text = loaders.goals([zc, mc, noisy], None, 256)
    assert "- MISS sequential ≥ 0.95× zero-copy read: 0.97× [quartiles 0.90–1.10]" in text


def test_each_round_runs_every_contender_once_starting_one_later(monkeypatch):
    calls = []

    def fake_child(script, func, kw, **_):
        calls.append(kw["tag"])
        return result(1.0 + len(calls))

    monkeypatch.setattr(loaders._measure, "run_child", fake_child)
    plan = [loaders._row(t, "f", "full", "-", 1, tag=t) for t in "abc"]
    loaders.execute(plan, lambda _: None, rounds=3)
    assert calls == list("abcbcacab")
    assert all(len(r["rounds"]) == 3 and r["res"]["samples_per_s"] > 0 for r in plan)
