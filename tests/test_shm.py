"""A small /dev/shm (Docker's default is 64 MB): process workers' shared memory is checked before
they start; what does not fit shrinks, and what still does not fit reads on threads with a
SharedMemoryWarning naming the sizes and the fix, never a failed allocation, a bus error or a
killed worker. For real: a private mount namespace with a 16 MiB tmpfs on /dev/shm (as root)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import workbench as wb
from workbench.loading.workers import shm

CHILD = Path(__file__).with_name("shm_child.py")
MiB = 1 << 20


def test_fit_shrinks_the_group_then_the_requests_in_flight_then_gives_up():
    kib256 = 256 << 10
    asked = shm.fit(kib256, workers=2, prefetch=16, group=16, free=1 << 30)
    assert asked[:3] == (16, 1, True) and not asked.shrunk
    small = shm.fit(kib256, workers=2, prefetch=16, group=16, free=16 * MiB)
    assert small.shrunk and small.size == 12 and small.need <= shm.room(16 * MiB)
    deep = shm.fit(kib256, workers=2, prefetch=8, group=2, free=6 * MiB)  # group kept, fewer
    assert (deep.size, deep.requests) == (2, 2)
    none = shm.fit(4 * MiB, workers=2, prefetch=2, group=1, free=16 * MiB)
    assert not none.fits and none.need > 16 * MiB
    assert shm.fit(0, 2, 2, 1, 16 * MiB).fits  # a batch of unknown size is not checked here
    text = shm.message(none, 4 * MiB, 2, shm.need(4 * MiB, 2, 1, 2, True, 2))
    assert "40.0 MiB" in text and "16.0 MiB free" in text and "--shm-size=1g" in text
    assert "threads" in text and "medium: Memory" in text


def _in_small_shm(*cases: str) -> list[dict]:
    if os.geteuid() != 0:
        pytest.skip("needs root: mounting a 16 MiB tmpfs on /dev/shm in a private namespace")
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) (util-linux) for a private mount namespace")
    script = f"mount -t tmpfs -o size=16m tmpfs /dev/shm && exec {sys.executable} {CHILD} "
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", script + " ".join(cases)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parents[1],
    )
    if run.returncode and "mount" in run.stderr and not run.stdout:
        pytest.skip(f"no private mount namespace here: {run.stderr.strip()[:200]}")
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads(line) for line in run.stdout.splitlines()]


def _left_nothing(got: dict) -> None:
    assert got["shm_before"] == got["shm_after"] == []  # no name left on /dev/shm
    assert got["free_after"] == got["size"]  # and no space held (unlinked, still mapped)


def test_batches_too_big_for_a_16_mib_dev_shm_are_read_on_threads_with_a_warning():
    # 4 MiB batches: even one batch a request, one in flight is 2 workers x 4 slots = 32 MiB
    big, foreign = _in_small_shm("ours:20000:4096:2:2", "foreign:20000:4096:2:2")
    assert big["rows_once"] == [True, True]  # every row once, both epochs
    assert big["processes"] == 0 and big["state"].startswith("threads: /dev/shm has 16.0 MiB")
    assert f"(process; {big['state']})" in big["repr"]  # repr(loader) says what it did instead
    (said,) = big["warnings"]  # once, not once an epoch
    assert said.startswith("SharedMemoryWarning: process workers need 40.2 MiB")
    assert "16.0 MiB free" in said and "reading on 2 threads" in said
    assert "docker run --shm-size=1g" in said and "emptyDir volume with medium: Memory" in said
    _left_nothing(big)
    # a torch Dataset: the batch size is known only once a worker's ring fails to allocate
    assert foreign["rows_once"] == [True, True] and foreign["processes"] == 0
    (said,) = foreign["warnings"]
    assert "no room on /dev/shm for its 5 batch slots of 4.0 MiB" in said
    assert "reading on 2 threads" in said and "--shm-size=1g" in said
    _left_nothing(foreign)


def test_batches_torch_shares_itself_that_find_no_room_are_read_on_threads_not_waited_for():
    # lists of tensors of different lengths (10 MiB a batch) fit no slot ring: torch moves them
    # to /dev/shm as it sends them, where a failure used to leave the loader waiting for timeout
    (ragged,) = _in_small_shm("ragged:20000:2560:2:2")
    assert ragged["rows_once"] == [True, True] and ragged["processes"] == 0
    (said,) = ragged["warnings"]
    assert "no room on /dev/shm for a batch torch shares" in said
    assert "No space left on device" in said and "reading on 2 threads" in said
    assert "--shm-size=1g" in said and ragged["state"].startswith("threads: ")
    _left_nothing(ragged)


def test_a_16_mib_dev_shm_shrinks_the_groups_or_fits_small_batches_as_they_are():
    shrunk, small = _in_small_shm("ours:20000:256:0:1", "ours:20000:32:2:1")
    assert shrunk["rows_once"] == [True] and shrunk["processes"] == 2  # still processes
    (said,) = shrunk["warnings"]  # 15 batches a request would need 16.3 MiB
    assert "need 16.3 MiB" in said and "reading 12 batches a request" in said
    assert "--shm-size=1g" in said and shrunk["state"].startswith("12 batches a request")
    _left_nothing(shrunk)
    assert small["rows_once"] == [True] and small["processes"] == 2
    assert small["warnings"] == [] and small["state"] == ""
    _left_nothing(small)


def test_process_workers_leave_no_name_on_dev_shm_after_close():
    ds = wb.open_dataset({"x": np.ones((3000, 255), "float32")})
    before = set(os.listdir("/dev/shm"))
    dl = wb.loader(ds, batch_size=64, shuffle="full", num_workers=2, worker_type="process")
    mine = {os.getpid()}
    for _ in dl:
        mine.update(dl.worker_pids())
    dl.close()
    left = set(os.listdir("/dev/shm")) - before
    ours = {n for n in left if n.startswith("torch_") and int(n.split("_")[1]) in mine}
    assert not ours  # torch_<pid>_... of this process or its workers (other processes may run)
