"""``wb.loader`` over any map-style Dataset (TensorDataset, Subset, ConcatDataset, a class with only
``__getitem__``), DataLoader's option names, and per-batch transforms seeded per batch."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, IterableDataset, Subset, TensorDataset, random_split

import workbench as wb
from workbench.errors import InvalidInputError, WorkerError

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from benchmarks.baselines.seeds import MemmapPerItemDataset  # noqa: E402

N = 300


def _ids(batches) -> list[int]:
    return sorted(int(v) for b in batches for v in (b[1] if isinstance(b, list) else b["y"]))


def _tensors() -> TensorDataset:
    return TensorDataset(torch.arange(N * 2, dtype=torch.float32).reshape(N, 2), torch.arange(N))


def _ours():
    return wb.open_dataset(
        {"x": np.arange(N * 2, dtype="float32").reshape(N, 2), "y": np.arange(N)}
    )


@pytest.mark.parametrize("worker", [("thread", 0), ("thread", 2), ("process", 2)])
def test_a_tensor_dataset_loads_with_default_collate(worker):
    dl = wb.loader(
        _tensors(),
        batch_size=64,
        shuffle="full",
        seed=2,
        worker_type=worker[0],
        num_workers=worker[1],
    )
    batches = list(dl)
    assert isinstance(batches[0], list) and batches[0][0].shape == (64, 2)  # default_collate's list
    assert _ids(batches) == list(range(N)) and len(dl) == 5


def test_block_order_without_storage_blocks_says_what_it_used():
    dl = wb.loader(_tensors(), batch_size=32)
    assert dl.block_rows == 4096 and "fallback" in repr(dl) and _ids(dl) == list(range(N))
    assert wb.loader(_ours(), batch_size=32).block_rows_from == "the dataset's storage blocks"
    assert wb.loader(_tensors(), batch_size=32, block_rows=50).block_rows == 50


def test_subsets_keep_batched_reads_and_concat_works():
    ds = _ours()
    train, val = random_split(ds, [0.7, 0.3], generator=torch.Generator().manual_seed(0))
    ds.stats.reset()
    got = list(wb.loader(train, batch_size=70, shuffle="full"))
    assert ds.stats.batches == len(got) == 3  # one batched read per batch, through Subset
    assert sorted(_ids(got) + _ids(wb.loader(val, batch_size=100))) == list(range(N))
    both = ConcatDataset([ds, Subset(_tensors(), range(5))])
    with pytest.raises(Exception):  # dicts and tuples cannot be collated together: torch says so
        list(wb.loader(both, batch_size=N + 5, shuffle=False))
    same = ConcatDataset([ds, ds])
    assert _ids(wb.loader(same, batch_size=128)) == sorted(list(range(N)) * 2)


def test_a_seed_class_with_only_getitem(tmp_path):
    np.save(tmp_path / "f.npy", np.arange(N * 4, dtype="float32").reshape(N, 4))
    np.save(tmp_path / "l.npy", np.arange(N))
    seed_ds = MemmapPerItemDataset(tmp_path / "f.npy", tmp_path / "l.npy")
    batches = list(wb.loader(seed_ds, batch_size=50, shuffle="full", num_workers=2))
    x, y = batches[0]
    assert x.shape == (50, 4) and _ids(batches) == list(range(N))
    np.testing.assert_array_equal(x[:, 0].numpy(), y.numpy() * 4)


def test_iterable_datasets_and_samplers_get_errors_naming_the_way_out():
    class Stream(IterableDataset):
        def __iter__(self):
            yield from range(3)

    with pytest.raises(InvalidInputError, match="IterableDataset.*DataLoader.*wb.convert"):
        wb.loader(Stream())
    with pytest.raises(InvalidInputError, match="not a map-style dataset"):
        wb.loader(object())
    with pytest.raises(InvalidInputError, match="batch_sampler=.*DataLoader"):
        wb.loader(_ours(), sampler=range(N))


def test_collate_fn_gets_a_sequence_of_samples_from_our_datasets():
    seen = []

    def collate(samples):
        seen.append((len(samples), type(samples[0]).__name__))
        return torch.stack([s["y"] for s in samples])

    out = list(wb.loader(_ours(), batch_size=100, shuffle=False, collate_fn=collate))
    assert seen == [(100, "Row")] * 3 and torch.equal(torch.cat(out), torch.arange(N))


def test_dataloader_names_mean_the_same():
    g = torch.Generator().manual_seed(7)
    a = [b["y"].tolist() for b in wb.loader(_ours(), batch_size=50, shuffle=True, generator=g)]
    b = [
        b["y"].tolist()
        for b in wb.loader(
            _ours(), batch_size=50, shuffle=True, generator=torch.Generator().manual_seed(7)
        )
    ]
    assert a == b and sorted(sum(a, [])) == list(range(N))  # shuffle=True: a full permutation
    dl = wb.loader(_ours(), batch_size=64, drop_last=True)
    assert len(dl) == N // 64 and dl.batch_size == 64 and dl.dataset is not None
    assert all(len(b["y"]) == 64 for b in dl)
    ids = []
    lock = threading.Lock()

    def init(worker_id):
        with lock:
            ids.append(worker_id)

    list(wb.loader(_ours(), batch_size=50, num_workers=3, worker_init_fn=init))
    assert sorted(ids) == [0, 1, 2]


def _pid(batch):
    return {**batch, "pid": torch.full((1,), os.getpid())}


def test_persistent_workers_survive_the_epoch():
    dl = wb.loader(
        _ours(),
        batch_size=100,
        worker_type="process",
        num_workers=2,
        persistent_workers=True,
        transform=_pid,
    )
    first = {int(b["pid"]) for b in dl}
    second = {int(b["pid"]) for b in dl}
    assert first == second and os.getpid() not in first
    dl.close()
    fresh = wb.loader(_ours(), batch_size=100, worker_type="process", num_workers=2, transform=_pid)
    assert {int(b["pid"]) for b in fresh} != {int(b["pid"]) for b in fresh}  # new workers per pass


def augment(batch, generator):
    """Random noise from the batch's own generator: the same batch gets the same noise."""
    noise = torch.rand(batch["x"].shape, generator=generator)
    return {**batch, "x": batch["x"] + noise}


