"""Page-cache residency on a real disk: bytes rise after a read, fall on evict, rise on warm."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

import workbench as wb
from workbench.errors import SourceNotFoundError


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "big.npy"
    np.save(
        path,
        np.random.default_rng(0).standard_normal((1 << 20) // 2, dtype=np.float32).reshape(-1, 64),
    )
    return path  # 2 MiB on the same ext4 disk as the data


def test_read_evict_warm_move_the_resident_bytes(big):
    size = os.path.getsize(big)
    wb.evict(big)
    cold = wb.residency(big)
    assert cold.total_bytes == size and cold.fraction < 0.1
    with open(big, "rb") as f:
        f.read()
    hot = wb.residency(big)
    assert hot.fraction > 0.9 and hot.resident_bytes <= size
    gone = wb.evict(big)
    assert gone.before_bytes == hot.resident_bytes and gone.after_bytes < size // 10
    assert gone.note == "" and wb.residency(big).fraction < 0.1
    back = wb.warm(big)  # returns once every page is in, not when the advice is given
    assert back.total_bytes == size and back.after_bytes == size == wb.residency(big).total_bytes
    assert wb.residency(big).fraction == 1.0 and str(back).startswith("warm: 2.0 MiB of 2.0 MiB")


def test_warm_brings_in_all_of_a_file_past_the_read_ahead_window(tmp_path):
    """One WILLNEED over a whole file is capped by the read-ahead window (an 18 MiB .npy was
    left 45 % resident); warm asks window by window and reads what is still missing."""
    path = tmp_path / "wide.bin"
    with open(path, "wb") as f:
        for _ in range(48):
            f.write(os.urandom(1 << 20))
    wb.evict(path)
    assert wb.residency(path).fraction < 0.1
    got = wb.warm(path)
    assert got.before_bytes < got.total_bytes // 10 and got.after_bytes == got.total_bytes
    assert wb.residency(path).fraction == 1.0


def test_evict_on_tmpfs_says_it_cannot(tmp_path):
    from workbench.monitoring.warming import memory_backed

    shm = "/dev/shm"
    if not memory_backed(shm):
        pytest.skip("/dev/shm is not tmpfs here")
    path = os.path.join(shm, f"wb-evict-{os.getpid()}.bin")
    try:
        with open(path, "wb") as f:
            f.write(b"x" * (1 << 20))
        with pytest.warns(wb.errors.WorkbenchWarning, match="tmpfs.*cannot drop them"):
            got = wb.evict(path)
        assert "eviction cannot drop them" in got.note and got.after_bytes == got.total_bytes
    finally:
        os.remove(path)


def test_a_dataset_means_its_shard_files_and_pages_map_where(tmp_path, big):
    m = wb.convert(big, tmp_path / "d.store", shard_bytes=600_000, progress=False)
    r = wb.residency(tmp_path / "d.store", pages=True)
    assert len(r.files) == len(m.shards) > 1 and r.total_bytes == m.nbytes
    wb.evict(tmp_path / "d.store")
    ds = wb.open_dataset(tmp_path / "d.store")
    ds.get_batch(range(0, 100))  # touches the first shard only
    r = wb.residency(tmp_path / "d.store", pages=True)
    first, *rest = r.files
    assert r.files[first][0] > 0 and all(r.files[f][0] == 0 for f in rest)
    assert r.pages[first][0] and r.pages[first].dtype == bool and len(r.pages[first]) > 1
    assert r.to_dict()["files"][first]["resident_bytes"] == r.files[first][0]


def test_missing_paths_are_named(tmp_path):
    with pytest.raises(SourceNotFoundError, match="nope.npy"):
        wb.residency(tmp_path / "nope.npy")


def _resident_rows(path, a, lo, hi):
    """Whether every page holding rows [lo, hi) of the .npy memmap ``a`` is cached."""
    pages = wb.residency(path, pages=True).pages[str(path)]
    first = (a.offset + lo * a.strides[0]) // PAGE
    last = (a.offset + hi * a.strides[0] - 1) // PAGE
    return bool(pages[first : last + 1].all())


PAGE = os.sysconf("SC_PAGE_SIZE")


def test_will_need_reads_the_rows_ahead_and_then_finds_them_resident(big):
    from workbench.monitoring.pagecache import will_need

    wb.evict(big)
    a = np.load(big, mmap_mode="r")  # 256-byte rows
    assert not _resident_rows(big, a, 4000, 6000)
    asked = will_need(a, 4000, 6000)
    assert 2000 * 256 <= asked <= 2000 * 256 + 2 * PAGE
    for _ in range(100):  # the kernel reads them in the background
        if _resident_rows(big, a, 4000, 6000):
            break
        time.sleep(0.02)
    assert _resident_rows(big, a, 4000, 6000)
    assert will_need(a, 4000, 6000) == 0  # resident: nothing asked
    assert will_need(a, 10, 10) == 0 and will_need(a[:, ::2], 0, 100) == 0  # empty; strided


def test_a_store_asks_for_runs_of_rows_across_its_shards(tmp_path, big):
    wb.convert(big, tmp_path / "d.store", shard_bytes=600_000, progress=False)
    ds = wb.open_dataset(tmp_path / "d.store")
    for s in range(len(ds.shard_rows)):
        ds._shard(s)  # mapped (their headers read) before the evict: only the advice reads now
    wb.evict(tmp_path / "d.store")
    starts, lengths = np.array([100, 2000]), np.array([50, 1500])  # the second crosses shards
    assert len(ds.shard_rows) > 2 and ds.shard_rows[0] < 3500 < sum(ds.shard_rows[:2])
    assert wb.residency(tmp_path / "d.store").resident_bytes < 1550 * 256 // 10
    assert ds.will_need(starts, lengths) >= 1550 * 256
    for _ in range(100):
        r = wb.residency(tmp_path / "d.store")
        if r.resident_bytes >= 1550 * 256:
            break
        time.sleep(0.02)
    assert r.resident_bytes >= 1550 * 256
    last = [f for f in r.files if f"{len(ds.shard_rows) - 1:05d}" in f]
    assert last and all(r.files[f][0] == 0 for f in last)  # a shard no run touches: not read
    assert ds.will_need(starts, lengths) == 0  # all resident: the next 7 calls do not look
    wb.evict(tmp_path / "d.store")
    assert [ds.will_need(starts, lengths) for _ in range(7)] == [0] * 7
    assert ds.will_need(starts, lengths) >= 1550 * 256  # the 8th looks, finds them gone, asks
