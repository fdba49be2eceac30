"""Properties of workbench.loading.sampling: coverage, reproducibility, rank split, resume,
locality."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import IncompatibleResumeError, InvalidInputError
from workbench.loading.orders import EpochOrder, epoch_order
from workbench.loading.sampling import ORDERS, BatchSampler

shapes = st.tuples(
    st.integers(0, 300),  # num_rows
    st.integers(1, 40),  # batch_size
    st.integers(1, 33),  # block_rows
    st.integers(1, 5),  # window
    st.sampled_from(ORDERS),
    st.integers(0, 2**32),  # seed
    st.integers(0, 50),  # epoch
)
FAST = settings(max_examples=150, deadline=None)


def make(n, b, br, w, order, seed, epoch, **kw):
    s = BatchSampler(n, b, order=order, seed=seed, block_rows=br, window=w, **kw)
    s.set_epoch(epoch)
    return s


def blocks_touched(batch, block_rows):
    return len(np.unique(batch // block_rows))


@FAST
@given(shapes, st.booleans())
def test_single_rank_covers_each_row_once_sorted_full_batches(shape, drop_last):
    n, b = shape[0], shape[1]
    s = make(*shape, drop_last=drop_last)
    batches = list(s)
    assert len(batches) == len(s)
    for batch in batches:
        assert batch.dtype == np.int64
        assert np.all(np.diff(batch) > 0)  # sorted ascending, no duplicates
    sizes = [len(x) for x in batches]
    assert all(size == b for size in sizes[:-1])
    flat = np.concatenate(batches) if batches else np.zeros(0, np.int64)
    if drop_last:
        assert len(batches) == n // b and all(size == b for size in sizes)
        assert len(np.unique(flat)) == len(flat) == (n // b) * b
        assert np.all((flat >= 0) & (flat < n))
    else:
        assert len(batches) == -(-n // b)
        assert np.array_equal(np.sort(flat), np.arange(n))


@FAST
@given(shapes)
def test_batches_are_cut_from_epoch_order(shape):
    n, b, br, w, order, seed, epoch = shape
    g = epoch_order(n, order, seed, epoch, br, w, batch_size=b)
    assert np.array_equal(np.sort(g), np.arange(n))
    for k, batch in enumerate(make(*shape)):
        assert np.array_equal(batch, np.sort(g[k * b : (k + 1) * b]))


@FAST
@given(
    shapes,
    st.lists(st.tuples(st.integers(0, 400), st.integers(1, 50)), min_size=1, max_size=30),
    st.integers(1, 4),
)
def test_a_batch_is_its_positions_sorted_whatever_the_queries(shape, queries, run):
    """EpochOrder.batch sorts runs of batches ahead in one call: any sequence of (start, size)
    queries, aligned or not, past the end or not, gets exactly the sorted positions."""
    n, b, br, w, order, seed, epoch = shape
    if n == 0:
        return
    o = EpochOrder(n, order, seed, epoch, br)
    o.set_segments([(0, o.span(w, b), run)])
    for start, size in queries + [(q[0] + q[1], q[1]) for q in queries]:  # and the next batch
        got = o.batch(start, size)
        assert got.dtype == np.int64
        assert np.array_equal(got, np.sort(o.take(start, start + size)))


@FAST
@given(shapes, st.integers(1, 3), st.integers(1, 4))
def test_every_batch_is_announced_before_it_is_yielded_once_per_window(shape, world, run):
    """A sampler with ``advise`` tells it the next window's storage runs when a window starts
    (and, at a pass's start, the first window's): every row of a batch was announced before the
    batch is yielded; windowed orders only, a few calls a window at most."""
    n, b, br, w, order, seed, epoch = shape
    calls: list[np.ndarray] = []
    s = make(*shape, rank=world - 1, world_size=world, run_rows=run)
    s.advise = lambda starts, lengths: calls.append(
        np.concatenate([np.arange(a, a + k) for a, k in zip(starts, lengths)] + [np.zeros(0, int)])
    )
    announced: set[int] = set()
    count = 0
    for batch in s:
        for c in calls:
            announced.update(c.tolist())
        count, calls[:] = count + len(calls), []
        if order in ("block", "shard"):
            assert set(batch.tolist()) <= announced
    if order not in ("block", "shard"):
        assert count == 0
    elif len(s):
        windows = -(-n // s._epoch_order(epoch).span(w, b))
        assert 1 <= count <= windows + 3  # each window once; the padding's wrap: 2 more
        assert announced <= set(range(n))


@pytest.mark.parametrize("order", ["full", "block"])
def test_epochs_differ_and_reproduce(order):
    args = dict(block_rows=16, window=3, seed=7)
    a, b, c = (epoch_order(1000, order, epoch=e, **args) for e in (0, 1, 0))
    assert np.array_equal(a, c)
    assert not np.array_equal(a, b)
    assert not np.array_equal(a, epoch_order(1000, order, epoch=0, **{**args, "seed": 8}))
    s1, s2 = BatchSampler(1000, 32, order, **args), BatchSampler(1000, 32, order, **args)
    s1.set_epoch(5), s2.set_epoch(5)
    assert all(np.array_equal(x, y) for x, y in zip(s1, s2))


def test_sequential_is_contiguous():
    assert [b.tolist() for b in BatchSampler(7, 3, "sequential")] == [[0, 1, 2], [3, 4, 5], [6]]


@FAST
@given(shapes, st.integers(1, 6), st.booleans())
def test_ranks_equal_counts_disjoint_except_padding(shape, world, drop_last):
    n, b, br, w, order, seed, epoch = shape
    per_rank = [
        list(make(*shape, rank=r, world_size=world, drop_last=drop_last)) for r in range(world)
    ]
    counts = {len(x) for x in per_rank}
    assert len(counts) == 1
    for k in range(counts.pop()):  # the k-th batch has the same size on every rank
        assert len({len(x[k]) for x in per_rank}) == 1
    flat = np.concatenate([np.zeros(0, np.int64)] + [b_ for x in per_rank for b_ in x])
    g = epoch_order(n, order, seed, epoch, br, w, batch_size=b)
    if drop_last:
        kept = (n // (world * b)) * world * b
        assert len(np.unique(flat)) == len(flat) == kept
        assert np.array_equal(np.sort(flat), np.sort(g[:kept]))  # the skipped rows are the tail
    else:
        pad = -(-n // world) * world - n
        assert make(*shape, world_size=world).padded_rows == pad
        # every row once, plus exactly the first `pad` rows of the epoch's order (wrapping) again
        expected = np.concatenate([np.arange(n), np.resize(g, pad) if n else g[:0]])
        assert np.array_equal(np.sort(flat), np.sort(expected))
        assert pad < world


@FAST
@given(shapes, st.integers(1, 3), st.booleans(), st.data())
def test_resume_from_state_matches_uninterrupted(shape, world, drop_last, data):
    rank = data.draw(st.integers(0, world - 1))
    kw = dict(rank=rank, world_size=world, drop_last=drop_last)
    full = list(make(*shape, **kw))
    k = data.draw(st.integers(0, len(full)))
    first = make(*shape, **kw)
    it = iter(first)
    head = [next(it) for _ in range(k)]
    state = json.loads(json.dumps(first.state_dict()))
    assert state["batches_done"] == k and state["epoch"] == shape[-1]
    fresh = BatchSampler(
        shape[0],
        shape[1],
        order=shape[4],
        seed=shape[5],
        block_rows=shape[2],
        window=shape[3],
        **kw,
    )
    fresh.load_state_dict(state)
    fresh.set_epoch(shape[-1])  # a training loop calling set_epoch(same epoch) must keep the resume
    rest = list(fresh)
    assert len(head) + len(rest) == len(full)
    assert all(np.array_equal(x, y) for x, y in zip(head + rest, full))
    assert len(list(fresh)) == len(full)  # the resume point is used once; next pass is whole


def test_set_epoch_to_new_epoch_discards_resume_point():
    s = BatchSampler(100, 10, "full", seed=3)
    s.load_state_dict({"epoch": 2, "batches_done": 4})
    s.set_epoch(3)
    assert len(list(s)) == 10


@FAST
@given(
    st.integers(1, 400),
    st.integers(1, 40),
    st.integers(1, 33),
    st.integers(1, 5),
    st.integers(0, 1000),
    st.booleans(),
    st.integers(1, 3),
    st.data(),
)
def test_block_locality(n, b, br, w, seed, drop_last, world, data):
    rank = data.draw(st.integers(0, world - 1))
    s = BatchSampler(
        n,
        b,
        "block",
        seed=seed,
        block_rows=br,
        window=w,
        drop_last=drop_last,
        rank=rank,
        world_size=world,
    )
    bound = max(w, -(-b // br)) + 1
    batches = list(s)
    for k, batch in enumerate(batches):
        # documented: with W>1 the final batch (partial, or padded by wrapping) may straddle
        if world == 1 or (len(batch) == b and k < len(batches) - 1):
            assert blocks_touched(batch, br) <= bound


def test_block_locality_is_tight_for_realistic_shapes():
    s = BatchSampler(100_000, 256, "block", seed=0, block_rows=1024, window=4)
    touched = [blocks_touched(x, 1024) for x in s]
    assert max(touched) <= 5
    assert np.mean(touched) > 3  # rows do spread over the window's blocks, not one block each
    rows_full = [blocks_touched(x, 1024) for x in BatchSampler(100_000, 256, "full", seed=0)]
    assert min(rows_full) > 50  # contrast: uniform shuffling scatters each batch


def test_block_mixes_across_epochs():
    s = BatchSampler(20_000, 128, "block", seed=1, block_rows=512, window=4)
    firsts, compositions = [], []
    for e in range(4):
        s.set_epoch(e)
        batches = list(s)
        firsts.append(frozenset(batches[0].tolist()))
        compositions.append({frozenset(x.tolist()) for x in batches})
    assert len(set(firsts)) == 4
    for a, c in zip(compositions, compositions[1:]):
        assert len(a & c) == 0  # no batch of one epoch reappears whole in the next


def test_large_n_is_lazy_and_fast():
    import time

    s = BatchSampler(
        50_000_000, 1024, "block", seed=0, block_rows=4096, window=8, world_size=4, rank=3
    )
    t = time.perf_counter()
    it = iter(s)
    for _ in range(50):
        batch = next(it)
    assert time.perf_counter() - t < 2.0
    assert len(batch) == 1024 and len(s) == 50_000_000 // 4 // 1024 + 1


def test_works_as_torch_batch_sampler():
    torch = pytest.importorskip("torch")
    ds = torch.utils.data.TensorDataset(torch.arange(50))
    s = BatchSampler(50, 8, "block", seed=0, block_rows=8, window=2)
    got = [x[0].tolist() for x in torch.utils.data.DataLoader(ds, batch_sampler=s)]
    assert got == [b.tolist() for b in s]


@pytest.mark.parametrize(
    "kw, word",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(block_rows=0), "block_rows"),
        (dict(window=0), "window"),
        (dict(rank=2, world_size=2), "rank"),
        (dict(rank=-1), "rank"),
        (dict(world_size=0), "world_size"),
        (dict(order="random"), "order"),
        (dict(num_rows=-1), "num_rows"),
        (dict(seed=-3), "seed"),
        (dict(batch_size=2.5), "batch_size"),
    ],
)
def test_invalid_arguments(kw, word):
    args = {"num_rows": 10, "batch_size": 2, **kw}
    with pytest.raises(InvalidInputError, match=word) as e:
        BatchSampler(**args)
    assert "pass" in str(e.value)


def test_incompatible_state_rejected():
    state = BatchSampler(100, 10, "full").state_dict()
    with pytest.raises(IncompatibleResumeError, match="seed: saved 0 now 4"):
        BatchSampler(100, 10, "full", seed=4).load_state_dict(state)
    with pytest.raises(InvalidInputError, match="batches_done"):
        BatchSampler(100, 10, "full").load_state_dict({**state, "batches_done": 11})


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 300),
    b=st.integers(1, 17),
    w1=st.integers(1, 4),
    w2=st.integers(1, 4),
    order=st.sampled_from(ORDERS),
    drop_last=st.booleans(),
    seed=st.integers(0, 99),
    frac=st.floats(0, 1),
)
def test_elastic_resume_reads_the_rest_of_the_epoch_once(
    n, b, w1, w2, order, drop_last, seed, frac
):
    """A state saved at world size w1 resumes at w2: every remaining row is read once."""
    kw = dict(order=order, seed=seed, block_rows=8, window=2, drop_last=drop_last)
    first = [BatchSampler(n, b, rank=r, world_size=w1, **kw) for r in range(w1)]
    for s in first:
        s.set_epoch(3)
    k = int(frac * len(first[0]))
    head = [list(itertools.islice(iter(s), k)) for s in first]
    state = json.loads(json.dumps(first[0].state_dict()))
    assert all(s.state_dict()["rows_done"] == state["rows_done"] for s in first)  # one global fact
    second = [BatchSampler(n, b, rank=r, world_size=w2, **kw) for r in range(w2)]
    for s in second:
        s.load_state_dict(state)
        s.set_epoch(3)  # the training loop's call keeps the resume point
    tail = [list(s) for s in second]
    assert len({len(t) for t in tail}) == 1  # every rank gets the same number of batches
    rows = np.concatenate(
        [np.concatenate(x) if x else np.zeros(0, np.int64) for x in head + tail]
    ).astype(np.int64)
    counts = np.bincount(rows, minlength=n)
    if drop_last:
        assert counts.max(initial=0) <= 1  # nothing read twice
        assert n - counts.sum() < w1 * b + w2 * b  # only the tails too short for a full batch
    else:
        assert counts.min() >= 1  # the whole epoch is read
        assert counts.sum() - n <= (w1 - 1) + (w2 - 1)  # DistributedSampler-style padding only
    for s in second:  # the next epoch is whole again
        s.set_epoch(4)
        assert len(s) == len(BatchSampler(n, b, rank=s.rank, world_size=w2, **kw))


def test_an_old_state_without_rows_cannot_resume_at_another_world_size():
    state = BatchSampler(100, 10, world_size=2).state_dict()
    del state["rows_done"]
    with pytest.raises(IncompatibleResumeError, match="only at its own world_size=2"):
        BatchSampler(100, 10, world_size=1).load_state_dict(state)


@FAST
@given(
    shards=st.lists(st.integers(1, 60), min_size=1, max_size=12),
    b=st.integers(1, 20),
    w=st.integers(1, 3),
    seed=st.integers(0, 99),
    world=st.integers(1, 3),
    data=st.data(),
)
def test_shard_order_reads_each_row_once_and_each_shard_in_at_most_two_windows(
    shards, b, w, seed, world, data
):
    n = sum(shards)
    rank = data.draw(st.integers(0, world - 1))
    s = BatchSampler(
        n, b, "shard", seed=seed, window=w, shard_rows=shards, rank=rank, world_size=world
    )
    if world == 1:
        rows = np.concatenate(list(s))
        assert sorted(rows.tolist()) == list(range(n))
    order = s._epoch_order(0)
    starts = np.concatenate([[0], np.cumsum(shards)])
    shard_of = np.searchsorted(starts, np.arange(n), side="right") - 1
    windows_of: dict[int, set[int]] = {}
    for pos in range(n):
        windows_of.setdefault(int(shard_of[order.take(pos, pos + 1)[0]]), set()).add(
            pos // order.span(w, b)
        )
    assert all(len(ws) <= 2 and max(ws) - min(ws) <= 1 for ws in windows_of.values())


def test_shard_order_needs_sizes_that_add_up():
    with pytest.raises(InvalidInputError, match="shard_rows sum to 5, not num_rows=6"):
        BatchSampler(6, 2, "shard", shard_rows=[2, 3])
    assert sorted(
        np.concatenate(list(BatchSampler(10, 3, "shard", block_rows=4))).tolist()
    ) == list(range(10))


changes = st.lists(
    st.tuples(
        st.integers(0, 6),  # batches before the change
        st.one_of(st.none(), st.integers(1, 40)),  # new batch_size
        st.one_of(st.none(), st.integers(1, 5)),  # new window
        st.one_of(st.none(), st.integers(1, 9)),
    ),  # new run_rows
    max_size=6,
)


@FAST
@given(shapes, changes, st.integers(1, 3), st.booleans(), st.data())
def test_reconfigure_mid_epoch_reads_every_row_exactly_once(shape, plan, world, drop_last, data):
    """Random sequences of batch size and window changes: coverage stays exact, every rank gets
    the same batches, and a state saved after any change resumes to the same rows."""
    n = shape[0]
    samplers = [make(*shape, rank=r, world_size=world, drop_last=drop_last) for r in range(world)]
    its = [iter(s) for s in samplers]
    got: list[list[np.ndarray]] = [[] for _ in samplers]
    save_at = data.draw(st.integers(0, len(plan)))
    saved = None
    for i, (steps, b, w, run) in enumerate(plan):
        for r, it in enumerate(its):
            got[r] += list(itertools.islice(it, steps))
        if i == save_at:
            saved = (json.loads(json.dumps(samplers[0].state_dict())), len(got[0]))
        done = samplers[0].batches_done
        for s in samplers:
            s.reconfigure(done, batch_size=b, window=w, run_rows=run)
        its = [iter(s) for s in samplers]
        assert {len(s) for s in samplers} == {len(samplers[0])}
    for r, it in enumerate(its):
        got[r] += list(it)
    assert len({len(g) for g in got}) == 1
    for k in range(len(got[0])):  # the k-th batch has the same size on every rank
        assert len({len(g[k]) for g in got}) == 1
    rows = np.concatenate([np.zeros(0, np.int64)] + [x for g in got for x in g])
    counts = np.bincount(rows, minlength=n)
    if drop_last:
        assert counts.max(initial=0) <= 1
    elif world == 1:
        assert np.array_equal(counts, np.ones(n, np.int64))
    else:
        assert counts.min(initial=1) >= 1 and counts.sum() - n < world
    if saved is not None and world == 1:
        state, k = saved
        fresh = BatchSampler(
            n,
            shape[1],
            order=shape[4],
            seed=shape[5],
            block_rows=shape[2],
            window=shape[3],
            drop_last=drop_last,
        )
        fresh.load_state_dict(state)
        rest = np.concatenate([np.zeros(0, np.int64)] + list(fresh))
        head = np.concatenate([np.zeros(0, np.int64)] + got[0][:k])
        both = np.sort(np.concatenate([head, rest]))
        if drop_last:
            assert len(np.unique(both)) == len(both)
        else:
            assert np.array_equal(both, np.arange(n))


def test_reconfigure_keeps_batches_inside_windows_after_the_change():
    s = BatchSampler(100_000, 256, "block", seed=0, block_rows=1024, window=4)
    it = iter(s)
    before = [blocks_touched(next(it), 1024) for _ in range(37)]
    s.reconfigure(37, batch_size=512, window=2)
    after = [blocks_touched(x, 1024) for x in s]
    # rows 9472..12288 finish the old window (5 batches of 512 and one straddling the next
    # window); then windows of 2 blocks: at most 3 blocks per batch (they need not align)
    assert max(before) <= 5 and max(after[:6]) <= 4 + 5 and max(after[6:]) <= 3
    assert max(after[:5]) <= 5


def test_order_change_applies_from_the_next_epoch():
    s = BatchSampler(100, 10, "sequential")
    first = next(iter(s))
    s.reconfigure(1, order="full")
    assert np.array_equal(np.concatenate([first, *s]), np.arange(100))  # still sequential
    s.set_epoch(1)
    assert s.order == "full" and not np.array_equal(np.concatenate(list(s)), np.arange(100))


@FAST
@given(shapes, st.integers(1, 12))
def test_runs_cover_each_row_once_and_come_in_contiguous_pieces(shape, run):
    n, b, br = shape[0], shape[1], shape[2]
    s = make(*shape[:4], "block", *shape[5:], run_rows=run)
    batches = list(s)
    flat = np.concatenate([np.zeros(0, np.int64)] + batches)
    assert np.array_equal(np.sort(flat), np.arange(n))
    for batch in batches:  # each batch is at most ceil(b/run)+1 runs, each split by block edges
        pieces = 1 + int(np.sum(np.diff(batch) != 1)) if len(batch) else 0
        assert pieces <= 2 * (-(-b // run) + 1) + b // max(1, br)


def test_shuffle_quality_ranks_the_orders():
    from workbench.loading.orders import shuffle_quality

    n, b = 100_000, 1024
    q = {
        name: shuffle_quality(
            list(BatchSampler(n, b, order, seed=0, block_rows=1024, window=8, run_rows=r)), n
        )
        for name, order, r in [
            ("seq", "sequential", 1),
            ("full", "full", 1),
            ("block", "block", 1),
            ("runs", "block", 64),
        ]
    }
    assert q["seq"] < 0.05 and abs(q["full"] - 1) < 0.05
    assert 0.8 < q["block"] < 0.95 and q["runs"] < q["block"]
    assert abs(q["runs"] - (1 - 1 / 8) * (1 - 64 / b)) < 0.1  # the documented estimate
