"""``wb.mix``: several datasets drawn by weight, with a single dataset's guarantees through the
loader: exact proportions an epoch, seeded order, ranks disjoint, exact resume, reconfigure, and
larger sources read through over the epochs (also in worker processes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import workbench as wb
from workbench.datasets.mixplan import MixPlan
from workbench.datasets.mixture import mix
from workbench.errors import InvalidInputError


def source(n: int, tag: int, k: int = 3) -> wb.Dataset:
    """Rows whose first value is the row number and second the source tag."""
    x = np.zeros((n, k), "float32")
    x[:, 0], x[:, 1] = np.arange(n), tag
    return wb.open_dataset({"x": x, "y": np.full(n, tag, "int64")})


@pytest.fixture
def ab():
    return {"a": source(900, 0), "b": source(100, 1)}


def rows_of(batches) -> list[tuple[int, int]]:
    """(source, row) of every row delivered."""
    out = []
    for b in batches:
        out += list(zip(b["source"].tolist(), b["x"][:, 0].long().tolist()))
    return out


def test_an_epoch_holds_the_weights_exactly_and_each_row_is_its_sources(ab):
    m = mix(ab, weights={"a": 0.7, "b": 0.3})
    assert len(m) == 333 and m.plan.take == (233, 100)  # b (100 rows, 30 %) runs out first
    got = rows_of(wb.loader(m, batch_size=64, shuffle="full", seed=1))
    assert len(got) == 333
    by = np.bincount([s for s, _ in got])
    assert by.tolist() == [233, 100]
    assert sorted(r for s, r in got if s == 1) == list(range(100))  # b: every row once
    assert len({r for s, r in got if s == 0}) == 233  # a: no row twice
    for b in wb.loader(m, batch_size=50, shuffle="full"):  # columns follow the source
        assert torch.equal(b["y"], b["source"]) and torch.equal(b["x"][:, 1].long(), b["y"])


@pytest.mark.parametrize("order", ["sequential", "block"])
def test_a_batch_of_an_unshuffled_order_holds_the_sources_in_proportion(ab, order):
    m = mix(ab, weights={"a": 0.5, "b": 0.5})
    for b in wb.loader(m, batch_size=40, shuffle=order, block_rows=16):
        share = b["source"].float().mean().item()
        assert abs(share - 0.5) <= (0.1 if order == "sequential" else 0.25), share


def test_a_full_shuffle_batch_is_near_its_weights():
    m = mix({"a": source(20_000, 0), "b": source(20_000, 1)}, weights={"a": 0.8, "b": 0.2})
    shares = [b["source"].float().mean().item() for b in wb.loader(m, batch_size=1000)]
    # binomial: sd of a 1000-row share at p=0.2 is 0.0126; 5 sd
    assert all(abs(s - 0.2) < 0.064 for s in shares), shares
    assert abs(np.mean(shares) - 0.2) < 0.002


@pytest.mark.parametrize("workers", [0, 2])
def test_a_larger_source_is_read_through_over_the_epochs(ab, workers):
    m = mix(ab, weights={"a": 0.5, "b": 0.5})  # 100 of a's 900 rows an epoch
    kw = {"num_workers": workers, "worker_type": "process"} if workers else {}
    dl = wb.loader(m, batch_size=32, shuffle="full", **kw)
    seen = []
    for epoch in range(9):
        got = rows_of(dl)
        assert sorted(r for s, r in got if s == 1) == list(range(100)), epoch
        seen += [r for s, r in got if s == 0]
    dl.close()
    assert sorted(seen) == list(range(900))  # nine epochs: every row of a exactly once


def test_the_epoch_modes_and_what_the_repr_says(ab):
    m = mix(ab, weights={"a": 1, "b": 1}, epoch="replacement")
    assert len(m) == 1000 and m.plan.take == (500, 500)
    got = rows_of(wb.loader(m, batch_size=100))
    assert np.bincount([s for s, _ in got]).tolist() == [500, 500]
    assert len({r for s, r in got if s == 0}) < 450  # 500 draws of a's 900 rows: ~384 distinct
    assert "drawn with replacement" in repr(m)
    m = mix(ab, weights={"a": 3, "b": 1}, epoch=4000)
    assert len(m) == 4000 and m.plan.take == (3000, 1000)
    got = rows_of(wb.loader(m, batch_size=500))
    assert sorted(r for s, r in got if s == 1) == sorted(list(range(100)) * 10)  # 10 passes
    assert "a fixed number of rows" in repr(m) and "  a: 75% (3,000 of 900 rows" in repr(m)
    assert "until a source runs out" in repr(mix(ab))
    assert len(mix(ab)) == 1000  # default weights: the sizes, so one epoch is every row once


def test_the_same_seed_gives_the_same_batches_and_another_seed_others(ab):
    def epoch(seed: int, mix_seed: int = 0):
        return rows_of(wb.loader(mix(ab, seed=mix_seed), batch_size=64, seed=seed))

    assert epoch(3) == epoch(3)
    assert epoch(3) != epoch(4)
    assert sorted(epoch(3, mix_seed=1)) == sorted(epoch(3, mix_seed=2))  # all rows, both


def test_ranks_read_disjoint_rows_that_cover_the_epoch(ab):
    m = mix(ab, weights={"a": 0.6, "b": 0.4})
    parts = [
        rows_of(wb.loader(m, batch_size=16, seed=5, rank=r, world_size=3, drop_last=True))
        for r in range(3)
    ]
    flat = [x for p in parts for x in p]
    assert len(set(flat)) == len(flat)  # disjoint
    assert len(flat) >= len(m) - 3 * 16  # and covering, but for the dropped tail


def test_exact_resume_and_reconfigure_mid_epoch(ab):
    m = mix(ab, weights={"a": 0.7, "b": 0.3})
    whole = rows_of(wb.loader(m, batch_size=32, seed=2))
    dl = wb.loader(m, batch_size=32, seed=2)
    it, head = iter(dl), []
    for _ in range(4):
        head += rows_of([next(it)])
    state = dl.state_dict()
    dl.close()
    again = wb.loader(m, batch_size=32, seed=2)
    again.load_state_dict(state)
    assert head + rows_of(again) == whole  # exact resume: the same rows in the same order
    dl = wb.loader(m, batch_size=32, seed=2)
    it, got = iter(dl), []
    got += rows_of([next(it), next(it)])
    dl.reconfigure(batch_size=50)
    got += rows_of(it)
    assert sorted(got) == sorted(whole)  # every row of the epoch once, whatever the batch size


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=5),
    data=st.data(),
)
def test_shares_over_any_weights_and_sizes(sizes, data):
    w = data.draw(st.lists(st.floats(0.01, 100), min_size=len(sizes), max_size=len(sizes)))
    epoch = data.draw(st.sampled_from(["smallest", "replacement", 777]))
    p = MixPlan(sizes, w, epoch, seed=0)
    assert sum(p.take) == p.rows and len(p.slots()[0]) == p.rows
    if epoch == "smallest":
        assert all(t <= n for t, n in zip(p.take, sizes))
        assert any(t >= n - 1 for t, n in zip(p.take, sizes) if n)  # some source is used up
    else:
        for t, x in zip(p.take, p.weights):
            assert abs(t - x * p.rows) < 1  # the exact share, rounded
    src, rows = p.locate(np.arange(p.rows), epoch=3)
    assert np.bincount(src, minlength=len(sizes)).tolist() == list(p.take)
    assert all((rows[src == s] < n).all() for s, n in enumerate(sizes))


def test_columns_are_matched_by_name_with_an_error_naming_the_difference():
    a = wb.open_dataset({"x": np.zeros((10, 2), "float32"), "y": np.zeros(10, "int64")})
    b = wb.open_dataset({"x": np.zeros((10, 2), "float32"), "z": np.zeros(10, "int64")})
    with pytest.raises(InvalidInputError, match=r"source 'b'.*missing \['y'\]; extra \['z'\]"):
        mix({"a": a, "b": b})
    c = wb.open_dataset({"x": np.zeros((10, 3), "float32"), "y": np.zeros(10, "int64")})
    with pytest.raises(InvalidInputError, match=r"'x' is torch.float32 \[3\] there"):
        mix({"a": a, "c": c})
    with pytest.raises(InvalidInputError, match="one weight per dataset"):
        mix({"a": a}, weights={"b": 1.0})
    with pytest.raises(InvalidInputError, match="positive"):
        mix({"a": a, "a2": a}, weights={"a": 1.0, "a2": 0.0})
    with pytest.raises(InvalidInputError, match="epoch="):
        mix({"a": a}, epoch="forever")


def test_a_plain_torch_dataset_of_dict_items_mixes_too():
    class Items(torch.utils.data.Dataset):
        def __len__(self):
            return 50

        def __getitem__(self, i):
            return {"x": torch.tensor([float(i), 1.0, 0.0]), "y": torch.tensor(1)}

    m = mix({"a": source(50, 0), "b": Items()}, source_column="from")
    b = next(iter(wb.loader(m, batch_size=100)))
    assert sorted(b["x"][b["from"] == 1][:, 0].long().tolist()) == list(range(50))
    assert set(b) == {"x", "y", "from"}


@pytest.mark.parametrize("workers", [0, 2])
def test_each_sources_rows_are_counted_for_the_monitor_and_the_watch(ab, workers):
    from workbench.ui.charts import header

    m = mix(ab, weights={"a": 0.7, "b": 0.3})
    kw = {"num_workers": workers, "worker_type": "process"} if workers else {}
    dl = wb.loader(m, batch_size=37, shuffle="full", **kw)
    with wb.Monitor(dl, interval=0.05) as mon:
        for _ in dl:
            pass
    dl.close()
    assert dl.stats.sources == {"a": 233, "b": 100}
    assert mon.latest()["loader"]["sources"] == {"a": 233, "b": 100}
    assert "a 70%, b 30%" in header(mon.latest(), markup=False)
    assert "sources" not in wb.Monitor(wb.loader(ab["a"])).sample()["loader"]
