"""Crash consistency: a conversion SIGKILLed at any instant leaves the old dataset or the new
one."""

from __future__ import annotations

import os
import random
import shutil
import signal
import time

import numpy as np
import pytest
from oracle import read_dataset

import workbench as wb
from workbench.errors import DatasetNotFoundError
from workbench.format.catalog import read_manifest

OLD = np.repeat(np.arange(3000, dtype="float32")[:, None], 4, axis=1)
NEW = OLD + 0.5
KW = dict(shard_bytes=16 * 400, chunk_rows=200, progress=False)


def _state(dest) -> str:
    """'old', 'new' or 'none'; anything half-written fails the test."""
    try:
        x = read_dataset(dest)["x"]
    except DatasetNotFoundError:
        return "none"
    wb.verify(dest)
    if np.array_equal(x, OLD):
        return "old"
    assert np.array_equal(x, NEW), "a dataset opened with mixed or partial rows"
    return "new"


def _run_child(body) -> int:
    """Fork; the child runs ``body`` and exits 0; returns the child's wait status."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            body()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return status


def _kill_at_boundary(n: int, layout: str, dest, src) -> None:
    """In the child: SIGKILL ourselves at the n-th file-system write boundary."""
    import workbench.conversion.commit as commit_mod

    count = [0]

    def tick():
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    def wrap(fn):
        def inner(*a, **k):
            tick()
            out = fn(*a, **k)
            tick()
            return out

        return inner

    os.replace = wrap(os.replace)
    os.rename = wrap(os.rename)
    shutil.rmtree = wrap(shutil.rmtree)
    commit_mod.Staging.record = wrap(commit_mod.Staging.record)
    from workbench.layouts import writer_class

    cls = writer_class(layout)
    cls.write = wrap(cls.write)
    cls.close = wrap(cls.close)
    wb.convert(src, dest, format=layout, overwrite=True, **KW)


@pytest.mark.parametrize("existing", [True, False])
def test_sigkill_at_every_write_boundary_leaves_old_or_new(tmp_path, existing):
    src = tmp_path / "new.npy"
    np.save(src, NEW)
    seen = set()
    for n in range(1, 400):
        dest = tmp_path / f"d{n}"
        if existing:
            wb.convert(OLD, dest, **KW)
        status = _run_child(lambda: _kill_at_boundary(n, "store", dest, src))
        state = _state(dest)
        seen.add(state)
        if os.WIFEXITED(status):  # n ran past the last boundary: the conversion finished
            assert state == "new"
            break
        assert os.WTERMSIG(status) == signal.SIGKILL
        assert state in (("old", "new") if existing else ("none", "new"))
        # a later conversion over the debris works and leaves no partial folders behind
        wb.convert(src, dest, overwrite=True, **KW)
        assert _state(dest) == "new"
        assert not list(dest.glob("*.partial"))
        shutil.rmtree(dest)
    else:
        pytest.fail("conversion never finished")
    assert n > 30, "too few kill points exercised"
    assert seen == ({"old", "new"} if existing else {"none", "new"})


@pytest.mark.parametrize("layout", ["hdf5", "parquet", "store"])
def test_sigkill_at_random_times_leaves_old_or_new(tmp_path, layout):
    src = tmp_path / "new.npy"
    np.save(src, NEW)
    dest = tmp_path / "d"
    wb.convert(OLD, dest, format=layout, **KW)
    t0 = time.perf_counter()
    _run_child(lambda: wb.convert(src, tmp_path / "probe", format=layout, **KW))
    full = time.perf_counter() - t0
    rng = random.Random(0)
    states = []
    for _ in range(12):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                wb.convert(src, dest, format=layout, overwrite=True, **KW)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, full * 1.2))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        states.append(_state(dest))
        assert states[-1] in ("old", "new")
        if states[-1] == "new":
            wb.convert(OLD, dest, format=layout, overwrite=True, **KW)


def test_readers_keep_their_version_while_a_new_one_commits(tmp_path):
    dest = tmp_path / "d"
    wb.convert(OLD, dest, **KW)
    version, m = read_manifest(dest)
    first = np.load(version / m.shards[0].files[0].path, mmap_mode="r", allow_pickle=False)
    wb.convert(NEW, dest, overwrite=True, **KW)
    np.testing.assert_array_equal(first, OLD[: len(first)])  # old mapping still valid
    assert _state(dest) == "new"
