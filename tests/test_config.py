"""workbench.loading.config and Loader.reconfigure: one config swapped at a batch boundary, the
epoch kept whole (every row once), readers rebuilt without leaks, checkpoints taken after a change
exact."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import psutil
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.errors import InvalidInputError
from workbench.loading.config import LoaderConfig

N = 3000


@pytest.fixture(scope="module")
def ds():
    return wb.open_dataset(
        {"x": np.arange(N * 4, dtype=np.float32).reshape(N, 4), "id": np.arange(N)}
    )


class Plain(torch.utils.data.Dataset):
    """A user's own map-style Dataset (no batched reads): read through DataLoader's contract."""

    def __len__(self) -> int:
        return 700

    def __getitem__(self, i: int) -> dict[str, int]:
        return {"id": i}


def ids(batch) -> list[int]:
    return batch["id"].tolist()


def test_config_validates_and_lists_what_differs():
    c = LoaderConfig.build(row_nbytes=16, batch_size=64, shuffle=True)
    assert (c.shuffle, c.num_workers, c.auto_workers) == ("full", 0, True)
    assert c.loader_options() == {"batch_size": 64, "shuffle": "full"}
    assert c.with_changes(16, batch_size=1 << 17).num_workers == 2  # auto follows batch bytes
    # a dataset that gathers the next batch in the background stays in-process at any size
    assert c.with_changes(16, True, batch_size=1 << 17).num_workers == 0
    assert c.with_changes(16, num_workers=3).loader_options()["num_workers"] == 3
    with pytest.raises(InvalidInputError, match="unknown loader option.*'batchsize'"):
        LoaderConfig.build(batchsize=3)
    with pytest.raises(InvalidInputError, match=r"\['seed'\] cannot change while a loader runs"):
        c.with_changes(16, seed=3)
    with pytest.raises(InvalidInputError, match="batch_size=0"):
        c.with_changes(16, batch_size=0)


def test_prefetch_factor_none_keeps_about_4_mib_in_flight_per_process_worker():
    kib = 1024
    proc = LoaderConfig.build(row_nbytes=kib, batch_size=256, worker_type="process")
    assert (proc.prefetch_factor, proc.auto_prefetch) == (16, True)  # 256 KiB batches: 16 deep
    assert proc.with_changes(kib, batch_size=1024).prefetch_factor == 4  # 1 MiB batches
    assert proc.with_changes(kib, batch_size=8192).prefetch_factor == 2  # never fewer than 2
    assert proc.with_changes(kib, batch_size=64).prefetch_factor == 16  # never more than 16
    assert proc.with_changes(kib, worker_type="thread").prefetch_factor == 2  # threads: 2
    assert "prefetch_factor" not in proc.loader_options()
    fixed = proc.with_changes(kib, prefetch_factor=3)
    assert (fixed.prefetch_factor, fixed.with_changes(kib, batch_size=4).prefetch_factor) == (3, 3)
    assert fixed.loader_options()["prefetch_factor"] == 3
    assert fixed.with_changes(kib, prefetch_factor=None).prefetch_factor == 16  # back to auto
    with pytest.raises(InvalidInputError, match="prefetch_factor=0"):
        LoaderConfig.build(row_nbytes=kib, prefetch_factor=0)


change = st.fixed_dictionaries(
    {},
    optional={
        "batch_size": st.integers(1, 700),
        "window": st.integers(1, 6),
        "run_rows": st.integers(1, 64),
        "num_workers": st.integers(0, 2),
        "prefetch_factor": st.integers(1, 3),
        "shuffle": st.sampled_from(wb.ORDERS),
    },
)


@settings(max_examples=40, deadline=None)
@given(
    order=st.sampled_from(wb.ORDERS),
    plan=st.lists(st.tuples(st.integers(0, 5), change), max_size=5),
)
def test_random_changes_mid_epoch_deliver_every_row_once(ds, order, plan):
    dl = wb.loader(ds, batch_size=100, shuffle=order, seed=3, num_workers=0, block_rows=128)
    it, got = iter(dl), []
    expected_size = 100
    for steps, changes in plan:
        for _ in range(steps):
            batch = next(it, None)
            if batch is not None:
                got += ids(batch)
        dl.reconfigure(**changes)
        expected_size = changes.get("batch_size", expected_size)
        batch = next(it, None)
        if batch is not None:  # the next batch already has the new size (or is the last)
            assert len(batch["id"]) == expected_size or len(got) + len(batch["id"]) == N
            got += ids(batch)
    got += [i for b in it for i in ids(b)]
    assert sorted(got) == list(range(N))
    dl.close()


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_changes_rebuild_the_readers_and_leak_nothing(ds, worker_type):
    me = psutil.Process()
    threads, children = threading.active_count(), len(me.children(recursive=True))
    dl = wb.loader(
        ds,
        batch_size=200,
        shuffle="full",
        num_workers=2,
        worker_type=worker_type,
        persistent_workers=True,
    )
    it = iter(dl)
    got = ids(next(it))
    dl.reconfigure(num_workers=1, batch_size=50)
    got += ids(next(it))
    assert dl.num_workers == 1 and len(got) == 250
    dl.reconfigure(worker_type="thread" if worker_type == "process" else "process", num_workers=2)
    got += [i for b in it for i in ids(b)]
    assert sorted(got) == list(range(N))
    # the wish survives a spell on threads: processes are kept between passes again
    assert dl.config.persistent_workers and dl.config.keeps_workers == (worker_type == "thread")
    if worker_type == "thread":  # now on processes: the next pass reuses the same workers
        pids = set(dl.worker_pids())
        assert pids and set(dl.worker_pids()) == pids
        list(dl)
        assert set(dl.worker_pids()) == pids
    dl.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        threading.active_count() > threads or len(me.children(recursive=True)) > children
    ):
        time.sleep(0.1)
    assert threading.active_count() <= threads
    assert len(me.children(recursive=True)) <= children


def test_a_users_dataset_gets_rebuilt_dataloader_processes():
    dl = wb.loader(Plain(), batch_size=64, shuffle="full", num_workers=2, worker_type="process")
    it = iter(dl)
    first = ids(next(it))
    pids = set(dl.worker_pids())
    dl.reconfigure(num_workers=1, batch_size=10)
    second = next(it)
    assert len(second["id"]) == 10 and set(dl.worker_pids()).isdisjoint(pids)
    rest = first + ids(second) + [i for b in it for i in ids(b)]
    assert sorted(rest) == list(range(700))
    dl.close()


def test_a_checkpoint_after_a_change_resumes_exactly(ds):
    dl = wb.loader(ds, batch_size=128, shuffle="block", seed=5, window=2, block_rows=128)
    it = iter(dl)
    head = [i for _ in range(3) for i in ids(next(it))]
    dl.reconfigure(batch_size=300, window=5)
    head += ids(next(it)) + ids(next(it))
    state = json.loads(json.dumps(dl.state_dict()))
    rest_here = [i for b in it for i in ids(b)]
    again = wb.loader(ds, **dl.config.loader_options())  # the tuned settings
    again.load_state_dict(state)
    assert [i for b in again for i in ids(b)] == rest_here  # the same rows in the same batches
    old = wb.loader(ds, batch_size=128, shuffle="block", seed=5, window=2, block_rows=128)
    old.load_state_dict(state)
    assert sorted(i for b in old for i in ids(b)) == sorted(rest_here)  # in batches of 128
    assert sorted(head + rest_here) == list(range(N))


def test_shuffle_changes_from_the_next_epoch_and_between_passes_at_once(ds):
    dl = wb.loader(ds, batch_size=500, shuffle="sequential")
    it = iter(dl)
    first = ids(next(it))
    assert dl.reconfigure(shuffle="full").shuffle == "full"  # what will apply
    assert dl.order == dl.config.shuffle == "sequential"  # what runs until the next batch
    assert first + [i for b in it for i in ids(b)] == list(range(N))  # this epoch as it began
    assert dl.order == "full"
    dl.reconfigure(batch_size=1000)  # not iterating: applies now
    assert dl.batch_size == 1000 and len(dl) == 3


def test_reconfigure_from_another_thread_while_training(ds):
    dl = wb.loader(ds, batch_size=50, shuffle="block", num_workers=2)
    sizes: list[int] = []
    seen: list[int] = []

    def train():
        for batch in dl:
            sizes.append(len(batch["id"]))
            seen.extend(ids(batch))
            time.sleep(0.002)

    t = threading.Thread(target=train)
    t.start()
    while len(sizes) < 5:
        time.sleep(0.001)
    dl.reconfigure(batch_size=7)
    t.join(30)
    assert not t.is_alive() and 7 in sizes and sizes[0] == 50
    assert sorted(seen) == list(range(N))


def test_run_rows_reach_the_sampler_and_batches_come_in_runs(ds):
    dl = wb.loader(ds, batch_size=256, shuffle="block", block_rows=512, run_rows=64)
    assert dl.sampler.run_rows == 64
    it = iter(dl)
    pieces = [1 + int(np.sum(np.diff(ids(next(it))) != 1)) for _ in range(3)]
    assert max(pieces) <= 256 // 64 + 1  # 4 runs, neighbours may merge; a window edge adds one
    dl.reconfigure(run_rows=1)  # from the next window: here the epoch's one window is under way
    list(it)
    rest = [ids(b) for b in dl]  # the next epoch: single rows
    assert dl.sampler.run_rows == 1 and max(1 + int(np.sum(np.diff(r) != 1)) for r in rest) > 50


def test_changes_from_another_thread_never_race_a_pass_starting():
    """A change made while the consumer is between epochs used to re-plan the sampler under the
    new pass's first batches (a zero-row batch): now it is applied atomically with a pass start."""
    for _ in range(3):
        dl = wb.loader(Plain(), batch_size=50, num_workers=1, worker_type="process", shuffle="full")
        errors: list[BaseException] = []
        stop = threading.Event()
        epochs: list[list[int]] = []

        def train():
            try:
                while not stop.is_set():
                    epochs.append([i for b in dl for i in ids(b)])
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                errors.append(exc)

        t = threading.Thread(target=train)
        t.start()
        for k in range(6):
            time.sleep(0.05)
            dl.reconfigure(num_workers=1 + k % 2, batch_size=(50, 64, 7)[k % 3])
        stop.set()
        t.join(60)
        dl.close()
        assert not errors, errors[0]
        assert all(sorted(e) == list(range(700)) for e in epochs[:-1])  # whole epochs stay exact


