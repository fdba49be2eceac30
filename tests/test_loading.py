"""workbench.loader: right rows in every mode, resume, bounded read-ahead, errors that neither hang
nor leak threads or processes."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import torch

from workbench.datasets import open_dataset
from workbench.errors import (
    IncompatibleResumeError,
    InvalidInputError,
    LoaderError,
    LoaderTimeoutError,
    WorkerError,
)
from workbench.loading.loaders import Loader, loader
from workbench.loading.sampling import BatchSampler
from workbench.loading.workers.requests import group_size

N, D = 960, 3
MODES = [("thread", 0), ("thread", 2), ("process", 2)]


@pytest.fixture
def npy(tmp_path: Path) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, np.arange(N * D, dtype=np.float64).reshape(N, D))  # row i starts with i*D
    return path


def rows_of(batch: dict[str, torch.Tensor]) -> np.ndarray:
    return (batch["x"][:, 0] // D).long().numpy()


class Wrapped(torch.utils.data.Dataset):
    """A real memmap dataset with a hook run before each batch read (module level: forkable)."""

    def __init__(self, path: Path) -> None:
        self.inner = open_dataset(path)
        self.block_rows, self.columns = 64, self.inner.columns
        self.row_nbytes = self.inner.row_nbytes

    def __len__(self) -> int:
        return len(self.inner)

    def __getitems__(self, indices: list[int]) -> Any:
        self.hook(indices)
        return self.inner.__getitems__(indices)  # a sequence of samples, per the torch contract

    def hook(self, indices: list[int]) -> None:
        pass


class Raising(Wrapped):
    def hook(self, indices: list[int]) -> None:
        if 500 in indices:
            raise ValueError("disk says no")


class Killing(Wrapped):
    def hook(self, indices: list[int]) -> None:
        if torch.utils.data.get_worker_info() is not None:
            os.kill(os.getpid(), signal.SIGKILL)


class Hanging(Wrapped):
    release = threading.Event()

    def hook(self, indices: list[int]) -> None:
        if 500 in indices:
            self.release.wait(60)


class Counting(Wrapped):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.lock, self.active, self.max_active, self.started = threading.Lock(), 0, 0, 0

    def hook(self, indices: list[int]) -> None:
        with self.lock:
            self.active += 1
            self.started += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(0.01)
        with self.lock:
            self.active -= 1


def children() -> int:
    return len(psutil.Process().children(recursive=True))


def settles(probe, target: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while probe() > target and time.monotonic() < deadline:
        time.sleep(0.05)
    return probe() <= target


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type,workers", MODES)
@pytest.mark.parametrize("order", ["sequential", "full", "block"])
def test_batches_are_the_samplers_rows_in_order(npy, order, worker_type, workers):
    data = np.load(npy)
    dl = loader(
        open_dataset(npy),
        batch_size=100,
        shuffle=order,
        seed=3,
        num_workers=workers,
        worker_type=worker_type,
    )
    expected = BatchSampler(N, 100, order=order, seed=3, block_rows=open_dataset(npy).block_rows)
    got = list(dl)
    assert len(got) == len(dl) == len(expected) == 10
    for batch, idx in zip(got, expected):
        assert np.array_equal(batch["x"].numpy(), data[idx])
    assert np.array_equal(np.sort(np.concatenate([rows_of(b) for b in got])), np.arange(N))


def test_shuffle_aliases_and_epochs_advance(npy):
    ds = open_dataset(npy)
    seq = [rows_of(b) for b in loader(ds, batch_size=64, shuffle=False)]
    assert np.array_equal(np.concatenate(seq), np.arange(N))
    dl = loader(ds, batch_size=64, shuffle=True, seed=1)
    assert dl.order == "full"  # DataLoader's meaning: a uniform permutation per epoch
    first, second = [np.concatenate([rows_of(b) for b in dl]) for _ in range(2)]
    assert not np.array_equal(first, second)  # each full pass moves to the next epoch
    dl.set_epoch(0)
    assert np.array_equal(np.concatenate([rows_of(b) for b in dl]), first)
    with pytest.raises(InvalidInputError, match="shuffle"):
        loader(ds, shuffle="random")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_ranks_split_the_rows(npy, worker_type):
    parts = [
        np.concatenate(
            [
                rows_of(b)
                for b in loader(
                    open_dataset(npy),
                    batch_size=50,
                    shuffle="full",
                    rank=r,
                    world_size=3,
                    worker_type=worker_type,
                )
            ]
        )
        for r in range(3)
    ]
    assert [len(p) for p in parts] == [N // 3] * 3
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(N))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_mid_epoch_equals_uninterrupted(npy, workers):
    kw = dict(batch_size=64, shuffle="block", seed=7, num_workers=workers, prefetch_factor=3)
    full = loader(open_dataset(npy), **kw)
    full.set_epoch(2)
    whole = [rows_of(b) for b in full]
    dl = loader(open_dataset(npy), **kw)
    dl.set_epoch(2)
    it = iter(dl)
    head = [rows_of(next(it)) for _ in range(4)]  # threads have read further ahead than this
    state = json.loads(json.dumps(dl.state_dict()))
    assert (state["epoch"], state["batches_done"]) == (2, 4)
    dl.close()
    again = loader(open_dataset(npy), **kw)
    again.load_state_dict(state)
    again.set_epoch(2)  # the usual training loop calls this; it must keep the resume point
    tail = [rows_of(b) for b in again]
    assert np.array_equal(np.concatenate(head + tail), np.concatenate(whole))
    assert again.state_dict()["epoch"] == 3 and again.state_dict()["batches_done"] == 0
    with pytest.raises(IncompatibleResumeError):
        loader(open_dataset(npy), **{**kw, "seed": 8}).load_state_dict(state)


def test_read_ahead_is_bounded(npy):
    ds = Counting(npy)
    dl = loader(ds, batch_size=32, num_workers=2, prefetch_factor=3, shuffle="full")
    consumed = 0
    for _ in dl:
        consumed += 1
        time.sleep(0.002)
        assert ds.started <= consumed + 2 * 3 - 1  # started counts the one just handed out too
    assert consumed == ds.started == len(dl)
    assert ds.max_active == 2  # both threads read at once, never more


def test_stats_count_samples_bytes_and_time(npy):
    dl = loader(open_dataset(npy), batch_size=100)
    list(dl)
    s = dl.stats
    assert (s.batches, s.samples, s.bytes) == (10, N, N * D * 8)
    assert 0 < s.wait_s <= s.total_s and s.samples_per_s > 0 and s.mb_per_s > 0
    assert set(s.as_dict()) >= {"samples_per_s", "mb_per_s", "wait_fraction"}
    s.reset()
    assert s.samples == 0


@pytest.mark.parametrize("dtype,transform", [(None, None), ("float16", None), (None, "halve")])
def test_stats_bytes_are_the_batches_bytes_however_they_are_counted(npy, dtype, transform):
    """Batches of our datasets as read are counted as rows x row bytes without looking at them;
    a cast or a transform changes the bytes, and then the batch itself is measured."""
    from workbench.loading.batches import batch_nbytes

    fn = (lambda b: {k: v[:, :1] for k, v in b.items()}) if transform else None
    for order in ("sequential", "full"):
        dl = loader(
            open_dataset(npy, dtype=dtype),
            batch_size=64,
            shuffle=order,
            transform=fn,
            num_workers=0,
        )
        assert dl.stats.bytes == 0 and sum(batch_nbytes(b) for b in dl) == dl.stats.bytes > 0
    assert open_dataset(npy, dtype=dtype).dense_row_nbytes == (D * 8 if dtype is None else 0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type,workers", MODES)
def test_raising_dataset_names_the_batch(npy, worker_type, workers):
    procs, threads = children(), threading.active_count()
    dl = loader(
        Raising(npy),
        batch_size=100,
        shuffle="sequential",
        num_workers=workers,
        worker_type=worker_type,
    )
    with pytest.raises(WorkerError) as err:
        list(dl)
    msg = str(err.value)
    assert "rows [500, 501, 502, 503, ..., 597, 598, 599] (100 rows)" in msg
    assert "ValueError: disk says no" in msg and "num_workers=0" in msg
    assert err.value.__cause__ is not None
    assert settles(children, procs) and settles(threading.active_count, threads)


@pytest.mark.timeout(60)
def test_killed_worker_process_is_reported_fast(npy):
    procs = children()
    dl = loader(Killing(npy), batch_size=100, worker_type="process", num_workers=2, timeout=60)
    start = time.monotonic()
    with pytest.raises(LoaderError, match=r"worker process died \(pid \d+ killed by SIGKILL"):
        list(dl)
    assert time.monotonic() - start < 15
    assert settles(children, procs)


@pytest.mark.timeout(90)
def test_killed_worker_is_reported_where_the_consumer_swallows_errors(npy):
    # torch's SIGCHLD handler raised its error in whatever the main thread ran at that moment:
    # here a step that swallows errors, after which the loader waited out its whole timeout
    dl = loader(Killing(npy), batch_size=100, worker_type="process", num_workers=2, timeout=60)
    it = iter(dl)  # both workers start reading, and die
    start = time.monotonic()
    while time.monotonic() - start < 1.0:
        try:
            time.sleep(0.05)
        except Exception:
            pass
    with pytest.raises(LoaderError, match="killed by SIGKILL"):
        next(it)
    assert time.monotonic() - start < 15


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_hung_read_times_out(npy, worker_type):
    procs, threads = children(), threading.active_count()
    Hanging.release.clear()
    dl = loader(
        Hanging(npy),
        batch_size=100,
        shuffle="sequential",
        worker_type=worker_type,
        num_workers=2,
        timeout=2,
    )
    start = time.monotonic()
    with pytest.raises(LoaderTimeoutError, match=r"rows \[500, .*timeout=2"):
        list(dl)
    assert time.monotonic() - start < 5
    assert settles(children, procs)
    Hanging.release.set()  # a hung thread can't be killed; it must stop once its read returns
    assert settles(threading.active_count, threads)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_close_and_gc_stop_workers(npy, worker_type):
    procs, threads = children(), threading.active_count()
    with loader(open_dataset(npy), batch_size=10, num_workers=2, worker_type=worker_type) as dl:
        it = iter(dl)
        next(it)
        assert children() > procs or threading.active_count() > threads
    assert settles(children, procs) and settles(threading.active_count, threads)
    dl2: Loader = loader(open_dataset(npy), batch_size=10, num_workers=2, worker_type=worker_type)
    for _ in dl2:
        break  # the abandoned iterator is garbage: its workers must go with it
    assert settles(children, procs) and settles(threading.active_count, threads)


def test_default_workers_follow_batch_bytes(tmp_path):
    """In-process for small batches, read-ahead threads from 1 MiB per batch (the measured rule),
    except where the dataset gathers the next batch in the background in-process."""
    import numpy as np

    import workbench as wb

    np.save(tmp_path / "x.npy", np.zeros((10_000, 256), "float32"))  # 1 KiB rows
    ds = wb.open_dataset(tmp_path / "x.npy")
    assert wb.loader(ds, batch_size=256).num_workers == 0
    assert wb.loader(ds, batch_size=4096).num_workers == (0 if ds.reads_ahead else 2)
    h5 = tmp_path / "x.h5"
    wb.convert({"x": np.zeros((10_000, 256), "float32")}, h5, format="hdf5", progress=False)
    assert wb.loader(wb.open_dataset(h5), batch_size=4096).num_workers == 2  # read by h5py
    assert wb.loader(ds, batch_size=256, worker_type="process").num_workers == 2
    assert wb.loader(ds, batch_size=256, num_workers=1).num_workers == 1


EXIT_SCRIPT = """
import sys, time
import numpy as np
from workbench.datasets import open_dataset
from workbench.loading.loaders import loader

