"""The demo generator: four formats that agree, deterministic, learnable, bounded memory; the
tour's load section sets each order beside its own limit and the naive Datasets."""

from __future__ import annotations

import csv
import tracemalloc

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from workbench.demo.data import FORMATS, make_demo
from workbench.errors import InvalidInputError


def read_npy(files):
    ptr = np.load(files.tokens_indptr_npy, allow_pickle=False)
    ind = np.load(files.tokens_indices_npy, allow_pickle=False)
    return (
        np.load(files.npy, allow_pickle=False),
        np.load(files.labels_npy, allow_pickle=False),
        [ind[a:b].tolist() for a, b in zip(ptr[:-1], ptr[1:])],
    )


def read_hdf5(path):
    with h5py.File(path, "r") as f:
        ptr, ind = f["tokens/indptr"][:], f["tokens/indices"][:]
        assert f["tokens/indptr"].dtype == np.int64 and f["tokens/indices"].dtype == np.int32
        toks = [ind[a:b].tolist() for a, b in zip(ptr[:-1], ptr[1:])]
        return f["features"][:], f["label"][:], toks, int(f["tokens"].attrs["dim"])


def read_parquet(path, k):
    t = pq.read_table(path)
    assert t.schema.field("label").type == pa.int64()
    assert t.schema.field("tokens").type == pa.list_(pa.int32())
    assert all(t.schema.field(f"f{j}").type == pa.float32() for j in range(k))
    x = np.stack([t.column(f"f{j}").to_numpy() for j in range(k)], axis=1)
    return x, t.column("label").to_numpy(), t.column("tokens").to_pylist()


def read_csv(path, k):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [f"f{j}" for j in range(k)] + ["label", "tokens"]
    x = np.array([[np.float32(v) for v in r[:k]] for r in rows[1:]], dtype=np.float32)
    y = np.array([int(r[k]) for r in rows[1:]], dtype=np.int64)
    toks = [[int(v) for v in r[k + 1].split(" ")] if r[k + 1] else [] for r in rows[1:]]
    return x, y, toks


def test_all_formats_agree_row_for_row(tmp_path):
    # chunk_rows not a multiple of the generator block; nnz=1 gives many empty token rows
    files = make_demo(
        tmp_path, rows=3001, features=5, classes=3, sparse_dim=40, nnz=1, chunk_rows=700, seed=3
    )
    x, y, toks = read_npy(files)
    assert x.shape == (3001, 5) and x.dtype == np.float32 and y.dtype == np.int64
    assert any(t == [] for t in toks) and files.nnz_total == sum(map(len, toks))
    hx, hy, htoks, dim = read_hdf5(files.hdf5)
    px, py, ptoks = read_parquet(files.parquet, 5)
    cx, cy, ctoks = read_csv(files.csv, 5)
    assert dim == 40
    for ox, oy, otoks in ((hx, hy, htoks), (px, py, ptoks), (cx, cy, ctoks)):
        np.testing.assert_array_equal(ox, x)
        np.testing.assert_array_equal(oy, y)
        assert otoks == toks
    assert pq.ParquetFile(files.parquet).metadata.num_row_groups == 5  # one per chunk
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in files.paths)


def test_values_do_not_depend_on_chunk_rows(tmp_path):
    a = make_demo(tmp_path / "a", rows=20_000, chunk_rows=65_536, formats=("npy",))
    b = make_demo(tmp_path / "b", rows=20_000, chunk_rows=999, formats=("npy",))
    for p, q in zip(a.paths, b.paths):
        assert p.read_bytes() == q.read_bytes()


def test_same_args_same_bytes_and_seed_changes_data(tmp_path):
    kw = dict(rows=5000, features=4, sparse_dim=100, chunk_rows=1500)
    a = make_demo(tmp_path / "a", seed=7, **kw)
    b = make_demo(tmp_path / "b", seed=7, **kw)
    c = make_demo(tmp_path / "c", seed=8, formats=("npy",), **kw)
    assert len(a.paths) == 7
    for p, q in zip(a.paths, b.paths):
        assert p.read_bytes() == q.read_bytes(), p.name
    assert not np.array_equal(np.load(a.npy), np.load(c.npy))


