"""The CLI is a thin shell: exit codes, messages without tracebacks, and the same results."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from workbench.demo import make_demo

from oracle import read_dataset


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("raw"), rows=3000, formats=("csv", "npy"))


def test_convert_verify_info(tmp_path, raw):
    dst = tmp_path / "d"
    r = run("convert", raw.csv, dst, "--target", "label", "--sparse", "tokens=1000", "--no-progress")
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


@pytest.mark.parametrize("args, fragment", [
    (["convert", "nope.csv", "out"], "nope.csv"),
    (["info", "nowhere"], "nowhere"),
    (["convert", "{npy}", "out", "--format", "hdf5", "--target", "zzz"], "zzz"),
])
def test_errors_are_one_line_without_traceback(tmp_path, raw, args, fragment):
    r = run(*[a.format(npy=raw.npy) for a in args], cwd=tmp_path)
    assert r.returncode == 1
    assert fragment in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out" / "CURRENT").exists()


def test_bad_usage_exits_2(tmp_path, raw):
    r = run("convert", raw.csv, tmp_path / "d", "--sparse", "tokens")
    assert r.returncode == 2 and "COLUMN=WIDTH" in r.stderr
    assert run("frobnicate").returncode == 2
