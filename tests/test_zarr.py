"""Zarr inputs (format 2 and 3): folders, zip stores and an HTTP URL through both entry points,
fork-safe reads in worker processes, and every figure inspect shows against zarr's own metadata.

The URL tests serve a folder over a real local HTTP server (zarr's FsspecStore over fsspec's
HTTP driver), as tests/test_remote.py does.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from test_remote import Server

import workbench as wb
from workbench.datasets.zarrreader import block_sizes
from workbench.errors import InvalidInputError, SourceNotFoundError

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")

ROWS = 1000
X = np.arange(ROWS * 4, dtype="float32").reshape(ROWS, 4)
Y = np.arange(ROWS, dtype="int64") % 7


def _group(path, fmt, **kw):
    g = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    g.create_array("x", shape=X.shape, chunks=(100, 4), dtype="float32", **kw)[:] = X
    g.create_array("y", shape=Y.shape, chunks=(250,), dtype="int64")[:] = Y
    named = {"dimension_names": ["time"]} if fmt == 3 else {}
    t = g.create_array("time", shape=(ROWS,), chunks=(ROWS,), dtype="int64", **named)
    t[:] = np.arange(ROWS) * 10
    if fmt == 2:
        t.attrs["_ARRAY_DIMENSIONS"] = ["time"]  # xarray's format 2 spelling: a coordinate
    return g


@pytest.fixture(params=[2, 3], ids=["v2", "v3"])
def group(request, tmp_path):
    return _group(tmp_path / "g.zarr", request.param)


def _all(ds, name):
    return ds.get_batch(np.arange(len(ds)))[name].numpy()


def test_a_group_converts_and_opens_to_the_same_rows_in_both_formats(group, tmp_path):
    path = str(tmp_path / "g.zarr")
    m = wb.convert(path, tmp_path / "o.store", progress=False)
    assert m.num_rows == ROWS and [c.name for c in m.columns] == ["x", "y"]  # time: a coordinate
    out = wb.open_dataset(tmp_path / "o.store")
    np.testing.assert_array_equal(_all(out, "x"), X)
    np.testing.assert_array_equal(_all(out, "y"), Y)
    ds = wb.open_dataset(path)
    assert ds.columns == ("x", "y") and len(ds) == ROWS
    rows = np.random.default_rng(0).permutation(ROWS)[:300]
    got = ds.get_batch(rows)
    np.testing.assert_array_equal(got["x"].numpy(), group["x"][:][rows])
    np.testing.assert_array_equal(got["y"].numpy(), group["y"][:][rows])
    with_time = wb.open_dataset(path, columns=["x", "time"])  # a coordinate when named
    np.testing.assert_array_equal(_all(with_time, "time"), np.arange(ROWS) * 10)


def test_blocks_are_whole_chunks_of_every_column_and_a_sequential_epoch_reads_each_once(group):
    ds = wb.open_dataset(group)  # the zarr Group object itself
    assert ds.shard_rows == [500, 500] and ds.block_rows == 500  # lcm of 100 and 250 rows
    ds.stats.reset()
    n = sum(len(b["x"]) for b in wb.loader(ds, batch_size=128, shuffle="sequential"))
    assert n == ROWS and ds.stats.reads == 2
    assert block_sizes(10, [3, 4], 1) == [10] and block_sizes(7, [3], 1 << 30) == [1] * 7


def test_a_block_order_epoch_decodes_each_chunk_once(tmp_path):
    a = zarr.create_array(str(tmp_path / "b.zarr"), shape=(4000, 4), chunks=(100, 4), dtype="f4")
    a[:] = np.arange(16000, dtype="float32").reshape(4000, 4)
    ds = wb.open_dataset(str(tmp_path / "b.zarr"))
    assert len(ds.shard_rows) == a.nchunks == 40 and ds.cached_blocks >= 10  # a window and more
    ds.stats.reset()
    rows = np.concatenate(
        [b["x"][:, 0].numpy() for b in wb.loader(ds, batch_size=64, shuffle="block")]
    )
    assert sorted(rows.tolist()) == list(range(0, 16000, 4)) and ds.stats.reads == 40


def test_keys_pick_groups_and_arrays_and_bad_picks_say_what_to_do(tmp_path):
    g = zarr.open_group(str(tmp_path / "k.zarr"), mode="w")
    g.create_array("train/x", shape=(8, 2), dtype="float32")[:] = 1
    g.create_array("train/y", shape=(8,), dtype="int64")[:] = 2
    g.create_array("short", shape=(3,), dtype="int64")
    g.create_array("long", shape=(9,), dtype="int64")
    g.create_array("names", shape=(9,), dtype=str)
    path = str(tmp_path / "k.zarr")
    assert wb.open_dataset(path, key="train").columns == ("x", "y")
    m = wb.convert(path, tmp_path / "t.store", key=["train/x"], progress=False)
    assert [c.name for c in m.columns] == ["x"] and m.num_rows == 8
    with pytest.raises(InvalidInputError, match="different row counts"):
        wb.open_dataset(path, columns=["short", "long"])
    with pytest.raises(InvalidInputError, match="'names' is not numeric"):
        wb.open_dataset(path, columns=["names"])
    with pytest.raises(SourceNotFoundError, match="no array or group 'nope'"):
        wb.open_dataset(path, key="nope")


def test_a_zip_store_reads_alike_and_worker_processes_open_it_themselves(tmp_path):
    for fmt in (2, 3):
        zipped = tmp_path / f"d{fmt}.zarr.zip"
        store = zarr.storage.ZipStore(str(zipped), mode="w")
        zarr.create_array(store, shape=X.shape, chunks=(64, 4), dtype="float32", zarr_format=fmt)[
            :
        ] = X
        store.close()
        m = wb.convert(zipped, tmp_path / f"z{fmt}.store", progress=False)
        np.testing.assert_array_equal(_all(wb.open_dataset(tmp_path / f"z{fmt}.store"), "x"), X)
        assert m.num_rows == ROWS
        ds = wb.open_dataset(zipped)
        got = [
            b["x"].numpy().copy()
            for b in wb.loader(
                ds, batch_size=100, shuffle="full", num_workers=2, worker_type="process"
            )
        ]
        np.testing.assert_array_equal(np.sort(np.concatenate(got)[:, 0]), X[:, 0])


@pytest.fixture
def http(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    for fmt in (2, 3):
        _group(root / f"g{fmt}.zarr", fmt)
    server = Server(root)
    yield server
    server.stop()


@pytest.mark.parametrize("fmt", [2, 3])
def test_an_http_url_converts_and_its_arrays_load_in_forked_workers(http, tmp_path, fmt):
    url = f"{http.url}/g{fmt}.zarr"
    m = wb.convert(url, tmp_path / "u.store", progress=False)  # the URL string itself
    np.testing.assert_array_equal(_all(wb.open_dataset(tmp_path / "u.store"), "x"), X)
    assert m.num_rows == ROWS
    node = zarr.open_group(url, mode="r")  # fsspec's HTTP store: its loop does not survive fork
    ds = wb.open_dataset(node)
    assert ds.get_batch([999])["y"].item() == Y[999]
    assert wb.open_dataset(url).get_batch([999])["y"].item() == Y[999]  # the URL string too
    facts = {a.name: a for a in wb.inspect(url).arrays}  # the URL string, listed over HTTP
    assert facts["x"].disk_bytes == node["x"].nbytes_stored() and facts["x"].unit_rows == 100
    got = [
        b["y"].numpy().copy()
        for b in wb.loader(
            ds, batch_size=128, shuffle="block", num_workers=2, worker_type="process"
        )
    ]
    np.testing.assert_array_equal(np.sort(np.concatenate(got)), np.sort(Y))
    assert sum(n for p, n in http.hits.items() if p.startswith(f"/g{fmt}.zarr/x/")) > 0


def _stored(a) -> int:
    """zarr's own 'No. bytes stored' line of info_complete()."""
    return int(re.search(r"No\. bytes stored\s*:\s*(\d+)", str(a.info_complete())).group(1))


