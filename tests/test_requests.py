"""The worker side of a request, run here in the test's own process: a group of batches, each
read into a free slot of the worker's ring (our datasets straight into it), and the main side's
Feed that groups an epoch's batches."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.loading.fetch import Fetch
from workbench.loading.workers import requests as _requests
from workbench.loading.workers.slots import SlotRef


@pytest.fixture()
def ring_state(monkeypatch):
    state = _requests.WorkerState()
    monkeypatch.setattr(_requests, "_WORKER", state)  # a fresh "worker"
    return state


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(1)
    return wb.open_dataset({"x": rng.random((2000, 5), dtype="float32"), "y": np.arange(2000)})


def _group(rows, pass_no=1):
    return [
        _requests.BatchRequest(np.asarray(r, np.int64), 0, k, pass_no) for k, r in enumerate(rows)
    ]


def test_a_group_lands_in_slots_and_our_batches_are_read_straight_into_them(
    ring_state, ds, monkeypatch
):
    fetch = Fetch(ds, None, None, 0, False)
    assert fetch.fills
    rows = [[5, 1, 9], [7, 7, 0], [1999, 3, 4]]
    first = _requests.FetchDataset(fetch, slots=2).__getitems__(_group(rows))
    ring = ring_state.ring
    assert ring.count == 2 * 3 + _requests.LEND
    assert all(type(item) is _requests.InSlot for item in first)
    assert first[0].ring is ring  # the ring travels with the pass's first message
    assert all(item.ring is None and isinstance(item.ref, SlotRef) for item in first[1:])

    def no_read(*_):
        raise AssertionError("read as a batch of its own, then copied")

    monkeypatch.setattr(Fetch, "__call__", no_read)  # from here on, straight into the slots
    second = _requests.FetchDataset(fetch, slots=2).__getitems__(_group(rows[::-1]))
    assert all(isinstance(item.ref, SlotRef) and item.ring is None for item in second)
    for item, r in zip(second, rows[::-1]):
        batch = ring.read(item.ref)
        np.testing.assert_array_equal(batch["x"].numpy(), ds.get_batch(r)["x"].numpy())
        assert batch["y"].tolist() == r


def test_a_transform_is_read_as_usual_then_copied_in(ring_state, ds):
    fetch = Fetch(ds, None, lambda b: {**b, "x": b["x"] * 2}, 0, False)
    assert not fetch.fills
    got = _requests.FetchDataset(fetch, slots=2).__getitems__(_group([[3, 4]]))
    batch = ring_state.ring.read(got[0].ref)
    np.testing.assert_array_equal(batch["x"].numpy(), ds.get_batch([3, 4])["x"].numpy() * 2)


def test_a_new_pass_sends_the_ring_again_and_frees_what_was_left_unread(ring_state, ds):
    fetch = Fetch(ds, None, None, 0, False)
    reader = _requests.FetchDataset(fetch, slots=1)
    reader.__getitems__(_group([[1], [2]], pass_no=1))  # never read: torch dropped them
    ring = ring_state.ring
    assert int((ring.busy == 1).sum()) == 2
    again = reader.__getitems__(_group([[3], [4]], pass_no=2))
    assert again[0].ring.same(ring) and again[1].ring is None
    assert int((ring.busy == 1).sum()) == 2  # the two of this pass only


def test_the_feed_groups_each_pass_and_numbers_it():
    feed = _requests.Feed(size=3)
    keys = [(np.arange(k, k + 2), 0, k) for k in range(7)]
    feed.start(iter(keys))
    groups = list(feed)
    assert [len(g) for g in groups] == [3, 3, 1] and {req.pass_no for g in groups for req in g} == {
        1
    }
    assert all(type(req) is _requests.BatchRequest for g in groups for req in g)
    assert [req.k for g in groups for req in g] == list(range(7))
    assert len(feed.sent) == 7  # every batch sent, oldest first, for error messages
    feed.start(iter(keys[:2]))
    assert [req.pass_no for g in feed for req in g] == [2, 2]
