"""The RAM tier (``open_dataset(..., cache="ram")``): an exact copy, made in the background while
reads go on, shared with worker processes, refused past the budget, harmless when it fails."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import torch

import workbench as wb
from workbench.datasets import hugepages, ramtier
from workbench.datasets.tiered import TieredDataset
from workbench.errors import InvalidInputError, MemoryBudgetWarning
from workbench.monitoring.container import container_limits, promise, promised_bytes

ROWS, WIDTH = 6000, 64  # 256 B float32 rows + an int64 label


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ramtier")
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.standard_normal((ROWS, WIDTH), dtype=np.float32))
    np.save(root / "y.npy", np.arange(ROWS, dtype=np.int64) * 7)
    wb.convert(
        {"x": str(root / "x.npy"), "y": str(root / "y.npy")},
        root / "data.store",
        target="y",
        shard_bytes=500_000,  # several shards: the copy crosses their edges
        progress=False,
    )
    return root / "data.store"


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)


def _checked_everywhere(ds: Any, plain: Any) -> None:
    """Every row equal to the source's, by every read path."""
    perm = np.random.default_rng(1).permutation(ROWS)
    assert _same(ds.get_batch(range(ROWS)), plain.get_batch(range(ROWS)))
    for a in range(0, ROWS, 1024):
        idx = np.sort(perm[a : a + 1024])
        assert _same(ds.get_batch(idx), plain.get_batch(idx))
        out = {k: torch.empty_like(v) for k, v in plain.get_batch(idx).items()}
        assert _same(ds.get_batch(idx, out=out), plain.get_batch(idx))
        started = ds.start_batch(idx)
        if started is not None:
            assert _same(ds.finish_batch(started), plain.get_batch(idx))
    assert torch.equal(ds[ROWS - 1]["x"], plain[ROWS - 1]["x"])


def test_the_copy_is_exact(store: Path) -> None:
    plain = wb.open_dataset(store)
    ds = wb.open_dataset(store, cache="ram")
    assert isinstance(ds, TieredDataset) and ds.shard_rows == plain.shard_rows
    tier = ds.ram_tier.wait()
    assert tier.state == "ready", tier.describe()
    assert tier.copied_rows == ROWS and tier.backing in ("shared", "private")
    for name, a in tier.arrays.items():  # the copy itself, row for row
        np.testing.assert_array_equal(a, plain.read_chunk(0, ROWS)[name])
        assert not a.flags.writeable
    _checked_everywhere(ds, plain)
    assert "ram tier ready" in repr(ds) and tier.info()["state"] == "ready"
    batches = list(wb.loader(ds, batch_size=500, shuffle="full", seed=3))
    assert sorted(torch.cat([b["y"] for b in batches]).tolist()) == list(range(0, 7 * ROWS, 7))


class _Gated:
    """A source whose copy reads wait for ``gate`` (the test's reads do not)."""

    def __init__(self, ds: Any, gate: threading.Event, fail_at: int | None = None) -> None:
        self.read, self.gate, self.fail_at = ds.read_chunk, gate, fail_at

    def read_chunk(self, a: int, b: int) -> Any:
        if threading.current_thread().name == "wb-ram-tier":
            self.gate.wait()
            if self.fail_at is not None and b > self.fail_at:
                raise OSError(f"disk gone reading rows {a}-{b}")
        return self.read(a, b)