@pytest.mark.parametrize("fmt", [2, 3])
def test_inspect_shows_zarrs_own_chunk_grid_codecs_and_bytes(tmp_path, fmt):
    g = _group(tmp_path / "g.zarr", fmt)
    ins = wb.inspect(str(tmp_path / "g.zarr"))
    assert ins.kind == "zarr" and ins.title.startswith(f"Zarr v{fmt} group")
    facts = {a.name: a for a in ins.arrays}
    assert set(facts) == {"x", "y", "time"}
    for name, f in facts.items():
        a = g[name]
        assert f.shape == a.shape and f.dtype == str(a.dtype)
        assert f.logical_bytes == a.nbytes
        assert f.disk_bytes == a.nbytes_stored() == _stored(a)
        assert f.storage["chunks"] == a.chunks and f.unit_rows == a.chunks[0]
        assert f.storage["zarr format"] == fmt
        assert f.storage["storage ratio"] == round(a.nbytes / a.nbytes_stored(), 2)
        codec = type(a.compressors[0]).__name__.removesuffix("Codec").lower()
        assert f.storage["compressors"].startswith(codec)  # zstd, zarr's default
        assert len(f.row_chunks) == a.cdata_shape[0] and sum(f.row_chunks) == a.shape[0]
    assert facts["time"].storage["dimension names"] == ("time",)


def test_inspect_shows_shards_and_the_zarr_storage_under_a_dask_array(tmp_path):
    a = zarr.create_array(
        str(tmp_path / "s.zarr"), shape=X.shape, chunks=(50, 4), shards=(200, 4), dtype="float32"
    )
    a[:] = X
    (f,) = wb.inspect(str(tmp_path / "s.zarr")).arrays
    assert f.storage["shards"] == a.shards == (200, 4) and f.storage["chunks"] == (50, 4)
    assert f.unit_rows == 50 and f.disk_bytes == a.nbytes_stored()
    assert "sharding" not in f.storage["compressors"] and f.storage["serializer"]
    arr = da.from_zarr(str(tmp_path / "s.zarr"))
    ins = wb.inspect(arr)
    assert ins.kind == "dask" and "over 1 Zarr array" in ins.title
    dask_facts, under = ins.arrays
    assert dask_facts.unit == "dask chunk" and under.unit == "zarr chunk"
    assert under.storage["shards"] == (200, 4) and under.disk_bytes == a.nbytes_stored()
    ds = wb.open_dataset(str(tmp_path / "s.zarr"))
    assert ds.block_rows == 50 and wb.inspect(ds).arrays[0].disk_bytes == a.nbytes_stored()


