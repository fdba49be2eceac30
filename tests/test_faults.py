"""The fault matrix (docs/RELIABILITY.md): what each failure raises, and that nothing is lost.

Here: a dataset's own error reaches the consumer as its own class (and as a WorkerError) with the
rows, the batch and where it ran, for every worker type, as torch's DataLoader re-raises a
worker's exception as its class.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from browser import free_port

import workbench as wb
from workbench.errors import CorruptDatasetError, WorkerError, in_worker


class ShardGone(Exception):
    """A user's own error class, with nothing of ours in it."""


class Failing(torch.utils.data.Dataset):
    """Rows 0..n-1; reading row ``bad`` raises ``error``."""

    def __init__(self, error: BaseException, n: int = 64, bad: int = 40):
        self.error, self.n, self.bad = error, n, bad

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if i == self.bad:
            raise self.error
        return {"x": torch.tensor([float(i)])}


ERRORS = [
    CorruptDatasetError("shard 3: size 10 != 12 in the manifest"),
    ShardGone("the shard went away"),
    KeyError("label"),
]
READERS = [(0, "thread"), (2, "thread"), (2, "process")]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("workers,worker_type", READERS, ids=lambda x: str(x))
def test_a_datasets_error_keeps_its_class_through_the_loader(error, workers, worker_type):
    dl = wb.loader(
        Failing(error),
        batch_size=8,
        shuffle=False,
        num_workers=workers,
        worker_type=worker_type,
    )
    with pytest.raises(type(error)) as got:
        for _ in dl:
            pass
    dl.close()
    assert isinstance(got.value, WorkerError) and type(got.value).__name__ == type(error).__name__
    text = str(got.value)
    assert "rows [40," in text or "40" in text, text  # the failing batch's rows
    where = "main process" if workers == 0 else worker_type
    assert where in text, text
    if workers == 0 or worker_type == "thread":
        assert "batch 5 of epoch 0" in text, text
    assert str(error).strip("'") in text


def test_a_class_that_cannot_take_one_message_falls_back_to_worker_error():
    class Picky(Exception):
        def __init__(self, a: int, b: int):
            super().__init__(a, b)

    err = in_worker(Picky(1, 2), "reading rows [1] failed")
    assert type(err) is WorkerError and str(err) == "reading rows [1] failed"


def test_a_transforms_error_keeps_its_class_too():
    def transform(batch):
        raise ShardGone("no labels here")

    ds = wb.open_dataset({"x": np.zeros((32, 2), np.float32)})
    dl = wb.loader(ds, batch_size=8, num_workers=0, transform=transform)
    with pytest.raises(ShardGone, match="transform .* raised on batch 0 of epoch 0"):
        next(iter(dl))
    dl.close()


def test_the_kept_class_survives_pickle_as_a_worker_process_sends_it():
    import pickle

    err = in_worker(CorruptDatasetError("x"), "reading rows [1] failed in a worker process")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and isinstance(back, CorruptDatasetError)
    assert str(back) == str(err)


# -- remote reads fail fast ---------------------------------------------------------------------


@pytest.fixture
def http_store(tmp_path):
    """A store of 16 shards served by a real ``python -m http.server`` process of its own (so it
    can be stopped with SIGSTOP or killed), and its URL."""
    import socket
    import subprocess
    import sys
    import time

    x = np.arange(16 * 512 * 64, dtype=np.float32).reshape(-1, 64)  # 16 shards of 128 KiB
    wb.convert({"x": x}, tmp_path / "d.store", shard_bytes=128 << 10, progress=False)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/d.store"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield proc, url
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("how", ["SIGSTOP", "SIGKILL"])
def test_a_server_that_stalls_or_dies_mid_epoch_raises_remote_error_in_bounded_time(
    http_store, tmp_path, how
):
    import signal
    import time

    proc, url = http_store
    ds = wb.open_dataset(url, cache_dir=tmp_path / "c", cache_bytes=4 << 20, timeout=1.0)
    dl = wb.loader(ds, batch_size=512, shuffle=False, num_workers=0)
    it = iter(dl)
    for _ in range(4):  # a quarter of the epoch, fetched and read
        next(it)
    proc.send_signal(getattr(signal, how))
    t0 = time.monotonic()
    with pytest.raises(wb.errors.RemoteError, match=r"d\.store/.*\(shard \d+\)") as got:
        for _ in it:
            pass
    took = time.monotonic() - t0
    dl.close()
    if how == "SIGSTOP":
        proc.send_signal(signal.SIGCONT)
        assert "stopped answering" in str(got.value)
    assert took < 15, f"{how}: the error took {took:.1f} s"


