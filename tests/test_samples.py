"""PyTorch's own DataLoader over every dataset ``open_dataset`` returns: default collate, shuffle,
workers under fork and spawn, pin_memory, DistributedSampler, drop_last, a collate_fn written for
lists of samples, Subset / random_split / ConcatDataset, and a training loop using only torch."""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import ConcatDataset, DataLoader, DistributedSampler, Subset, random_split

import workbench as wb
from workbench.datasets.samples import Row, Rows
from workbench.format.sparse import CSR

N = 500
X = np.random.default_rng(5).standard_normal((N, 3)).astype("float32")
Y = np.arange(N, dtype=np.int64)
S = CSR.from_lists([[i % 11, 20 + i % 3] for i in range(N)], dim=30)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("samples")
    out = {}
    for fmt in ("store", "hdf5", "parquet"):
        wb.convert(
            {"x": X, "y": Y, "s": S},
            tmp / fmt,
            format=fmt,
            shard_bytes=6000,
            row_group_bytes=2000,
            hdf5_chunk_bytes=1000,
            progress=False,
        )
        out[fmt] = lambda fmt=fmt, **kw: wb.open_dataset(tmp / fmt, **kw)
    np.save(tmp / "x.npy", X)
    with h5py.File(tmp / "f.h5", "w") as f:
        f["x"], f["y"] = X, Y
    pq.write_table(
        pa.table({"x": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), 3), "y": Y}),
        tmp / "f.parquet",
    )
    out["foreign-h5"] = lambda **kw: wb.open_dataset(tmp / "f.h5", **kw)
    out["foreign-parquet"] = lambda **kw: wb.open_dataset(tmp / "f.parquet", **kw)
    out["dict"] = lambda **kw: wb.open_dataset({"x": X, "y": Y}, **kw)
    out["npy"] = lambda **kw: wb.open_dataset(tmp / "x.npy", **kw)
    return out


def _rows(batch) -> np.ndarray:
    """Row ids of a batch (via y, or via x for the npy source that has only x)."""
    if "y" in batch:
        return batch["y"].numpy()
    return np.array([int(np.flatnonzero((X == r).all(1))[0]) for r in batch["x"].numpy()])


@pytest.mark.parametrize(
    "kind", ["store", "hdf5", "parquet", "foreign-h5", "foreign-parquet", "dict", "npy"]
)
def test_a_plain_dataloader_shuffles_and_collates(datasets, kind):
    ds = datasets[kind]()
    dl = DataLoader(ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0))
    batches = list(dl)
    assert len(batches) == len(dl) == 8 and isinstance(batches[0], dict)
    seen = np.concatenate([_rows(b) for b in batches])
    assert sorted(seen.tolist()) == list(range(N)) and not np.array_equal(seen, np.arange(N))
    for b in batches[:2]:
        np.testing.assert_array_equal(b["x"].numpy(), X[_rows(b)])
    if "s" in ds.columns:
        np.testing.assert_array_equal(batches[0]["s"].numpy(), S.take(_rows(batches[0])).to_dense())


def test_samples_follow_the_contract(datasets):
    ds = datasets["store"]()
    rows = ds.__getitems__([4, 2, 9])
    assert isinstance(rows, Rows) and len(rows) == 3 and isinstance(rows[0], Row)
    assert isinstance(rows[0], dict) and int(rows[1]["y"]) == 2 and len(list(rows)) == 3
    assert isinstance(ds[7], dict) and int(ds[7]["y"]) == 7
    assert [int(r["y"]) for r in rows[1:]] == [2, 9]
    with pytest.raises(IndexError):
        rows[3]


@pytest.mark.parametrize("ctx", ["fork", "spawn"])
def test_workers_under_fork_and_spawn(datasets, ctx):
    ds = datasets["hdf5"]() if ctx == "fork" else datasets["store"]()
    dl = DataLoader(
        ds,
        batch_size=100,
        shuffle=True,
        num_workers=2,
        multiprocessing_context=ctx,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=ctx == "spawn",
    )
    for _ in range(2 if ctx == "spawn" else 1):
        seen = np.concatenate([b["y"].numpy() for b in dl])
        assert sorted(seen.tolist()) == list(range(N))


def test_distributed_sampler_drop_last_and_pin_memory(datasets):
    ds = datasets["parquet"]()
    parts = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        dl = DataLoader(ds, batch_size=64, sampler=sampler, drop_last=True, pin_memory=False)
        batches = list(dl)
        assert all(len(b["y"]) == 64 for b in batches) and len(batches) == 250 // 64
        parts.append(np.concatenate([b["y"].numpy() for b in batches]))
    assert not set(parts[0]) & set(parts[1])  # the ranks read disjoint rows


def test_a_collate_fn_for_lists_of_samples(datasets):
    ds = datasets["store"]()

    def stack_x(samples):  # written for a list of dict samples, as torch documents
        assert len(samples) == 32 and isinstance(samples[0], dict)
        return torch.stack([s["x"] for s in samples]), [int(s["y"]) for s in samples]

    x, ids = next(iter(DataLoader(ds, batch_size=32, collate_fn=stack_x)))
    assert x.shape == (32, 3) and ids == list(range(32))
    np.testing.assert_array_equal(x.numpy(), X[:32])


def test_subset_random_split_and_concat(datasets):
    ds = datasets["store"](columns=["x", "y"])
    train, val = random_split(ds, [0.8, 0.2], generator=torch.Generator().manual_seed(1))
    ds.stats.reset()
    got = [b["y"].numpy() for b in DataLoader(train, batch_size=100, shuffle=True)]
    assert ds.stats.batches == 4  # Subset.__getitems__ passes whole batches through: 4 reads
    seen = np.concatenate(got + [b["y"].numpy() for b in DataLoader(val, batch_size=100)])
    assert sorted(seen.tolist()) == list(range(N))
    both = ConcatDataset([ds, Subset(ds, range(10))])
    ys = np.concatenate([b["y"].numpy() for b in DataLoader(both, batch_size=128)])
    np.testing.assert_array_equal(ys, np.concatenate([Y, Y[:10]]))


def test_a_training_loop_with_only_torch_api(tmp_path):
    raw = wb.make_demo(tmp_path / "raw", rows=3000, formats=("parquet",))
    wb.convert(
        raw.parquet,
        tmp_path / "demo.store",
        target="label",
        sparse={"tokens": raw.sparse_dim},
        progress=False,
    )
    ds = wb.open_dataset(tmp_path / "demo.store", columns=["features", "label"])
    train, val = random_split(ds, [0.8, 0.2], generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.BatchNorm1d(raw.features), torch.nn.Linear(raw.features, 4)
    )
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(3):
        for batch in DataLoader(train, batch_size=128, shuffle=True, drop_last=True):
            loss = torch.nn.functional.cross_entropy(model(batch["features"]), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        right = sum(
            int((model(b["features"]).argmax(1) == b["label"]).sum())
            for b in DataLoader(val, batch_size=256)
        )
    assert right / len(val) > 0.6  # 4 classes: chance is 0.25
