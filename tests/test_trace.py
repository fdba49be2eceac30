"""workbench.monitoring.trace: the loader's recent batches as Chrome Trace Event Format JSON,
checked against the format (the fields each event needs, slices properly nested on each track
and within their batch, metadata naming every process and thread, worker processes on their
own pids)."""

from __future__ import annotations

import json
import os
import time
import types
from collections import defaultdict

import numpy as np
import pytest

import workbench as wb
from workbench.monitoring.trace import export_trace

EPS = 1e-3  # microseconds: float rounding of perf_counter seconds * 1e6


def _slow(batch):
    s = 0
    for i in range(5_000):
        s += i
    return batch


@pytest.fixture(scope="module")
def ds():
    return wb.open_dataset({"x": np.ones((2048, 16), "float32"), "y": np.arange(2048)})


def _trace(dl, tmp_path, step_s: float = 0.0005) -> list[dict]:
    for _ in dl:
        time.sleep(step_s)
    path = export_trace(dl, tmp_path / "trace.json")
    with open(path) as f:
        doc = json.load(f)
    assert set(doc) >= {"traceEvents"} and doc["displayTimeUnit"] in ("ms", "ns")
    return doc["traceEvents"]


def _check_format(events: list[dict]) -> dict[tuple[int, int], list[dict]]:
    """Every event has the fields its phase needs; slices nest on each track, each stage within
    a slice of its own batch; every process and thread is named. Returns the tracks."""
    tracks: dict[tuple[int, int], list[dict]] = defaultdict(list)
    names: dict[str, set] = {"process_name": set(), "thread_name": set()}
    for e in events:
        assert e["ph"] in ("X", "M") and isinstance(e["name"], str)
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] == "M":
            assert e["name"] in names and isinstance(e["args"]["name"], str)
            names[e["name"]].add(e["pid"] if e["name"] == "process_name" else (e["pid"], e["tid"]))
            continue
        assert isinstance(e["ts"], float) and isinstance(e["dur"], float) and e["dur"] >= 0
        assert isinstance(e["args"]["batch"], int)
        tracks[(e["pid"], e["tid"])].append(e)
    assert set(tracks) <= names["thread_name"]
    assert {pid for pid, _ in tracks} <= names["process_name"]
    for slices in tracks.values():
        stack: list[dict] = []
        for e in sorted(slices, key=lambda e: (e["ts"], -e["dur"], e["cat"] != "batch")):
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"] - EPS:
                stack.pop()
            if stack:  # inside the slice on top of the stack, wholly
                top = stack[-1]
                assert e["ts"] + e["dur"] <= top["ts"] + top["dur"] + EPS, (e, top)
            if e["cat"] == "stage":
                mine = [s for s in stack if s["name"] == f"batch {e['args']['batch']}"]
                assert mine, f"{e['name']} of batch {e['args']['batch']} outside its batch"
            stack.append(e)
    return tracks


def _stages(events: list[dict]) -> set[str]:
    return {e["name"] for e in events if e["ph"] == "X" and e["cat"] == "stage"}


def test_in_process_every_stage_nests_in_its_batch_on_the_consumers_track(ds, tmp_path):
    dl = wb.loader(ds, batch_size=128, shuffle="full", num_workers=0, transform=_slow)
    events = _trace(dl, tmp_path)
    tracks = _check_format(events)
    assert {"sample", "read", "transform", "wait", "handoff", "step"} <= _stages(events)
    batches = [e for e in events if e["ph"] == "X" and e["cat"] == "batch"]
    assert len({e["args"]["batch"] for e in batches}) == len(dl)
    assert {pid for pid, _ in tracks} == {os.getpid()}


def test_thread_readers_have_their_own_tracks(ds, tmp_path):
    dl = wb.loader(ds, batch_size=128, num_workers=2, worker_type="thread", transform=_slow)
    events = _trace(dl, tmp_path)
    tracks = _check_format(events)
    readers = {k for k, v in tracks.items() if any(e["name"] == "read" for e in v)}
    assert len(readers) == 2 and {pid for pid, _ in readers} == {os.getpid()}
    assert {"sample", "read", "transform", "wait", "handoff", "step"} <= _stages(events)


def test_worker_processes_are_on_their_own_pids(tmp_path):
    ds = wb.open_dataset({"x": np.ones((8192, 16), "float32"), "y": np.arange(8192)})
    with wb.loader(  # 64 batches: 4 requests of 16, both workers read
        ds,
        batch_size=128,
        num_workers=2,
        worker_type="process",
        transform=_slow,
        persistent_workers=True,
    ) as dl:
        events = _trace(dl, tmp_path)
        workers = set(dl.worker_pids())
    tracks = _check_format(events)
    readers = {pid for (pid, _), v in tracks.items() if any(e["name"] == "read" for e in v)}
    assert readers == workers and os.getpid() not in readers
    named = {
        e["pid"]: e["args"]["name"]
        for e in events
        if e["ph"] == "M" and e["name"] == "process_name"
    }
    assert all("worker" in named[p] for p in workers) and "consumer" in named[os.getpid()]


def test_a_monitor_gives_its_loader_and_to_device_gets_slices(ds, tmp_path):
    dl = wb.loader(ds, batch_size=256, num_workers=0)
    for _ in wb.to_device(dl, "meta"):
        time.sleep(0.0005)
    path = export_trace(types.SimpleNamespace(loader=dl), os.fspath(tmp_path / "t.json"))
    assert path == os.fspath(tmp_path / "t.json")
    events = json.load(open(path))["traceEvents"]
    _check_format(events)
    assert "to_device" in _stages(events)


def test_no_batches_is_an_empty_trace(ds, tmp_path):
    events = json.load(open(export_trace(wb.loader(ds), tmp_path / "e.json")))["traceEvents"]
    assert [e for e in events if e["ph"] == "X"] == []
