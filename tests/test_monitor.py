"""Monitor, memory and metrics on the real thing: a loader with worker processes over a real
store, their PSS, the tree's sum, the page cache filling in, a real Dask cluster's workers."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

import workbench as wb
from workbench.monitoring.gpu import gpu_metrics
from workbench.monitoring.memory import memory_tree, process_memory
from workbench.monitoring.metrics import SERIES, BatchEvent, BatchWindow, scalars
from workbench.monitoring.stages import STAGES
from workbench.monitoring.verdicts import bottleneck

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402  (its until(): poll for what a thread will show soon)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    dest = tmp_path_factory.mktemp("monitor") / "m.store"
    wb.convert(
        {
            "x": np.random.default_rng(0).standard_normal((40_000, 64)).astype("float32"),
            "y": np.arange(40_000),
        },
        dest,
        shard_bytes=2 << 20,
        progress=False,
    )
    return dest


def test_worker_processes_memory_and_the_page_cache(store):
    wb.evict(store)
    ds = wb.open_dataset(store)
    dl = wb.loader(ds, batch_size=1000, shuffle="full", worker_type="process", num_workers=2)
    seen_workers = {}
    with wb.Monitor(dl, interval=0.1) as mon:
        for i, _ in enumerate(dl):
            if i == 20:
                s = mon.sample()
                ahead = s["loader"]["read_ahead"]
                seen_workers = {
                    p["pid"]: p for p in s["memory"]["processes"] if p["name"] != "kernel"
                }
                children = {c.pid for c in psutil.Process().children(recursive=True)}
    assert len(seen_workers) == 2 and all(
        p["pss"] > 0 and p["real"] > 0 for p in seen_workers.values()
    )
    # workers x prefetch_factor in flight at most, and the rest of the group being delivered
    assert 1 <= ahead <= 3 * dl.prefetch_factor - 1
    assert set(seen_workers) <= children  # the loader's own worker processes
    last = mon.latest()
    procs = last["memory"]["processes"]
    assert procs[0]["name"] == "kernel" and procs[0]["pid"] == os.getpid()
    for key in ("rss", "pss", "real"):
        assert last["memory"]["total"][key] == sum(p[key] for p in procs)
    cache = last["page_cache"]
    assert cache["total_bytes"] == ds.manifest.nbytes and cache["fraction"] > 0.5  # read, so cached
    loader = last["loader"]
    assert loader["config"]["num_workers"] == 2 and loader["epoch"] == 1
    hist = mon.history()
    assert len(hist["samples_per_s"]) >= 2 and max(v for _, v in hist["samples_per_s"]) > 0
    assert {"memory_pss_bytes", "page_cache_bytes", "available_bytes"} <= set(hist)


def test_pss_splits_shared_pages_and_rss_does_not(store, tmp_path):
    before = process_memory()
    arr = np.load(next((wb.read_manifest(store)[0]).rglob("x.npy")), mmap_mode="r")
    float(
        arr.sum()
    )  # map and touch a file's pages: RSS counts them, anonymous memory does not grow
    after = process_memory()
    assert after.rss - before.rss > arr.nbytes * 0.5
    assert after.real - before.real < arr.nbytes * 0.2
    tree = memory_tree({os.getpid(): "kernel", 2**22 + 12345: "gone"})
    assert len(tree["processes"]) == 1  # a pid that does not exist is left out


def test_dask_workers_appear_through_a_real_cluster():
    client = wb.local_client(1)
    try:
        with wb.Monitor(client=client, interval=0.2) as mon:
            pass
        names = [p["name"] for p in mon.latest()["memory"]["processes"]]
        assert any(n.startswith("dask worker tcp://127.0.0.1:") for n in names)
    finally:
        wb.close_client(client)


def test_prometheus_gauges_and_no_fake_gpu():
    ds = wb.open_dataset({"x": np.zeros((5000, 8), "float32")})
    with wb.Monitor(wb.loader(ds, batch_size=100), interval=0.05) as mon:
        for _ in mon.loader:
            pass
    text = mon.to_prometheus()
    assert "# HELP workbench_samples_per_s rows the loader delivered per second" in text
    assert "workbench_memory_pss_bytes " in text
    gpu = gpu_metrics()
    if not torch.cuda.is_available():
        assert gpu["available"] is False and "no GPU" in gpu["reason"]
        assert "workbench_gpu_utilization" not in text
        assert mon.latest()["pinned"]["available"] is False


def test_batch_windows_and_series_are_plain_data():
    w = BatchWindow()
    for k in range(10):
        w.add(BatchEvent(float(k), rows=50, nbytes=800, wait_s=0.01 * k, step_s=0.1))
    s = w.summary()
    assert s["samples_per_s"] == pytest.approx(500) and s["batches_per_s"] == pytest.approx(10)
    assert s["wait_fraction"] == pytest.approx(0.45) and s["step_p95_s"] == pytest.approx(0.1)
    assert w.summary()["samples_per_s"] == 0.0  # each summary covers one interval
    assert set(scalars({"loader": s, "gpu": {"available": False}})) <= set(SERIES)


def test_the_loader_hot_path_calls_subscribers_only_when_there_are_some():
    ds = wb.open_dataset({"y": np.arange(1000)})
    dl = wb.loader(ds, batch_size=100, shuffle=False)
    got = []
    stop = dl.subscribe(got.append)
    list(dl)
    stop()
    list(dl)
    assert len(got) == 10 and sum(e.rows for e in got) == 1000 and all(e.nbytes == 800 for e in got)


def test_read_ahead_depth_in_threads():
    ds = wb.open_dataset({"y": np.arange(10_000)})
    dl = wb.loader(ds, batch_size=100, num_workers=2, prefetch_factor=3)
    it = iter(dl)
    next(it)
    assert 1 <= dl.read_ahead() <= 6
    list(it)
    assert dl.read_ahead() == 0 and wb.loader(ds, num_workers=0).read_ahead() == 0


def _busy_transform(batch):
    """A pure-Python transform that holds the GIL for 2 ms a batch."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.002:
        pass
    return batch