def test_label_is_learnable_from_features_and_tokens(tmp_path):
    files = make_demo(tmp_path, rows=20_000, formats=("npy",))
    x, y, toks = read_npy(files)
    assert np.bincount(y).min() > 4000  # 4 balanced classes
    z = (x - x.mean(0)) / x.std(0)  # the columns have wildly different scales
    assert x.std(0).max() / x.std(0).min() > 100
    train, test = slice(0, 10_000), slice(10_000, None)
    centroids = np.stack([z[train][y[train] == c].mean(0) for c in range(4)])
    pred = np.argmin(((z[test, None, :] - centroids) ** 2).sum(-1), axis=1)
    assert (pred == y[test]).mean() > 0.6  # chance is 0.25
    # tokens lean towards a per-class quarter of [0, 1000)
    quarter = np.array(
        [
            np.bincount(np.array(t, dtype=np.int64) // 250, minlength=4).argmax() if t else -1
            for t in toks
        ]
    )
    assert (quarter == y).mean() > 0.6


def test_tokens_sorted_unique_in_range(tmp_path):
    files = make_demo(tmp_path, rows=20_000, sparse_dim=1000, nnz=8, formats=("npy",))
    ptr = np.load(files.tokens_indptr_npy)
    ind = np.load(files.tokens_indices_npy)
    assert ptr[0] == 0 and ptr[-1] == len(ind) and np.all(np.diff(ptr) >= 0)
    assert ind.dtype == np.int32 and ind.min() >= 0 and ind.max() < 1000
    inside = np.ones(len(ind) - 1, dtype=bool)
    inside[ptr[1:-1] - 1] = False  # pairs that straddle a row boundary
    assert np.all(np.diff(ind)[inside] > 0)
    counts = np.diff(ptr)
    assert 6 < counts.mean() < 9 and counts.std() > 1.5  # varies around nnz


def test_memory_stays_far_below_data_size(tmp_path):
    make_demo(tmp_path / "warm", rows=10, formats=FORMATS)  # imports outside the measurement
    pool = pa.default_memory_pool()
    arrow_peak_before = pool.max_memory()
    peaks, sizes = [], []
    tracemalloc.start()
    try:
        for rows in (20_000, 200_000):
            tracemalloc.reset_peak()
            files = make_demo(tmp_path / str(rows), rows=rows, chunk_rows=10_000)
            peaks.append(tracemalloc.get_traced_memory()[1])
            sizes.append(files.data_nbytes)
    finally:
        tracemalloc.stop()
    assert sizes[1] > 20e6 and files.nbytes > 80e6
    assert peaks[1] < sizes[1] / 4, (peaks, sizes)
    assert peaks[1] < 1.2 * peaks[0], peaks  # bounded by the chunk, not by rows
    assert pool.max_memory() <= max(arrow_peak_before, sizes[1] // 4)


def test_progress_reports_every_chunk(tmp_path):
    seen = []
    make_demo(
        tmp_path,
        rows=2500,
        chunk_rows=1000,
        formats=("parquet",),
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(1000, 2500), (2000, 2500), (2500, 2500)]


@pytest.mark.parametrize(
    "kw",
    [
        {"rows": 0},
        {"classes": 1},
        {"chunk_rows": 2.5},
        {"sparse_dim": 2**31},
        {"formats": ("npy", "xls")},
        {"formats": ()},
    ],
)
def test_bad_arguments_raise_before_writing(tmp_path, kw):
    with pytest.raises(InvalidInputError):
        make_demo(tmp_path / "out", **kw)
    assert not (tmp_path / "out").exists()


def test_failure_leaves_no_partial_files(tmp_path):
    def boom(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        make_demo(tmp_path, rows=3000, chunk_rows=1000, progress=boom)
    assert list(tmp_path.iterdir()) == []


def test_the_tour_load_section_compares_like_with_like(tmp_path):
    from workbench.datasets import open_dataset
    from workbench.demo.tour import run_tour
    from workbench.format.catalog import read_manifest

    lines: list[str] = []
    report = run_tour(
        tmp_path, rows=2000, progress=False, echo=lines.append, load_seconds=0.05, load_mib=4
    )
    text = "\n".join(lines)
    load = text[text.index("== 3. load") :]
    c = report.loading
    assert c.rows == 4096 and c.row_bytes == 256 * 4 + 8  # 4 MiB of 1 KiB rows + int64 label
    for order in ("sequential", "block", "full"):
        assert f"workbench.loader(shuffle={order!r})" in load
    for name in (
        "zero-copy read",
        "memcpy of the same batches",
        "random gather, np.take",
        "MemoryMappedDataset",
        "per-item memmap Dataset",
        "per-item HDF5Dataset",
    ):
        assert name in load, name
    assert c.text() in load and all(len(line) <= 100 for line in c.text().splitlines())
    for prefix in ("sequential: ", "block: ", "full shuffle: "):
        assert any(line.startswith(prefix) and "x " in line for line in load.splitlines()), prefix
    _, m = read_manifest(tmp_path / "load.store")  # one shard: the limits read the loader's bytes
    assert len(m.shards) == 1 and [col.name for col in m.columns] == ["features", "label"]
    with h5py.File(
        tmp_path / "load" / "demo.h5"
    ) as f:  # the seed's SeedHDF5Dataset reads the same rows
        x = f["features"][:100]
    ds = open_dataset(tmp_path / "load.store")
    np.testing.assert_array_equal(ds.get_batch(range(100))["features"].numpy(), x)