def test_the_shard_cache_streams_a_shard_to_disk_in_bounded_memory(tmp_path):
    import tracemalloc

    x = np.ones((1 << 16, 256), np.float32)  # one 64 MiB shard
    wb.convert({"x": x}, tmp_path / "big.store", shard_bytes=128 << 20, progress=False)
    url = "file://" + str(tmp_path / "big.store")
    ds = wb.open_dataset(url, cache_dir=tmp_path / "c", cache_bytes=256 << 20)
    tracemalloc.start()
    try:
        batch = ds.get_batch(range(8))  # fetches, hashes and writes the whole shard
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batch["x"].shape == (8, 256) and ds.cache.fetches == 1
    assert peak < 8 << 20, f"{peak / 2**20:.1f} MiB held while a 64 MiB shard streamed"


# -- processes: killed, interrupted ---------------------------------------------------------------


def _alive(pids):
    import psutil

    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]


def test_a_worker_killed_during_reconfigure_is_named_and_leaves_no_process():
    import os
    import signal
    import time

    ds = wb.open_dataset({"x": np.arange(20_000, dtype=np.float32).reshape(-1, 4)})
    dl = wb.loader(ds, batch_size=64, num_workers=2, worker_type="process", timeout=20)
    it = iter(dl)
    seen = [next(it) for _ in range(3)]
    pids = list(dl.worker_pids())
    assert pids and seen
    os.kill(pids[0], signal.SIGKILL)
    dl.reconfigure(batch_size=128)  # at the next batch boundary: the readers are rebuilt
    t0 = time.monotonic()
    try:
        rest = sum(len(b["x"]) for b in it)  # the new readers may finish the epoch ...
        assert rest + 3 * 64 == 5_000
    except wb.errors.LoaderTimeoutError as e:  # ... or the dead one is named, quickly
        assert f"pid {pids[0]} killed by SIGKILL" in str(e), str(e)
    assert time.monotonic() - t0 < 30
    dl.close()
    for _ in range(50):
        if not _alive(pids):
            break
        time.sleep(0.1)
    assert not _alive(pids), f"worker processes left: {_alive(pids)}"


INTERRUPTED = """
import os, signal, sys, numpy as np, workbench as wb
# a background job of a non-interactive shell starts with SIGINT ignored: be the terminal's
signal.signal(signal.SIGINT, signal.default_int_handler)
ds = wb.open_dataset({"x": np.arange(400_000, dtype=np.float32).reshape(-1, 16)})
dl = wb.loader(ds, batch_size=256, num_workers=2, worker_type="process")
for k, b in enumerate(dl):
    if k == 5:
        print(" ".join(map(str, dl.worker_pids())), flush=True)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in a notebook or a terminal
"""


def test_keyboard_interrupt_mid_epoch_leaves_no_worker_and_no_shared_memory(tmp_path):
    import os
    import subprocess
    import sys
    import time

    shm = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    script = tmp_path / "interrupted.py"
    script.write_text(INTERRUPTED)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "KeyboardInterrupt" in out.stderr, out.stderr[-2000:]
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 2
    for _ in range(50):
        if not _alive(pids):
            break
        time.sleep(0.1)
    assert not _alive(pids), f"orphaned workers: {_alive(pids)}"
    if os.path.isdir("/dev/shm"):
        left = set(os.listdir("/dev/shm")) - shm
        assert not left, f"shared memory left behind: {sorted(left)}"


def test_a_conversion_killed_at_100_random_instants_per_layout_leaves_old_or_new():
    """benchmarks/kills.py: 100 SIGKILLs per layout at random instants of a conversion over an
    existing dataset; after each the destination is exactly the old rows or the new ones, and a
    resume=True conversion finishes a killed one (about 25 s on 2 cores)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "kills.py"
    out = subprocess.run(
        [sys.executable, str(script), "--kills", "100"], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [line for line in out.stdout.splitlines() if "every state old or new" in line]
    assert len(lines) == 3 and all("100 kills" in line for line in lines), out.stdout


def test_process_workers_read_an_http_dataset(http_store, tmp_path):
    """fsspec's HTTP file system cannot cross a fork: each worker makes its own."""
    _, url = http_store
    ds = wb.open_dataset(url, cache_dir=tmp_path / "c", cache_bytes=4 << 20)
    dl = wb.loader(ds, batch_size=512, shuffle="full", num_workers=2, worker_type="process")
    rows = np.concatenate([b["x"][:, 0].numpy() for b in dl])
    dl.close()
    assert np.array_equal(np.sort(rows), np.arange(16 * 512, dtype=np.float32) * 64)