def test_the_stage_series_are_sampled_with_the_rest_and_exposed_to_prometheus():
    from prometheus_client.parser import text_string_to_metric_families

    ds = wb.open_dataset({"x": np.zeros((20_000, 16), "float32")})
    dl = wb.loader(ds, batch_size=200, num_workers=0, transform=_busy_transform)
    with wb.Monitor(dl, interval=0.05) as mon:
        assert browser.until(lambda: bool(mon.latest()))
        assert not any(k.startswith("stage_") for k in mon.history())  # nothing timed yet
        assert "verdict" not in mon.latest()["loader"]
        for _ in dl:
            pass
    names = [f"stage_{s}_s" for s in STAGES]
    assert set(names) <= set(SERIES) and all(SERIES[n].unit == "s" for n in names)
    hist = mon.history()
    assert set(names) <= set(hist)
    # every stage series is sampled at the same times as the throughput
    times = {n: [t for t, _ in hist[n]] for n in names}
    assert all(ts == times["stage_read_s"] for ts in times.values())
    assert set(times["stage_read_s"]) <= {t for t, _ in hist["samples_per_s"]}
    # the last sample (taken at stop) holds the loader's own window: 2 ms of transform a batch
    last = {n: hist[n][-1][1] for n in names}
    means = dl.stages.means()
    assert last == {f"stage_{s}_s": pytest.approx(means[s]) for s in STAGES}
    assert last["stage_transform_s"] >= 0.0018 and last["stage_transform_s"] > last["stage_read_s"]
    loader = mon.latest()["loader"]
    assert "transform" in loader["verdict"] and loader["verdict"] == str(bottleneck(dl))
    families = {f.name: f for f in text_string_to_metric_families(mon.to_prometheus())}
    stage = families["workbench_stage_seconds"]
    assert stage.type == "gauge" and "each stage" in stage.documentation
    by_label = {s.labels["stage"]: s.value for s in stage.samples}
    assert set(by_label) == set(STAGES)
    assert by_label["transform"] == pytest.approx(means["transform"])
    assert not any(name.startswith("workbench_stage_") and name != stage.name for name in families)