@pytest.mark.parametrize("worker", [("thread", 0), ("thread", 2), ("process", 2)])
def test_seeded_transforms_repeat_across_workers_and_resume(worker):
    def run(**kw):
        return {
            int(b["y"][0]): b["x"]
            for b in wb.loader(
                _ours(), batch_size=50, shuffle="full", seed=4, transform=augment, **kw
            )
        }

    base = run()  # in-process reference
    got = run(worker_type=worker[0], num_workers=worker[1])
    assert base.keys() == got.keys()
    assert all(torch.equal(base[k], got[k]) for k in base)
    plain = {
        int(b["y"][0]): b["x"] for b in wb.loader(_ours(), batch_size=50, shuffle="full", seed=4)
    }
    assert all(
        0 < float((base[k] - plain[k]).min()) and float((base[k] - plain[k]).max()) < 1
        for k in base
    )  # the noise was added, in [0, 1)
    other = {
        int(b["y"][0]): b["x"]
        for b in wb.loader(_ours(), batch_size=50, shuffle="full", seed=5, transform=augment)
    }
    assert not any(torch.equal(other[k], base[k]) for k in base if k in other)  # the seed matters
    dl = wb.loader(
        _ours(),
        batch_size=50,
        shuffle="full",
        seed=4,
        transform=augment,
        worker_type=worker[0],
        num_workers=worker[1],
    )
    it = iter(dl)
    next(it), next(it)
    state = dl.state_dict()
    dl.close()
    resumed = wb.loader(_ours(), batch_size=50, shuffle="full", seed=4, transform=augment)
    resumed.load_state_dict(state)
    rest = {int(b["y"][0]): b["x"] for b in resumed}
    assert len(rest) == 4 and all(torch.equal(rest[k], base[k]) for k in rest)


def test_a_failing_transform_names_itself_and_the_batch():
    def shout(batch):
        raise ValueError("no augmentation today")

    with pytest.raises(
        WorkerError,
        match=r"transform .*shout raised on batch 0 of epoch 0 .*"
        r"ValueError: no augmentation today.*num_workers=0",
    ):
        list(wb.loader(_ours(), batch_size=50, transform=shout))