def test_worker_type_none_picks_processes_for_a_transform_where_workers_fork():
    def double(batch):
        return batch

    plain = LoaderConfig.build(row_nbytes=1024)
    assert (plain.worker_type, plain.auto_type) == ("thread", True)
    with_fn = LoaderConfig.build(row_nbytes=1024, transform=double)
    assert (with_fn.worker_type, with_fn.num_workers) == ("process", 2)  # a Python transform
    assert "worker_type" not in with_fn.loader_options()
    assert with_fn.keeps_workers  # chosen by the loader: kept across epochs
    assert not LoaderConfig.build(row_nbytes=1024, worker_type="process").keeps_workers
    spawned = LoaderConfig.build(row_nbytes=1024, transform=double, multiprocessing_context="spawn")
    assert spawned.worker_type == "thread"  # spawn would pickle the transform: threads are safe
    chosen = LoaderConfig.build(row_nbytes=1024, transform=double, worker_type="thread")
    assert chosen.worker_type == "thread" and chosen.loader_options()["worker_type"] == "thread"
    assert chosen.with_changes(1024, worker_type=None).worker_type == "process"
    with pytest.raises(InvalidInputError, match="worker_type='fiber'.*None"):
        LoaderConfig.build(worker_type="fiber")


def test_the_shard_window_is_fitted_to_a_streamed_datasets_cache():
    shard = 262_400  # (bytes the cache holds, the biggest shard): room for 6 shards
    cache = (6 * shard, shard)
    fitted = LoaderConfig.build(64, False, cache, shuffle="shard")
    assert (fitted.window, fitted.auto_window) == (2, True)  # 2 + 3 at once, and 1 fetched ahead
    assert "window" not in fitted.loader_options()  # rebuilt from the line, it is fitted again
    assert LoaderConfig.build(64, False, None, shuffle="shard").window == 8  # no cache: default
    assert LoaderConfig.build(64, False, cache, shuffle="block").window == 8  # blocks, not shards
    assert LoaderConfig.build(64, False, (100 * shard, shard), shuffle="shard").window == 8
    assert LoaderConfig.build(64, False, (2 * shard, shard), shuffle="shard").window == 1
    given = LoaderConfig.build(64, False, cache, shuffle="shard", window=3)  # 6 at once: fits
    assert (given.window, given.loader_options()["window"]) == (3, 3)
    numbers = (
        r"window=4 in shard order needs 7 shards .* shards of up to 262,400 bytes, but "
        r"cache_bytes=1,574,400 holds 6.*Raise cache_bytes to 1,836,800 .*window<=3"
    )
    with pytest.raises(InvalidInputError, match=numbers):
        LoaderConfig.build(64, False, cache, shuffle="shard", window=4)
    with pytest.raises(InvalidInputError, match=numbers):  # reconfigure goes through here
        fitted.with_changes(64, False, cache, window=4)
    with pytest.raises(InvalidInputError, match="window=8 in shard order.*shuffle='sequential'"):
        LoaderConfig.build(64, False, (3 * shard, shard), shuffle="shard", window=8)
    assert fitted.with_changes(64, False, cache, shuffle="block").window == 8  # auto follows
    assert given.with_changes(64, False, cache, window=None).window == 2  # back to fitted
    with pytest.raises(InvalidInputError, match="window=4 in shard order"):  # order changes too
        LoaderConfig.build(64, False, cache, shuffle="block", window=4).with_changes(
            64, False, cache, shuffle="shard"
        )
