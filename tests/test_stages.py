"""workbench.monitoring.stages: the stage window and the verdict on built cases of known cause.

These cases give the verdict the stage means each cause produces and check it names the cause and
the change that moves it (tests/test_bottleneck.py builds the causes for real).
"""

from __future__ import annotations

import pytest

from workbench.monitoring.stages import PRODUCER, STAGES, StageWindow, verdict


def _means(**ms: float) -> dict[str, float]:
    return {s: ms.get(s, 0.0) / 1e3 for s in STAGES}


def test_the_window_keeps_the_last_batches_and_means_per_stage():
    w = StageWindow(size=3)
    for t in (1.0, 2.0, 3.0, 4.0):
        w.add({"read": t, "step": 1.0, "unknown": 9.0})
    assert len(w) == 3
    m = w.means()
    assert m["read"] == pytest.approx(3.0) and m["step"] == 1.0 and "unknown" not in m
    shares = w.shares()
    assert set(shares) == set(PRODUCER) and shares["read"] == pytest.approx(1.0)


def test_an_empty_window_is_no_verdict_of_input():
    v = verdict(StageWindow().means(), workers=0, worker_type="thread", cores=2)
    assert v.bound == "compute" and v.change == {}


def test_a_slow_consumer_is_compute_bound_leave_the_loader():
    v = verdict(_means(read=0.2, wait=0.01, step=20.0), workers=0, worker_type="thread", cores=2)
    assert v.bound == "compute" and "not the bottleneck" in v.advice and v.change == {}


def test_a_slow_python_transform_on_one_thread_goes_to_processes():
    v = verdict(
        _means(read=1.0, transform=7.0, wait=6.0, step=2.0),
        workers=0,
        worker_type="thread",
        cores=4,
    )
    assert (v.bound, v.stage) == ("input", "transform") and v.share == pytest.approx(7 / 8)
    assert v.change == {"worker_type": "process", "num_workers": 4}
    assert "transform is 88% of each batch" in str(v) and "one thread" in str(v)


def test_a_transform_already_in_enough_processes_asks_for_a_cheaper_transform():
    v = verdict(
        _means(transform=7.0, wait=6.0, step=2.0), workers=4, worker_type="process", cores=4
    )
    assert v.stage == "transform" and v.change == {} and "cheaper" in v.advice


def test_cold_storage_reads_in_block_order():
    v = verdict(
        _means(read=9.0, collate=0.5, wait=8.0, step=1.0),
        workers=2,
        worker_type="thread",
        cores=2,
        resident=0.05,
    )
    assert v.stage == "read" and v.change == {"shuffle": "block"}
    assert "5% of the files are in the page cache" in v.evidence


def test_tiny_batches_grow():
    v = verdict(
        _means(sample=0.02, read=0.01, handoff=0.05, wait=0.06, step=0.02),
        workers=2,
        worker_type="thread",
        cores=2,
        batch_rows=8,
    )
    assert v.stage == "handoff" and v.change == {"batch_size": 256}


def test_a_slow_remote_raises_the_cache():
    v = verdict(
        _means(read=30.0, wait=25.0, step=5.0),
        workers=2,
        worker_type="thread",
        cores=2,
        remote=True,
    )
    assert v.stage == "read" and "cache_bytes" in v.advice and v.change == {}


@pytest.mark.parametrize(
    "stage,change",
    [("to_device", {"pin_memory": True}), ("collate", {"collate_fn": None})],
)
def test_the_copy_and_the_collate_have_their_own_fix(stage, change):
    v = verdict(
        _means(**{stage: 5.0}, read=1.0, wait=5.0, step=1.0),
        workers=2,
        worker_type="thread",
        cores=2,
    )
    assert v.stage == stage and v.change == change


def test_a_warm_read_on_one_thread_adds_readers_and_saturated_ones_say_so():
    v = verdict(_means(read=5.0, wait=4.0, step=1.0), workers=0, worker_type="thread", cores=2)
    assert v.change == {"worker_type": "thread", "num_workers": 2}
    v = verdict(_means(read=5.0, wait=4.0, step=1.0), workers=2, worker_type="thread", cores=2)
    assert v.change == {} and "saturated" in v.advice


def test_to_device_records_join_the_means_and_leave_the_step():
    w = StageWindow()
    w.push(((0.001, 0.002, 0.0, 0.0, 0.0005), 0.003, 0.010, None))
    w.push_device((5.0, 0.002, 0.001))  # started, host seconds, seconds the copy took on a GPU
    m = w.means()
    assert m["to_device"] == pytest.approx(0.003) and m["step"] == pytest.approx(0.008)
    assert m["handoff"] == 0.0005 and len(w.records()) == 1 and len(w.device_records()) == 1
    w.clear()
    assert w.means()["to_device"] == 0.0 and w.device_records() == []


def test_tiny_batches_that_cost_little_are_overhead_whatever_stage_leads():
    v = verdict(_means(sample=0.01, read=0.03, wait=0.05, step=0.001), **_ONE, batch_rows=8)
    assert v.change == {"batch_size": 256} and "batches of 8 rows take 40 us" in v.evidence


def test_worker_processes_whose_handoff_dominates_go_to_threads():
    v = verdict(
        _means(read=0.05, handoff=0.2, wait=0.2, step=0.5),
        workers=2,
        worker_type="process",
        cores=2,
        batch_rows=1024,
    )
    assert v.stage == "handoff" and v.change == {"worker_type": "thread", "num_workers": 2}


def test_a_transform_on_threads_is_blamed_for_the_gil_the_reads_wait_on():
    v = verdict(
        _means(read=0.5, transform=0.35, wait=0.6, step=0.1),
        workers=2,
        worker_type="thread",
        cores=2,
    )
    assert v.stage == "transform" and v.change["worker_type"] == "process"


def test_what_was_not_measured_is_said():
    v = verdict(
        _means(read=1.0, wait=1.0, step=1.0), **_ONE, note="no GPU: host-to-device not measured"
    )
    assert str(v).endswith("(no GPU: host-to-device not measured)")
    v = verdict(_means(wait=1.0, step=1.0), workers=2, worker_type="process", cores=2)
    assert v.bound == "input" and v.stage == "" and "WB_STAGE_TIMES=1" in v.advice


_ONE = {"workers": 0, "worker_type": "thread", "cores": 2}


def test_choosing_rows_that_costs_more_than_reading_them_grows_the_batches():
    v = verdict(_means(sample=0.6, read=0.1, wait=0.7, step=0.01), **_ONE, batch_rows=256)
    assert v.stage == "sample" and v.change == {"batch_size": 1024}
