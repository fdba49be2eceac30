"""Issue 26: the loader times each batch's stages where the work happens (``loader.stages``), and
``wb.bottleneck`` turns them into a verdict; built cases of known cause get the right one."""

from __future__ import annotations

import time
import types

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.loading import passes
from workbench.monitoring.stages import PRODUCER


def _busy(batch):
    """A pure-Python transform: ~1 ms of the GIL a batch."""
    s = 0
    for i in range(30_000):
        s += i
    return batch


@pytest.fixture(scope="module")
def ds():
    return wb.open_dataset({"x": np.ones((4096, 32), "float32"), "y": np.arange(4096)})


def _drain(dl, step_s: float = 0.0) -> None:
    for _ in dl:
        if step_s:
            time.sleep(step_s)


def test_a_slow_transform_in_process_is_input_bound_on_the_transform(ds):
    dl = wb.loader(ds, batch_size=64, shuffle="full", num_workers=0, transform=_busy)
    _drain(dl)
    v = wb.bottleneck(dl)
    assert (v.bound, v.stage) == ("input", "transform"), str(v)
    assert v.change["worker_type"] == "process" and v.change["num_workers"] >= 2
    assert v.share > 0.5 and "one thread" in v.evidence


def test_a_slow_consumer_is_compute_bound(ds):
    dl = wb.loader(ds, batch_size=256, shuffle="full", num_workers=0)
    _drain(dl, step_s=0.02)
    v = wb.bottleneck(dl)
    assert v.bound == "compute" and v.change == {}, str(v)
    assert dl.stages.means()["step"] >= 0.015  # the first batch: no step before it


def test_in_process_the_stages_sum_to_the_consumers_wait(ds):
    """In the caller, the consumer waits exactly while the producer works: the timed stages are
    positive and add up to (nearly all of) that wait."""
    dl = wb.loader(ds, batch_size=64, shuffle="full", num_workers=0, transform=_busy)
    _drain(dl)
    m = dl.stages.means()
    assert len(dl.stages) == len(dl)
    assert m["sample"] > 0 and m["read"] > 0 and m["transform"] > 0 and m["step"] > 0
    producer = sum(m[s] for s in PRODUCER)
    assert 0.8 * m["wait"] <= producer <= m["wait"], m


def test_a_foreign_dataset_times_its_read_and_its_collate():
    ds = torch.utils.data.TensorDataset(torch.arange(2048.0))
    dl = wb.loader(ds, batch_size=64, num_workers=0)
    _drain(dl)
    m = dl.stages.means()
    assert m["read"] > 0 and m["collate"] > 0 and m["transform"] == 0.0


def test_thread_readers_time_their_stages(ds):
    dl = wb.loader(ds, batch_size=64, num_workers=2, worker_type="thread", transform=_busy)
    _drain(dl)
    m = dl.stages.means()
    assert m["sample"] > 0 and m["read"] > 0 and m["transform"] > 0.0003, m
    v = wb.bottleneck(dl)
    assert (v.bound, v.stage) == ("input", "transform"), str(v)
    assert v.change == {"worker_type": "process", "num_workers": v.change["num_workers"]}


def test_process_readers_give_the_wait_and_step_only(ds):
    with wb.loader(ds, batch_size=256, num_workers=1, worker_type="process") as dl:
        _drain(dl, step_s=0.001)
        m = dl.stages.means()
    assert all(m[s] == 0.0 for s in PRODUCER) and m["step"] > 0
    assert wb.bottleneck(dl).stage == ""  # no stage is blamed that was not timed


def test_reconfigure_starts_a_new_window_and_a_monitor_gives_its_loader(ds):
    dl = wb.loader(ds, batch_size=256, num_workers=0)
    _drain(dl)
    assert len(dl.stages) == 16
    dl.reconfigure(batch_size=512)
    assert len(dl.stages) == 0
    _drain(dl, step_s=0.02)
    assert wb.bottleneck(types.SimpleNamespace(loader=dl)).bound == "compute"


def test_timing_off_times_nothing(ds, monkeypatch):
    monkeypatch.setattr(passes, "TIMED", False)
    for kw in ({"num_workers": 0}, {"num_workers": 2, "worker_type": "thread"}):
        dl = wb.loader(ds, batch_size=512, shuffle="full", **kw)
        got = torch.cat([b["y"] for b in dl])
        assert sorted(got.tolist()) == list(range(4096)) and len(dl.stages) == 0
