"""Page-cache residency on a real disk: bytes rise after a read, fall after an evict, rise on warm."""

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
    np.save(path, np.random.default_rng(0).standard_normal((1 << 20) // 2, dtype=np.float32).reshape(-1, 64))
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
    assert wb.evict(big) == hot.resident_bytes
    assert wb.residency(big).fraction < 0.1
    assert wb.warm(big) == size
    for _ in range(50):  # WILLNEED reads ahead asynchronously
        if wb.residency(big).fraction > 0.9:
            break
        time.sleep(0.02)
    assert wb.residency(big).fraction > 0.9


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