def test_stats_and_preview_match_numpy(group, tmp_path):
    s = wb.stats(str(tmp_path / "g.zarr"), progress=False)
    np.testing.assert_allclose(s.columns["x"]["mean"], X.mean(axis=0), rtol=1e-6)
    assert s.rows == ROWS
    p = wb.preview(group, n=3)
    np.testing.assert_array_equal(np.stack(p.columns["x"]), X[:3])
    assert p.indices == [0, 1, 2]


def test_doctor_and_advise_name_the_chunk_grid_costs(tmp_path):
    a = zarr.create_array(
        str(tmp_path / "c.zarr"), shape=(10_000, 4), chunks=(500, 2), dtype="float32"
    )
    a[:] = 1
    ds = wb.open_dataset(str(tmp_path / "c.zarr"))
    full = wb.doctor(wb.loader(ds, batch_size=1024, shuffle="full"), measure=False)
    assert {"zarr-random-rows-decode-chunks", "zarr-chunks-split-rows"} <= set(full.ids)
    assert "zarr-chunks-below-batch" in full.ids  # 500-row chunks, batches of 1,024
    seq = wb.doctor(wb.loader(ds, batch_size=256, shuffle="sequential"), measure=False)
    assert "zarr-random-rows-decode-chunks" not in seq.ids and "zarr-chunks-split-rows" in seq.ids
    advice = wb.advise(str(tmp_path / "c.zarr"), batch_size=1024, shuffle="full", measure=False)
    said = {r.value for r in advice.recommendations if r.topic == "zarr chunks"}
    assert said == {"zarr-random-rows-decode-chunks", "zarr-chunks-split-rows",
                    "zarr-chunks-below-batch"}  # fmt: skip
    assert advice.recommendations[0].value == "store"  # each random row decodes a chunk


def test_doctor_sees_a_zarr_store_a_dataset_opened_before_fork(tmp_path):
    import torch

    store = zarr.storage.ZipStore(str(tmp_path / "d.zip"), mode="w")
    zarr.create_array(store, shape=(64, 2), dtype="float32")[:] = 1
    store.close()

    class Naive(torch.utils.data.Dataset):
        def __init__(self, path):
            self.z = zarr.open_array(zarr.storage.ZipStore(path, mode="r"), mode="r")

        def __len__(self):
            return self.z.shape[0]

        def __getitem__(self, i):
            return self.z[i]

    dl = torch.utils.data.DataLoader(Naive(str(tmp_path / "d.zip")), num_workers=2)
    found = {f.id: f for f in wb.doctor(dl, measure=False)}
    assert found["zarr-store-before-fork"].severity == "error"
    assert "wb.open_dataset(" in found["zarr-store-before-fork"].fix


def test_what_is_not_zarr_is_refused_by_name(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(InvalidInputError, match="junk.zip: not a readable Zarr store"):
        wb.open_dataset(tmp_path / "junk.zip")
    with pytest.raises(SourceNotFoundError, match="only a Zarr store URL"):
        wb.convert("http://127.0.0.1:9/data.csv", tmp_path / "o.store", progress=False)


def test_import_workbench_imports_neither_zarr_nor_xarray():
    code = (
        "import sys, numpy as np, workbench as wb; wb.open_dataset(np.zeros((4, 2))); "
        "wb.inspect(np.zeros(3)); assert not {'zarr', 'xarray'} & set(sys.modules), "
        "sorted(m for m in sys.modules if m.startswith(('zarr', 'xarray')))"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_dask_workers_each_open_the_store_and_read_their_own_chunk_range(http, tmp_path):
    from workbench.cluster import close_client
    from workbench.inputs import open_source

    url = f"{http.url}/g3.zarr"
    src = open_source(url)
    assert src.splittable and list(src.block_offsets[:3]) == [0, 100, 200]  # x's chunks
    local = wb.convert(url, tmp_path / "local", shard_bytes=4000, progress=False)
    client = wb.local_client(2)
    try:
        hits = sum(http.hits.values())
        remote = wb.convert(url, tmp_path / "dask", client=client, shard_bytes=4000, progress=False)
        assert sum(http.hits.values()) > hits  # the workers read from the server themselves
    finally:
        close_client(client)
    assert len(remote.shards) == len(local.shards) >= 4
    # 166 rows of shard_bytes=4000, cut to whole 100-row chunks: no chunk is fetched twice
    assert {s.rows for s in remote.shards} == {100}
    assert [s.files for s in remote.shards] == [s.files for s in local.shards]  # same bytes
    np.testing.assert_array_equal(_all(wb.open_dataset(tmp_path / "dask"), "x"), X)
