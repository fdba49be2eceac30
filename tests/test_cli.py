"""The CLI is a thin shell: exit codes, messages without tracebacks, and the same results."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from oracle import read_dataset

from workbench.demo.data import make_demo


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "workbench", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("raw"), rows=3000, formats=("csv", "npy"))


def test_convert_verify_info(tmp_path, raw):
    dst = tmp_path / "d"
    r = run(
        "convert", raw.csv, dst, "--target", "label", "--sparse", "tokens=1000", "--no-progress"
    )
    assert r.returncode == 0, r.stderr
    assert "3,000" in r.stdout and "features" in r.stdout and "tokens" in r.stdout
    got = read_dataset(dst)
    np.testing.assert_array_equal(got["features"], np.load(raw.npy))
    np.testing.assert_array_equal(got["label"], np.load(raw.labels_npy))
    r = run("verify", dst)
    assert r.returncode == 0 and "OK" in r.stdout
    r = run("info", dst)
    assert r.returncode == 0 and "target        label" in r.stdout


def test_verify_names_the_bad_file_and_exits_1(tmp_path, raw):
    dst = tmp_path / "d"
    assert run("convert", raw.npy, dst, "--no-progress").returncode == 0
    shard = next(dst.glob("v-*/00000/x.npy"))
    data = bytearray(shard.read_bytes())
    data[-5] ^= 1
    shard.write_bytes(bytes(data))
    r = run("verify", dst)
    assert r.returncode == 1 and "x.npy" in r.stdout and "checksum" in r.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["convert", "nope.csv", "out"], "nope.csv"),
        (["info", "nowhere"], "nowhere"),
        (["convert", "{npy}", "out", "--format", "hdf5", "--target", "zzz"], "zzz"),
    ],
)
def test_errors_are_one_line_without_traceback(tmp_path, raw, args, fragment):
    r = run(*[a.format(npy=raw.npy) for a in args], cwd=tmp_path)
    assert r.returncode == 1
    assert fragment in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "CURRENT").exists()


def test_bad_usage_exits_2(tmp_path, raw):
    r = run("convert", raw.csv, tmp_path / "d", "--sparse", "tokens")
    assert r.returncode == 2 and "COLUMN=WIDTH" in r.stderr
    assert run("frobnicate").returncode == 2


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    import workbench as wb

    path = tmp_path_factory.mktemp("tune") / "s.store"
    rows = 40_000
    wb.convert(
        {"x": np.random.default_rng(0).random((rows, 16), dtype="float32"), "y": np.arange(rows)},
        path,
        progress=False,
    )
    return path


def _loader_line(stdout):
    import ast

    line = next(ln for ln in stdout.splitlines() if ln.startswith("wb.loader(ds, "))
    call = ast.parse(line, mode="eval").body
    assert isinstance(call, ast.Call) and [ast.unparse(a) for a in call.args] == ["ds"]
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def test_tune_prints_the_trials_and_a_loader_line_that_builds(small_store):
    import workbench as wb

    r = run(
        "tune",
        small_store,
        "--seconds",
        "4",
        "--batch-size",
        "512",
        "--shuffle",
        "full",
        "--memory-budget",
        "1GiB",
    )
    assert r.returncode == 0, r.stderr
    assert "memory budget 1,024 MiB" in r.stdout
    header = next(ln for ln in r.stdout.splitlines() if ln.startswith("setting"))
    assert header.split() == ["setting", "samples/s", "MB/s", "wait", "peak", "MiB", "note"]
    rows = [ln for ln in r.stdout.splitlines() if ", batch " in ln]
    assert len(rows) >= 3 and all(", batch 512," in ln for ln in rows)  # one batch size kept
    assert sum(ln.rstrip().endswith("best") for ln in rows) == 1
    options = _loader_line(r.stdout)
    assert options["batch_size"] == 512 and options["shuffle"] == "full"
    assert options["worker_type"] in ("thread", "process") and options["num_workers"] >= 0
    dl = wb.loader(wb.open_dataset(small_store), **options)
    assert len(next(iter(dl))["y"]) == 512
    dl.close()


def test_tune_searches_several_batch_sizes(small_store):
    r = run("tune", small_store, "--seconds", "4", "--batch-size", "256", "1024")
    assert r.returncode == 0, r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ", batch " in ln]
    assert any(", batch 256," in ln for ln in rows) and any(", batch 1024," in ln for ln in rows)
    assert _loader_line(r.stdout)["batch_size"] in (256, 1024)


@pytest.mark.parametrize("budget", ["lots", "-1GB", "0"])
def test_tune_bad_budget_is_a_clear_usage_error(small_store, budget):
    r = run("tune", small_store, f"--memory-budget={budget}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"--memory-budget: {budget!r} is not a memory size" in r.stderr


def test_tune_missing_dataset_exits_1(tmp_path):
    r = run("tune", tmp_path / "nowhere", "--seconds", "1")
    assert r.returncode == 1 and "nowhere" in r.stderr and "Traceback" not in r.stderr
