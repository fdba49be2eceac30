"""workbench/notebooks/guards.py and bounds.py: ``wb.expect`` reads its figures from a real loader
and Monitor, passes quietly (its repr names the bounds, not the figures), fails like an assertion
with the measured figures, and keeps the last passing run's figures for ``x last run``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import workbench as wb
from workbench.errors import InvalidInputError
from workbench.notebooks import expect
from workbench.notebooks.bounds import parse_bound
from workbench.notebooks.guards import BASELINE_ENV, ExpectationError, figure, gather_limit


@pytest.fixture
def baseline(tmp_path, monkeypatch):
    path = tmp_path / "nb.expect.json"
    monkeypatch.setenv(BASELINE_ENV, str(path))
    return path


@pytest.fixture(scope="module")
def epoch():
    ds = wb.open_dataset({"x": np.ones((40_000, 16), "float32")})
    dl = wb.loader(ds, batch_size=1000, shuffle="block", seed=0)
    with wb.Monitor(dl, interval=0.05) as mon:
        for _ in dl:
            pass
    yield dl, mon
    dl.close()


@pytest.mark.parametrize(
    "text, op, number, reference",
    [
        (">= 1e6", ">=", 1e6, None),
        ("<= 2GiB", "<=", 2 * 2**30, None),
        ("< 500 MB", "<", 5e8, None),
        ("> 1.5k", ">", 1500.0, None),
        ("<= 20%", "<=", 0.2, None),
        (">= 0.8x gather limit", ">=", 0.8, "gather limit"),
        (">= 0.9x last run", ">=", 0.9, "last run"),
    ],
)
def test_bounds_parse(text, op, number, reference):
    b = parse_bound("f", text)
    assert (b.op, b.number, b.reference) == (op, pytest.approx(number), reference)


@pytest.mark.parametrize("text", ["1e6", ">= fast", ">= 0.8x the limit", ""])
def test_a_bound_that_is_not_one_says_what_to_write(text):
    with pytest.raises(InvalidInputError, match="'>= 0.8x gather limit'"):
        parse_bound("samples_per_s", text)


def test_figures_come_from_the_loader_and_the_monitor(epoch):
    dl, mon = epoch
    assert figure(dl, "samples_per_s") == dl.stats.samples_per_s > 0
    assert figure(mon, "samples_per_s") == dl.stats.samples_per_s
    assert figure(dl, "pss") > 0 and figure(mon, "pss") > 0
    assert figure({"pss": 5}, "pss") == 5.0
    with pytest.raises(InvalidInputError, match="does not measure 'gpu'"):
        figure(dl, "gpu")


def test_a_met_expectation_prints_its_bounds_and_keeps_the_figures(epoch, baseline):
    dl, mon = epoch
    met = expect(mon, samples_per_s=">= 1", pss="<= 1TiB", name="epoch")
    assert repr(met) == "Met(samples_per_s >= 1, pss <= 1TiB)"
    stored = json.loads(baseline.read_text())["epoch"]
    assert stored["samples_per_s"] == met.measured["samples_per_s"] > 0


def test_a_missed_expectation_fails_with_the_measured_figures(epoch, baseline):
    dl, _ = epoch
    with pytest.raises(ExpectationError) as e:
        expect(dl, samples_per_s=">= 1e15", pss="<= 1KiB", name="too much")
    assert isinstance(e.value, AssertionError)
    text = str(e.value)
    assert "'too much' missed: samples_per_s = " in text and "expected >= " in text
    assert "pss = " in text and "expected <= 1.0 KiB (<= 1KiB)" in text
    assert not baseline.exists()  # a miss keeps the last good figures


def test_last_run_compares_with_the_stored_figures(epoch, baseline):
    dl, _ = epoch
    expect(dl, samples_per_s=">= 0.5x last run", name="rel")  # no baseline yet: recorded
    got = json.loads(baseline.read_text())["rel"]["samples_per_s"]
    baseline.write_text(json.dumps({"rel": {"samples_per_s": got * 100}}))
    with pytest.raises(ExpectationError, match=r"0.5x last run = "):
        expect(dl, samples_per_s=">= 0.5x last run", name="rel")


def test_gather_limit_is_measured_for_the_rows_of_the_loader(epoch, baseline):
    dl, _ = epoch
    rows_per_s, row_bytes = gather_limit(dl)
    assert row_bytes == 64 and rows_per_s > 0
    expect(dl, samples_per_s=">= 1e-9x gather limit")
    with pytest.raises(ExpectationError, match="gather limit = "):
        expect(dl, samples_per_s=">= 1e9x gather limit")
    with pytest.raises(InvalidInputError, match="pss has no gather limit"):
        expect(dl, pss=">= 1x gather limit")
