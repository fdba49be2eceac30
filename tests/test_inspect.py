"""``wb.inspect`` on real files of every kind: its facts equal the libraries' own (h5py chunks
and filters, pyarrow row groups, Dask chunks, the .npy header), the page cache is read with
mincore (evict -> near 0, a full read -> near 1), huge files are not read, bad input is named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import workbench as wb
from workbench.errors import InvalidInputError, SourceNotFoundError
from workbench.monitoring.warming import memory_backed


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    rng = np.random.default_rng(0)
    x = rng.random((20_000, 16), dtype="float32")
    np.save(root / "x.npy", x)
    with h5py.File(root / "x.h5", "w") as f:
        f.create_dataset("train/x", data=x, chunks=(1000, 8), compression="gzip", fletcher32=True)
        f.create_dataset("train/y", data=np.arange(20_000))
        f.create_dataset("<b>odd", data=np.zeros((10, 2)))
    pq.write_table(
        pa.table({"a": x[:, 0], "b": np.arange(20_000)}),
        root / "t.parquet",
        row_group_size=3000,
        compression="zstd",
    )
    for layout in ("store", "hdf5", "parquet"):
        wb.convert(
            {"x": x, "y": np.arange(20_000)},
            root / f"d.{layout}",
            format=layout,
            shard_bytes=400_000,
            progress=False,
        )
    return root


def test_a_dataset_of_each_layout(files):
    for layout in ("store", "hdf5", "parquet"):
        ins = wb.inspect(files / f"d.{layout}", batch_size=512)
        version, m = wb.read_manifest(files / f"d.{layout}")
        assert ins.kind == "dataset" and layout in ins.title
        assert [a.name for a in ins.arrays] == [c.name for c in m.columns]
        x = ins.arrays[0]
        assert x.shape == (20_000, 16) and x.dtype == "float32"
        assert x.row_chunks == tuple(s.rows for s in m.shards) and len(ins.shards) == len(m.shards)
        assert (
            ins.batch_size == 512
            and ins.block_rows == wb.open_dataset(files / f"d.{layout}").block_rows
        )
        if layout == "hdf5":
            with h5py.File(version / m.shards[0].files[0].path) as f:
                assert x.unit_rows == min(f["x"].chunks[0], f["x"].shape[0])
                assert x.storage["chunks"] == f["x"].chunks and x.storage["fletcher32"]
        if layout == "parquet":
            meta = pq.ParquetFile(version / m.shards[0].files[0].path).metadata
            assert x.unit == "row group" and x.unit_rows == meta.row_group(0).num_rows
        if layout == "store":
            assert x.unit == "page" and x.disk_bytes == sum(
                f.bytes for s in m.shards for f in s.files if f.column == "x"
            )


def test_npy_memmap_and_arrays(files):
    ins = wb.inspect(files / "x.npy")
    [a] = ins.arrays
    with open(files / "x.npy", "rb") as f:
        np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f)
        offset = f.tell()
    assert (
        a.storage["offset"] == offset
        and a.unit == "page"
        and a.disk_bytes == os.path.getsize(files / "x.npy")
    )
    mm = np.load(files / "x.npy", mmap_mode="r")
    assert wb.inspect(mm).kind == "memmap" and wb.inspect(mm).arrays[0].shape == (20_000, 16)
    plain = wb.inspect(np.asfortranarray(np.zeros((5, 3))))
    assert (
        plain.arrays[0].storage == {"in memory": True, "C order": False} and plain.residency == []
    )


def test_hdf5_paths_keys_and_h5py_objects(files):
    path = str(files / "x.h5")
    whole = wb.inspect(path)
    assert {a.name for a in whole.arrays} == {"train/x", "train/y", "<b>odd"}
    [x] = wb.inspect(f"{path}:train/x").arrays
    with h5py.File(path) as f:
        ds = f["train/x"]
        assert x.storage["chunks"] == ds.chunks and x.storage["compression"] == "gzip"
        assert x.col_chunks == (8, 8) and x.disk_bytes == ds.id.get_storage_size()
        assert wb.inspect(ds).arrays[0].storage == x.storage
        assert {a.name for a in wb.inspect(f["train"]).arrays} == {"train/x", "train/y"}
    with pytest.raises(InvalidInputError, match=r"x\.h5: no 'nope'.*train/x"):
        wb.inspect(f"{path}:nope")


def test_parquet_row_groups_equal_pyarrows(files):
    ins = wb.inspect(files / "t.parquet", batch_size=100)
    meta = pq.ParquetFile(files / "t.parquet").metadata
    a = ins.arrays[0]
    assert a.row_chunks == tuple(meta.row_group(g).num_rows for g in range(meta.num_row_groups))
    assert a.storage["codec"] == "ZSTD"
    assert a.disk_bytes == sum(
        meta.row_group(g).column(0).total_compressed_size for g in range(meta.num_row_groups)
    )


def test_dask_arrays_datasets_and_loaders(files):
    import dask.array as da

    arr = da.zeros((10_000, 30), chunks=(1000, 10))
    [a] = wb.inspect(arr).arrays
    assert (
        a.row_chunks == arr.chunks[0] and a.col_chunks == arr.chunks[1] and a.unit == "dask chunk"
    )
    ds = wb.open_dataset(files / "d.store")
    assert wb.inspect(ds).to_dict()["arrays"] == wb.inspect(files / "d.store").to_dict()["arrays"]
    dl = wb.loader(ds, batch_size=300)
    assert wb.inspect(dl).batch_size == 300 and wb.inspect(dl).block_rows == dl.block_rows
    mem = wb.inspect(wb.open_dataset({"a": np.zeros((10, 2)), "b": np.ones(10)}))
    assert [x.name for x in mem.arrays] == ["a", "b"]


def test_page_cache_residency_follows_evict_and_a_full_read(files):
    path = files / "x.npy"
    wb.evict(path)
    cold = wb.inspect(path)
    if memory_backed(str(path)):  # eviction cannot work there: the result must say so
        assert any("tmpfs" in n for n in cold.notes)
        return
    assert cold.resident_fraction < 0.05
    path.read_bytes()
    warm = wb.inspect(path)
    assert warm.resident_fraction > 0.95 and min(warm.residency[0]["strip"]) > 0.9
    assert len(warm.residency[0]["strip"]) == 64


def test_a_huge_file_is_inspected_without_reading_it(tmp_path):
    path = tmp_path / "huge.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype="float32", shape=(64 << 20, 16))  # 4 GiB
    del big
    code = (
        "import resource, time, torch, h5py, pyarrow, workbench as wb; import workbench.datasets; "
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; before = peak(); "
        f"t = time.perf_counter(); ins = wb.inspect({str(path)!r}, batch_size=1024); "
        "print(time.perf_counter() - t, peak() - before, ins.arrays[0].shape[0])"
    )
    seconds, grew_kib, rows = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(rows) == 64 << 20
    assert float(seconds) < 10 and int(grew_kib) < 100_000  # the file is 4 GiB
    assert wb.residency(path).fraction < 0.01  # nothing was read into the page cache


def test_bad_input_is_named(files, tmp_path):
    with pytest.raises(SourceNotFoundError, match="nowhere.npy: no such file"):
        wb.inspect(tmp_path / "nowhere.npy")
    with pytest.raises(
        InvalidInputError, match="cannot read a builtins.set; pass a workbench dataset"
    ):
        wb.inspect({1, 2})
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(InvalidInputError, match="bad.h5: not a readable HDF5 file"):
        wb.inspect(bad)
    csv = tmp_path / "a.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(InvalidInputError, match="convert CSV first"):
        wb.inspect(csv)


def test_text_html_and_json_show_the_same_facts(files):
    ins = wb.inspect(str(files / "x.h5"), batch_size=256)
    text, page = str(ins), ins._repr_html_()
    assert text.splitlines()[0].endswith("HDF5 file, 3 datasets")
    for a in ins.arrays:
        amp = f"{ins.costs[a.name]['full'].amplification:,.1f}"
        assert amp in text and amp + "×" in page
    assert "&lt;b&gt;odd" in page and "<b>odd" not in page  # names are escaped
    assert page.count("class='workbench-chunks'") == 3 and "class='workbench-residency'" in page
    assert json.loads(json.dumps(ins.to_dict()))["arrays"][0]["dtype"]


def test_the_cli_prints_text_and_json(files):
    exe = str(Path(sys.executable).parent / "workbench")
    out = subprocess.run(
        [exe, "inspect", str(files / "d.parquet"), "--batch-size", "64"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "workbench dataset (parquet layout), 20,000 rows, 2 columns" in out and "row group" in out
    )
    doc = json.loads(
        subprocess.run(
            [exe, "inspect", str(files / "x.npy"), "--json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert doc["kind"] == "npy" and doc["arrays"][0]["shape"] == [20_000, 16]
    both = json.loads(
        subprocess.run(
            [exe, "inspect", str(files / "x.npy"), "--json", "--stats"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert both["stats"]["rows"] == 20_000 and len(both["stats"]["columns"]["x"]["mean"]) == 16
    err = subprocess.run([exe, "inspect", str(files / "missing")], capture_output=True, text=True)
    assert err.returncode == 1 and "no such file or folder" in err.stderr
