"""The contract every layout room passes: the same furniture, write -> read back -> check ->
corrupt.

Parametrized over ``manifest.LAYOUTS``, so a new layout gets these tests for free.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest
from oracle import read_dataset

import workbench as wb
from workbench.errors import CorruptDatasetError, InvalidInputError
from workbench.format.manifest import LAYOUTS
from workbench.format.sparse import CSR
from workbench.layouts import check_shard, room, writer_class

ROWS = 1500


def _data() -> dict:
    rng = np.random.default_rng(7)
    lists = [
        sorted(rng.choice(50, rng.integers(0, 6), replace=False).tolist()) for _ in range(ROWS)
    ]
    return {
        "x": rng.standard_normal((ROWS, 3)).astype("float32"),
        "img": rng.integers(0, 255, (ROWS, 2, 2), dtype=np.uint8),
        "y": np.arange(ROWS, dtype=np.int64),
        "tok": CSR.from_lists(lists, dim=50, values=[[1.5] * len(r) for r in lists]),
    }


@pytest.fixture(params=LAYOUTS)
def written(request, tmp_path):
    data = _data()
    dest = tmp_path / f"d.{request.param}"
    m = wb.convert(
        data,
        dest,
        format=request.param,
        shard_bytes=20_000,
        progress=False,
        row_group_bytes=4_000,
        hdf5_chunk_bytes=2_000,
    )
    return request.param, dest, m, data


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_room_has_the_same_furniture(layout):
    r = room(layout)
    for part in ("writer", "reader", "check"):
        importlib.import_module(f"workbench.layouts.{layout}.{part}")
    assert writer_class(layout) is r.Writer
    assert callable(r.open_reader) and callable(r.check_shard) and callable(r.writer_options)
    opts = r.writer_options(shard_rows=1000, row_bytes=100)
    assert isinstance(opts, dict) and {"shard_rows", "chunk_rows", "durable"}.isdisjoint(opts)
    for method in ("write", "close"):
        assert callable(getattr(r.Writer, method))


def test_an_unknown_layout_is_refused_by_name():
    with pytest.raises(InvalidInputError, match="'zarr'.*store, hdf5, parquet"):
        room("zarr")
    with pytest.raises(InvalidInputError, match="format='zarr'"):
        wb.convert(np.zeros((4, 2)), "x", format="zarr", progress=False)


def test_write_then_read_back_equals_the_source(written):
    layout, dest, m, data = written
    assert m.layout == layout and m.num_rows == ROWS and len(m.shards) > 1
    stored = read_dataset(dest)  # an independent reader: plain numpy / h5py / pyarrow
    for k, v in data.items():
        got = stored[k]
        if isinstance(v, CSR):
            np.testing.assert_array_equal(got.to_dense(), v.to_dense())
        else:
            np.testing.assert_array_equal(got, v)
    ds = wb.open_dataset(dest)
    idx = np.random.default_rng(1).permutation(ROWS)[:300]
    batch = ds.get_batch(idx.tolist())
    np.testing.assert_array_equal(batch["x"].numpy(), data["x"][idx])
    np.testing.assert_array_equal(batch["img"].numpy(), data["img"][idx])
    np.testing.assert_array_equal(batch["tok"].numpy(), data["tok"].take(idx).to_dense())
    assert ds.version_dir is not None and ds.manifest == m


def test_the_check_passes_then_names_a_corrupted_file(written):
    layout, dest, m, _ = written
    version, _ = wb.read_manifest(dest)
    for shard in m.shards:
        assert check_shard(layout, version, shard, m.columns) == []
    assert wb.verify(dest).ok
    victim = max(m.shards[1].files, key=lambda f: f.bytes)
    path = version / victim.path
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one flipped byte in the middle of the data
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptDatasetError, match=Path(victim.path).name):
        wb.verify(dest)


def test_the_layout_check_alone_catches_a_bad_shard(written):
    """Beyond digests: a shard whose row count disagrees with the manifest fails its room's
    check."""
    layout, dest, m, _ = written
    version, _ = wb.read_manifest(dest)
    shard = m.shards[0]
    lying = type(shard)(rows=shard.rows + 1, files=shard.files)
    assert check_shard(layout, version, lying, m.columns), f"{layout}: check missed a row count"