class Slow:
    def __init__(self, ds, log): self.ds, self.log = ds, log
    def __len__(self): return len(self.ds)
    def __getitem__(self, i): return self.ds[i]
    def __getitems__(self, idx):
        time.sleep(0.3)
        out = self.ds.__getitems__(idx)
        with open(self.log, "a") as f: f.write("read done\\n")
        return out

ds = Slow(open_dataset(sys.argv[1]), sys.argv[2])
it = iter(loader(ds, batch_size=10, num_workers=2, worker_type="thread"))
next(it)  # the two readers are now mid-read on the batches after it
"""


@pytest.mark.timeout(60)
def test_exit_waits_for_reads_in_progress(npy, tmp_path):
    # A reader still running while the interpreter finalizes can abort the process; exit joins them.
    import subprocess
    import sys

    log = tmp_path / "reads.log"
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(npy), str(log)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert log.read_text().count("read done") >= 3  # the first batch and both reads in flight


def test_process_batches_show_in_a_torch_profile(npy):
    # without a profiler the worker iterator skips torch's per-batch range (its cost); with one,
    # the range is there as in torch's own DataLoader
    dl = loader(open_dataset(npy), batch_size=100, worker_type="process", num_workers=2)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        got = sum(len(b["x"]) for b in dl)
    assert got == N
    names = [e.name for e in prof.events()]
    # one range per request to the workers; a request carries a group of small batches
    requests = -(-len(dl) // group_size(100 * open_dataset(npy).row_nbytes))
    assert sum("DataLoader" in n and "__next__" in n for n in names) >= requests, set(names)
    dl.close()


@pytest.mark.parametrize("worker_type", ["thread", "process"])
def test_block_order_asks_for_each_next_window_and_reads_the_same_rows(tmp_path, npy, worker_type):
    """The loader hands its dataset's ``will_need`` to the sampler, through an Advisor thread:
    the main process asks the kernel for each window ahead (measured in benchmarks/loaders.py
    --cold); the rows it reads are the same without the advice, and a dataset that cannot advise
    gets none."""
    import workbench as wb

    store = wb.convert(npy, tmp_path / "x.store", shard_bytes=4_000, progress=False)
    ds = open_dataset(tmp_path / "x.store")
    assert len(store.shards) > 2
    asked: list[int] = []
    told = ds.will_need
    ds.will_need = lambda starts, lengths: asked.append(told(starts, lengths)) or asked[-1]
    kw = dict(
        batch_size=16,
        shuffle="block",
        block_rows=32,
        window=2,
        seed=3,
        num_workers=1,
        worker_type=worker_type,
    )
    dl = loader(ds, **kw)
    assert dl.sampler.advise.fn == ds.will_need  # called on the Advisor's thread
    wb.evict(tmp_path / "x.store")
    with_advice = [rows_of(b) for b in dl]
    assert dl.sampler.advise.wait(10.0)
    spans = -(-N // dl.sampler._epoch_order(0).span(2, 16))
    assert 1 <= len(asked) <= spans and asked[0] > 0  # a window once at most; a backlog: newest
    quiet = loader(ds, **kw)
    quiet.sampler.advise = None
    assert all(np.array_equal(a, b) for a, b in zip(with_advice, (rows_of(b) for b in quiet)))
    assert loader(torch.utils.data.TensorDataset(torch.zeros(4))).sampler.advise is None
