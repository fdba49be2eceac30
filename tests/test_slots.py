"""Worker processes hand batches over through reused shared-memory slots: the data is exactly the
thread path's, batches the consumer keeps are never overwritten, and what does not fit a slot
(other shapes, non-tensors) still arrives through torch's own path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.loading.workers.slots import LEND, Full, Slots

N = 5000


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(0)
    return wb.open_dataset({"x": rng.random((N, 7), dtype="float32"), "y": np.arange(N)})


def test_kept_batches_from_processes_equal_the_thread_path(ds):
    kw = dict(batch_size=64, shuffle="full", seed=4, num_workers=2, prefetch_factor=2)
    kept = list(wb.loader(ds, worker_type="process", **kw))  # all kept: slots reused meanwhile
    ref = list(wb.loader(ds, worker_type="thread", **kw))
    assert len(kept) == len(ref) == -(-N // 64)
    for a, b in zip(kept, ref):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])


def test_a_bigger_batch_after_a_change_gets_a_new_ring(ds):
    dl = wb.loader(
        ds,
        batch_size=50,
        shuffle="block",
        num_workers=2,
        worker_type="process",
        persistent_workers=True,
    )
    it = iter(dl)
    got = [next(it)["y"] for _ in range(5)]
    dl.reconfigure(batch_size=700)  # the kept workers' rings are too small: they grow
    got += [b["y"] for b in it]
    assert sorted(torch.cat(got).tolist()) == list(range(N))
    assert {len(g) for g in got[6:-1]} == {700}
    dl.close()


class Words(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 300

    def __getitem__(self, i: int):
        return {"id": i, "word": f"w{i}"}  # strings collate to a list: not a slot's kind


def test_batches_that_are_not_tensors_take_torchs_path():
    dl = wb.loader(
        Words(), batch_size=32, shuffle="sequential", num_workers=2, worker_type="process"
    )
    batches = list(dl)
    assert batches[0]["word"][:2] == ["w0", "w1"]
    assert torch.cat([b["id"] for b in batches]).tolist() == list(range(300))


def test_slots_refuse_what_does_not_fit():
    ring = Slots.for_batch({"x": torch.zeros(4, 3)}, rows=4, count=2)
    assert ring.write(0, {"x": torch.zeros(5, 3)}) is None  # too many rows
    assert ring.write(0, {"x": torch.zeros(2, 4)}) is None  # another row shape
    assert ring.write(0, {"x": torch.zeros(2, 3, dtype=torch.float64)}) is None
    assert ring.write(0, {"z": torch.zeros(2, 3)}) is None  # other keys
    assert Slots.for_batch({"x": torch.zeros(4, 3), "n": torch.zeros(1)}, 4, 2) is None
    pairs = Slots.for_batch((torch.zeros(4, 3),), rows=4, count=2)
    ref = pairs.write(3, (torch.ones(2, 3),))
    out = pairs.read(ref)
    pairs.write(1, (torch.zeros(2, 3),))  # the same slot, reused: the copy out is unaffected
    assert isinstance(out, tuple) and out[0].sum() == 6


def test_a_loop_left_early_keeps_the_persistent_workers(ds):
    import gc

    dl = wb.loader(
        ds,
        batch_size=100,
        shuffle="full",
        num_workers=2,
        worker_type="process",
        persistent_workers=True,
    )
    for k, _ in enumerate(dl):  # a whole epoch
        pass
    pids = set(dl.worker_pids())
    for k, _ in enumerate(dl):  # left early: the dropped pass is collected
        if k == 3:
            break
    gc.collect()
    assert set(dl.worker_pids()) == pids  # not force-stopped by the collected pass
    rows = torch.cat([b["y"] for b in dl])  # and the next pass runs on them
    assert len(rows) > 0 and set(dl.worker_pids()) == pids
    dl.close()


def test_a_lent_batch_keeps_its_slot_until_it_and_its_views_are_freed():
    import gc

    ring = Slots.for_batch({"x": torch.zeros(4, 3)}, rows=4, count=3)
    first = ring.read(ring.write(0, {"x": torch.ones(4, 3)}))["x"]
    view = first[1:]  # a view of the lent batch holds the slot as well
    del first
    gc.collect()
    for k in range(1, 7):  # more writes than slots: the held one is never written over
        got = ring.read(ring.write(k, {"x": torch.full((4, 3), float(k))}))["x"]
        assert got.sum() == 12 * k
        del got
    assert view.sum() == 9 and ring.busy[0] == 2
    del view
    gc.collect()
    assert ring.busy.tolist() == [0, 0, 0]


def test_a_consumer_keeping_every_batch_gets_copies_beyond_the_lent_ones():
    ring = Slots.for_batch({"x": torch.zeros(2, 2)}, rows=2, count=3)
    kept = [ring.read(ring.write(k, {"x": torch.full((2, 2), float(k))}))["x"] for k in range(8)]
    assert [float(t[0, 0]) for t in kept] == list(range(8))  # none written over
    assert int((ring.busy == 2).sum()) == LEND  # the rest were copied out and their slots freed


def test_every_slot_written_and_unread_is_full_until_a_new_pass_forgets_them():
    ring = Slots.for_batch({"x": torch.zeros(2, 2)}, rows=2, count=2)
    lent = ring.read(ring.write(0, {"x": torch.ones(2, 2)}))
    ring.write(1, {"x": torch.ones(2, 2)})  # written, never read (its pass was left early)
    with pytest.raises(Full):
        ring.write(2, {"x": torch.ones(2, 2)})
    ring.forget_unread()
    assert ring.busy.tolist() == [2, 0]  # the lent one is still held
    assert ring.write(2, {"x": torch.ones(2, 2)}).slot == 1
    del lent


def test_passes_left_early_leave_no_slot_taken(ds):
    import gc

    dl = wb.loader(
        ds,
        batch_size=64,
        shuffle="full",
        num_workers=2,
        worker_type="process",
        persistent_workers=True,
        seed=1,
    )
    for _ in range(3):  # each leaves batches written into slots that nobody will read
        for k, _b in enumerate(dl):
            if k == 2:
                break
    rows = torch.cat([b["y"] for b in dl])  # a whole epoch on the same workers
    assert sorted(rows.tolist()) == list(range(N))
    gc.collect()
    rings = dl._feed.kept.rings
    del _b  # the last batch of the last pass left early, still lent
    gc.collect()
    assert len(rings) == 2 and all(not r.busy.any() for r in rings.values())
    print([r.count for r in rings.values()])
    dl.close()
