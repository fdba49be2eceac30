"""The seed baselines return the right rows, so benchmarks compare against correct loaders."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.baselines.seeds import (  # noqa: E402
    DaskMemmapDataset,
    MemmapPerItemDataset,
    MemoryMappedDataset,
    ParquetDaskDataset,
    SeedHDF5Dataset,
    SimpleDataset,
    SparseIndexDataset,
    make_seed_collate,
)
from workbench.demo.data import make_demo  # noqa: E402
from workbench.format.sparse import CSR  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:The given NumPy array is not writable"),
    pytest.mark.filterwarnings("ignore:The inplace keyword"),  # inside dask 2026.8 + pandas 3.1
]
ROWS, K, DIM = 1000, 6, 50


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    files = make_demo(
        tmp_path_factory.mktemp("demo"),
        rows=ROWS,
        features=K,
        sparse_dim=DIM,
        nnz=3,
        chunk_rows=300,
        formats=("npy", "hdf5", "parquet"),
    )
    x, y = np.load(files.npy), np.load(files.labels_npy)
    return files, x, y


def cat(loader):
    xs, ys = zip(*loader)
    return torch.cat(
        [a.reshape(-1, *a.shape[-1:]) if a.dim() > 1 else a for a in xs]
    ).numpy(), torch.cat([b.reshape(-1) for b in ys]).numpy()


@pytest.mark.parametrize("lazy_open", [False, True])
def test_hdf5_dataset_per_item(demo, lazy_open):
    files, x, y = demo
    ds = SeedHDF5Dataset(files.hdf5, "features", "label", lazy_open=lazy_open)
    assert len(ds) == ROWS
    data, target = ds[417]
    assert data.dtype == torch.float32 and target.dtype == torch.int64
    np.testing.assert_array_equal(data.numpy(), x[417])
    assert int(target) == y[417]
    gx, gy = cat(DataLoader(ds, batch_size=64))
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


def test_hdf5_lazy_open_runs_in_forked_workers_and_pickles_without_handles(demo):
    files, x, y = demo
    ds = SeedHDF5Dataset(files.hdf5, "features", "label", lazy_open=True)
    ds[0]  # the parent opens its own handle; workers must not reuse it
    assert ds.__getstate__()["file"] is None and ds.file is not None
    gx, gy = cat(DataLoader(ds, batch_size=100, num_workers=2))
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


def test_memory_mapped_dataset_fixed_batches(demo, tmp_path):
    files, x, y = demo
    ds = MemoryMappedDataset(files.npy, files.labels_npy, 64)
    assert len(ds) == ROWS // 64  # the last 40 rows are never served: the seed's flaw
    data, target = ds[3]
    np.testing.assert_array_equal(data.numpy(), x[192:256])
    np.testing.assert_array_equal(target.numpy(), y[192:256])
    first = next(iter(DataLoader(ds, batch_size=1)))  # as in the seed: an extra leading 1
    assert first[0].shape == (1, 64, K)
    gx, gy = cat(DataLoader(ds, batch_size=None, num_workers=2))
    np.testing.assert_array_equal(gx, x[:960])
    np.testing.assert_array_equal(gy, y[:960])

    x.tofile(tmp_path / "x.dat")
    y.tofile(tmp_path / "y.dat")
    raw = MemoryMappedDataset(tmp_path / "x.dat", tmp_path / "y.dat", 64, row_shape=(K,))
    np.testing.assert_array_equal(raw[3][0].numpy(), x[192:256])
    flat = MemoryMappedDataset(tmp_path / "x.dat", tmp_path / "y.dat", 64)  # the seed verbatim
    np.testing.assert_array_equal(flat[1][0].numpy(), x.reshape(-1)[64:128])


def test_memmap_per_item_dataset(demo):
    files, x, y = demo
    ds = MemmapPerItemDataset(files.npy, files.labels_npy)
    assert len(ds) == ROWS
    np.testing.assert_array_equal(ds[999][0].numpy(), x[999])
    gx, gy = cat(DataLoader(ds, batch_size=128, num_workers=2))
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)


def test_dask_memmap_dataset_concatenates_shards(demo, tmp_path):
    _, x, y = demo
    for i, part in enumerate((slice(0, 300), slice(300, None))):
        np.save(tmp_path / f"x{i}.npy", x[part])
        np.save(tmp_path / f"y{i}.npy", y[part])
    ds = DaskMemmapDataset(
        [tmp_path / "x0.npy", tmp_path / "x1.npy"],
        [tmp_path / "y0.npy", tmp_path / "y1.npy"],
        chunk_rows=128,
        scheduler="synchronous",
    )
    assert len(ds) == ROWS
    for i in (0, 299, 300, 999):
        np.testing.assert_array_equal(ds[i][0].numpy(), x[i])
        assert int(ds[i][1]) == y[i]


@pytest.mark.parametrize("split", [None, True])
def test_parquet_dask_dataset_keeps_inclusive_loc(demo, split):
    pytest.importorskip("dask.dataframe")
    files, x, y = demo
    kwargs = {} if split is None else {"split_row_groups": True}  # True: 4 partitions
    ds = ParquetDaskDataset(
        files.parquet, 64, [f"f{j}" for j in range(K)], "label", scheduler="synchronous", **kwargs
    )
    assert len(ds) == ROWS // 64
    for idx in (0, 4, 9):  # batch 4 (rows 256..320) crosses the row group at 300
        data, target = ds[idx]
        assert data.shape == (65, K) and data.dtype == torch.float32  # 64 + 1 (inclusive .loc)
        np.testing.assert_array_equal(data.numpy(), x[idx * 64 : idx * 64 + 65])
        np.testing.assert_array_equal(target.numpy(), y[idx * 64 : idx * 64 + 65])


def test_simple_dataset_holds_one_tensor_per_row(demo):
    _, x, y = demo
    ds = SimpleDataset(x, y)
    assert len(ds) == ROWS and len(ds.features) == ROWS and isinstance(ds.features[5], torch.Tensor)
    np.testing.assert_array_equal(ds[5][0].numpy(), x[5])
    assert ds[5][1] == y[5]
    gx, gy = cat(DataLoader(ds, batch_size=128))
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)
    doubled = SimpleDataset(x, y, transform=lambda r: r * 2)
    np.testing.assert_array_equal(doubled[7][0].numpy(), x[7] * 2)


def test_seed_collate_matches_vectorised_expansion(demo):
    files, _, y = demo
    ptr, ind = np.load(files.tokens_indptr_npy), np.load(files.tokens_indices_npy)
    ds = SparseIndexDataset(files.tokens_indptr_npy, files.tokens_indices_npy, files.labels_npy)
    np.testing.assert_array_equal(ds[10][0].numpy(), ind[ptr[10] : ptr[11]])
    loader = DataLoader(ds, batch_size=100, collate_fn=make_seed_collate(DIM))
    dense, targets = zip(*loader)
    assert dense[0].shape == (100, DIM) and dense[0].dtype == torch.float32
    want = CSR(ptr, ind, None, DIM).to_dense()
    assert want.sum() > ROWS  # the rows really have tokens
    np.testing.assert_array_equal(torch.cat(dense).numpy(), want)
    np.testing.assert_array_equal(torch.cat(targets).numpy(), y)