def _tiered(store: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[Any, Any]:
    monkeypatch.setattr(ramtier, "CHUNK_BYTES", 64 << 10)  # many chunks
    plain = wb.open_dataset(store)
    gate = threading.Event()
    gated = _Gated(plain, gate, **kw)
    monkeypatch.setattr(plain, "read_chunk", gated.read_chunk)
    tier = ramtier.RamTier(plain, plain.column_specs, len(plain))
    return TieredDataset(plain, tier), gate


def test_reads_while_the_copy_runs_are_correct(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, gate = _tiered(store, monkeypatch)
    ds.ram_tier.start()
    assert ds.ram_tier.state == "copying" and promised_bytes() > 0
    assert "copying" in ds.ram_tier.describe()
    assert "ram tier copying: row 0 of" in str(wb.inspect(ds))
    reference = wb.open_dataset(store)
    _checked_everywhere(ds, reference)  # all before the copy has any row: from the source
    first = list(wb.loader(ds, batch_size=256, shuffle="full", seed=0, num_workers=0))
    gate.set()  # the copy goes on while the epoch is read
    second = list(wb.loader(ds, batch_size=256, shuffle="full", seed=0, num_workers=0))
    assert ds.ram_tier.wait().state == "ready" and promised_bytes() == 0
    assert "ram tier ready" in str(wb.inspect(ds)) and "rows are read from there" in str(
        wb.inspect(ds)
    )
    assert all(_same(a, b) for a, b in zip(first, second)) and len(first) == len(second)
    _checked_everywhere(ds, reference)


def test_a_failed_copy_leaves_reads_correct(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ds, gate = _tiered(store, monkeypatch, fail_at=ROWS // 2)
    ds.ram_tier.start()
    gate.set()
    tier = ds.ram_tier.wait()
    assert tier.state == "failed" and "disk gone" in tier.message and "row" in tier.message
    assert tier.arrays == {} and promised_bytes() == 0
    _checked_everywhere(ds, wb.open_dataset(store))


def test_a_cancelled_copy_leaves_reads_correct(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, gate = _tiered(store, monkeypatch)
    ds.ram_tier.start()
    threading.Timer(0.2, gate.set).start()
    ds.ram_tier.cancel()
    assert ds.ram_tier.state == "stopped" and not ds.ram_tier.ready
    _checked_everywhere(ds, wb.open_dataset(store))


def test_a_copy_over_the_budget_is_refused_with_the_sizes(store: Path) -> None:
    with pytest.warns(
        MemoryBudgetWarning, match=r"needs .*MiB, over the memory budget of 1\.0 KiB"
    ):
        ds = wb.open_dataset(store, cache="ram", memory_budget=1024)
    tier = ds.ram_tier.wait()
    assert tier.state == "too big" and "page cache" in tier.message and tier.arrays == {}
    assert "too big" in repr(ds)
    _checked_everywhere(ds, wb.open_dataset(store))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        small = wb.open_dataset(store, cache="ram", memory_budget="1GiB")
        assert small.ram_tier.wait().ready


def test_memory_short_during_the_copy_stops_it(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, gate = _tiered(store, monkeypatch)
    real = ramtier.container_limits()
    calls = []

    def shrinking() -> Any:  # the second look finds the room gone (another process grew)
        calls.append(1)
        return real if len(calls) < 3 else type(real)(**{**real.__dict__, "host_available": 0})

    monkeypatch.setattr(ramtier, "container_limits", shrinking)
    gate.set()
    tier = ds.ram_tier.start().wait()
    assert tier.state == "stopped" and "memory ran short" in tier.message
    _checked_everywhere(ds, wb.open_dataset(store))


def test_bad_cache_names_and_in_memory_arrays() -> None:
    with pytest.raises(InvalidInputError, match="cache='disk'"):
        wb.open_dataset(np.zeros((4, 2)), cache="disk")
    ds = wb.open_dataset(np.arange(8.0), cache="ram")
    assert ds.ram_tier.state == "in memory" and not isinstance(ds, TieredDataset)
    assert wb.open_dataset(np.arange(8.0)).ram_tier is None


def _child_reads(ds: Any, queue: Any, wait_for: Any = None) -> None:
    torch.set_num_threads(1)  # as DataLoader workers do: the parent's OpenMP team is not forked
    if wait_for is not None:
        wait_for.wait(60)
        ds.ram_tier.wait()
    perm = np.random.default_rng(2).permutation(ROWS)
    total = 0.0
    for a in range(0, ROWS, 512):
        total += float(ds.get_batch(np.sort(perm[a : a + 512]))["x"].double().sum())
    mem = psutil.Process().memory_full_info()
    queue.put((ds.ram_tier.state, total, mem.uss, mem.pss, mem.rss))


def _expected_sum(store: Path) -> float:
    return float(wb.open_dataset(store).get_batch(range(ROWS))["x"].double().sum())


def _big_store(tmp_path: Path) -> Path:
    x = np.random.default_rng(5).standard_normal((ROWS, 8192), dtype=np.float32)  # 187.5 MiB
    np.save(tmp_path / "x.npy", x)
    wb.convert({"x": str(tmp_path / "x.npy")}, tmp_path / "big.store", progress=False)
    return tmp_path / "big.store"


def test_forked_workers_read_the_copy_without_copying_it(tmp_path: Path) -> None:
    store = _big_store(tmp_path)
    ds = wb.open_dataset(store, cache="ram")
    tier = ds.ram_tier.wait()
    assert tier.ready
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    kids = [ctx.Process(target=_child_reads, args=(ds, queue)) for _ in range(2)]
    for k in kids:
        k.start()
    got = [queue.get(timeout=60) for _ in kids]
    for k in kids:
        k.join(30)
    want = _expected_sum(store)
    for state, total, uss, pss, rss in got:
        assert state == "ready" and total == pytest.approx(want, rel=1e-9)
        # each child touched every row of the copy: resident, but shared, not its own
        assert rss > 0.8 * tier.nbytes and uss < 0.25 * tier.nbytes, (uss, pss, rss)


@pytest.mark.parametrize("backing", ["shared", "private"])
def test_a_worker_forked_during_the_copy(
    store: Path, monkeypatch: pytest.MonkeyPatch, backing: str
) -> None:
    monkeypatch.setenv("WB_RAM_BACKING", backing)
    ds, gate = _tiered(store, monkeypatch)
    ds.ram_tier.start()
    ctx = multiprocessing.get_context("fork")
    queue, done = ctx.Queue(), ctx.Event()
    kid = ctx.Process(target=_child_reads, args=(ds, queue, done))
    kid.start()
    gate.set()
    assert ds.ram_tier.wait().ready
    done.set()
    state, total, *_ = queue.get(timeout=120)
    kid.join(30)
    assert total == pytest.approx(_expected_sum(store), rel=1e-9)
    # a shared copy is seen once the owner's copy ends; a private one never (not mapped there)
    assert state == ("ready" if backing == "shared" else "not here")


@pytest.mark.parametrize("backing", ["shared", "private"])
def test_a_spawned_worker(store: Path, monkeypatch: pytest.MonkeyPatch, backing: str) -> None:
    monkeypatch.setenv("WB_RAM_BACKING", backing)
    ds = wb.open_dataset(store, cache="ram")
    assert ds.ram_tier.wait().ready
    pickle.dumps(ds)  # no copy of the data travels
    assert len(pickle.dumps(ds)) < 100_000
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    kid = ctx.Process(target=_child_reads, args=(ds, queue))
    kid.start()
    state, total, *_ = queue.get(timeout=180)
    kid.join(30)
    assert total == pytest.approx(_expected_sum(store), rel=1e-9)
    assert state == ("ready" if backing == "shared" else "not here")


def test_process_workers_through_the_loader(store: Path) -> None:
    ds = wb.open_dataset(store, cache="ram")
    ds.ram_tier.wait()
    dl = wb.loader(ds, batch_size=500, shuffle="full", seed=1, num_workers=2)
    ys = torch.cat([b["y"] for b in dl])
    dl.close()
    assert sorted(ys.tolist()) == list(range(0, 7 * ROWS, 7))


def test_the_kernel_settings_are_read(tmp_path: Path) -> None:
    (tmp_path / "enabled").write_text("always [madvise] never\n")
    (tmp_path / "shmem_enabled").write_text("always within_size advise [never] deny force\n")
    assert hugepages.huge_private(tmp_path) and not hugepages.huge_shared(tmp_path)
    assert hugepages.backing(tmp_path) in ("private", "shared")  # WB_RAM_BACKING may force it
    (tmp_path / "hugepages-2048kB").mkdir()
    (tmp_path / "hugepages-2048kB" / "shmem_enabled").write_text("always inherit [advise]\n")
    assert hugepages.huge_shared(tmp_path)
    assert hugepages.setting("missing", tmp_path) == ""


def test_default_budgets_leave_out_what_a_copy_still_takes() -> None:
    from workbench.tuning.budget import budget_bytes

    copy = object()  # a tier about to copy four times the memory left
    promise(copy, 4 * container_limits().available)
    try:
        assert budget_bytes(None) == 0 and ramtier.budget_of(None) == 0
    finally:
        promise(copy, 0)
    assert budget_bytes(None) > 0 and ramtier.budget_of(None) > 0


def test_the_monitor_and_watchs_header_show_the_tier(store: Path) -> None:
    from workbench.ui.charts import header

    ds = wb.open_dataset(store, cache="ram")
    ds.ram_tier.wait()
    dl = wb.loader(ds, batch_size=256, shuffle="full", seed=0)
    with wb.Monitor(dl, interval=0.05) as mon:
        rows = sum(len(b["y"]) for b in dl)
    got = mon.latest()["loader"]["ram_tier"]
    assert rows == ROWS and got["state"] == "ready" and got["nbytes"] == ds.ram_tier.nbytes
    assert got["text"].startswith("ram tier ready") and got["text"] in header(mon.latest())
