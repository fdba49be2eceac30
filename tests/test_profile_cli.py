"""``workbench profile PATH --step module:function``: a real subprocess runs a loader over a
dataset on disk, calling the user's step with each batch, and prints the verdict and the table of
seconds per stage; a step that cannot be found is a message and exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import workbench as wb


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "workbench", "profile", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("profile")
    x = np.random.default_rng(0).random((4096, 64), dtype="float32")
    wb.convert({"x": x, "y": np.arange(4096)}, root / "d.store", progress=False)
    (root / "train.py").write_text(
        "import time\n\n\ndef step(batch):\n    time.sleep(0.02)  # a slow model\n"
    )
    (root / "slow_input.py").write_text(
        "def busy(batch):\n    s = 0\n    for i in range(50_000):\n        s += i\n\n\n"
        "def step(batch):\n    busy(batch)\n"
    )
    return root


def test_a_slow_step_is_compute_bound_with_the_stage_table(store):
    r = run("d.store", "--step", "train:step", "--batches", "20", "--batch-size", "256", cwd=store)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "19 batches timed, after a first one, from wb.loader(ds, batch_size=256" in out
    assert "compute-bound" in out and "leave it" in out
    table = out[out.index("stage ") :].splitlines()
    assert table[0].split() == ["stage", "ms/batch", "share"]
    rows = {line.split()[0]: line.split()[1:] for line in table[1:]}
    assert {"read", "wait", "step"} <= set(rows) and float(rows["step"][0]) >= 15
    assert "no GPU" in out or "host-to-device" in out


def test_no_step_is_the_loader_alone_and_a_trace_is_written(store):
    r = run("d.store", "--batches", "30", "--shuffle", "full", "--trace", "t.json", cwd=store)
    assert r.returncode == 0, r.stderr
    assert "input-bound" in r.stdout and "read " in r.stdout  # nothing else to wait for
    events = json.loads((store / "t.json").read_text())["traceEvents"]
    assert {"read", "wait"} <= {e["name"] for e in events if e["ph"] == "X"}


def test_a_step_given_as_a_file_runs_too(store):
    step = f"{store / 'slow_input.py'}:step"
    r = run(store / "d.store", "--step", step, "--seconds", "2", cwd="/")
    assert r.returncode == 0, r.stderr
    assert "batches timed, after a first one, from wb.loader" in r.stdout


@pytest.mark.parametrize(
    "spec,said", [("nowhere:step", "cannot import nowhere"), ("train:missing", "no function")]
)
def test_a_step_that_cannot_be_found_is_named(store, spec, said):
    r = run("d.store", "--step", spec, cwd=store)
    assert r.returncode == 1 and said in r.stderr and "Traceback" not in r.stderr
