"""throughput: every batch is really read, rates count from the first batch, limits are sane;
compare_orders sets each order against its own limit and the naive Datasets, from one run."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch

import workbench as wb
from workbench.bench.comparison import COMPARED, OrderComparison, Reading
from workbench.bench.limits import compare_orders
from workbench.bench.throughput import consume, measure, memcpy_mb_per_s, sequential_mb_per_s
from workbench.errors import InvalidInputError


def test_consume_reads_every_tensor_and_counts_bytes():
    batch = {"x": torch.ones(4, 3), "y": torch.arange(4), "s": torch.eye(4).to_sparse()}
    rows, nbytes = consume(batch)
    assert rows == 4
    assert nbytes == 4 * 3 * 4 + 4 * 8 + 4 * 4


def test_measure_counts_from_the_first_batch_and_stops():
    batches = ({"x": torch.zeros(10, 2)} for _ in range(100))
    t = measure(batches, max_batches=5)
    assert t.samples == 40 and t.bytes == 4 * 10 * 2 * 4
    assert t.samples_per_s > 0 and t.first_batch_s >= 0


def test_limits_are_positive_and_sequential_runs_for_its_time():
    assert memcpy_mb_per_s(nbytes=8 << 20, repeats=2) > 10
    t = sequential_mb_per_s(np.ones((100, 4), "float32"), 10, max_seconds=0.3)
    assert t.seconds >= 0.25 and t.samples > 100  # several passes over a tiny array


# ---- compare_orders: each order against its own limit and the naive Datasets, one run ----------

ROWS, K = 3000, 8  # 3000 % 256 != 0: the limits must stop at whole batches


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ROWS, K), dtype=np.float32)
    y = rng.integers(0, 4, ROWS)
    wb.convert({"features": x, "label": y}, root / "s.store", target="label", progress=False)
    with h5py.File(root / "s.h5", "w") as f:
        f["features"], f["label"] = x, y
    return root


@pytest.fixture(scope="module")
def comparison(small):
    return compare_orders(
        small / "s.store", batch_size=256, seconds=0.05, rounds=2, hdf5=small / "s.h5"
    )


def test_every_order_has_ours_a_positive_limit_and_a_naive_reader(comparison):
    c = comparison
    assert [r.order for r in c.readings if r.kind == "workbench"] == list(COMPARED)
    for order in COMPARED:
        assert c.limit(order).kind == "limit" and c.limit(order).rows_per_s > 0
        assert c.ours(order).rows_per_s > 0
        assert c.naive(order), order
    names = " ".join(r.name for r in c.readings if r.kind == "naive")
    for cls in ("MemoryMappedDataset", "per-item memmap Dataset", "HDF5Dataset"):
        assert cls in names
    assert (c.rows, c.row_bytes, c.batch_size, c.rounds) == (ROWS, K * 4 + 8, 256, 2)


def test_every_reader_reads_the_same_bytes_per_row(comparison):
    for r in comparison.readings:  # features + label, whoever reads them: like with like
        assert r.mb_per_s * 1e6 / r.rows_per_s == pytest.approx(K * 4 + 8, rel=1e-6), r.name
        assert len(r.runs) == 2 and r.rows_per_s == pytest.approx(sum(r.runs) / 2)  # median


def test_ratios_come_from_the_same_runs_readings(comparison):
    c = comparison
    gathers = [r for r in c.readings if r.kind == "limit" and r.order == "full"]
    assert c.limit("full") == max(gathers, key=lambda r: r.rows_per_s)
    from workbench.datasets.gather import native

    # the compiled gather the readers use is one of the ceilings wherever it is built
    assert (native is not None) == any("compiled take_rows" in r.name for r in gathers)

    def shown(x: float) -> str:
        return f"{x:.2f}x" if x < 10 else f"{x:,.0f}x"

    for order in COMPARED:
        ours, lim = c.ours(order).runs, c.limit(order).runs
        per_round = [a / b for a, b in zip(ours, lim)]  # round by round: same load on both
        assert c.ratios(order) == tuple(per_round)
        assert c.ratio(order) == pytest.approx(sum(per_round) / 2)
        lo, hi = c.spread(order)
        assert (lo, hi) == pytest.approx(
            (
                min(per_round) * 0.75 + max(per_round) * 0.25,
                min(per_round) * 0.25 + max(per_round) * 0.75,
            )
        )
        line = " ".join(c.verdicts()[COMPARED.index(order)].split())
        assert f"= {shown(c.ratio(order))} [{shown(lo)}-{shown(hi)}] " in line
        for r in c.naive(order):
            want = sum(a / b for a, b in zip(ours, r.runs)) / 2
            assert c.ratio(order, r) == pytest.approx(want)
            assert f"{shown(c.ratio(order, r))} [" in line
    text = c.text()
    assert all(len(line) <= 100 for line in text.splitlines())
    assert all(r.name in text for r in c.readings)


def test_the_wording_of_a_known_comparison():
    def rd(name, kind, order, rate):
        return Reading(name, kind, order, rate, rate * 1032 / 1e6, (rate * 1.1, rate, rate * 0.8))

    c = OrderComparison(
        "x.store",
        262_144,
        1032,
        1024,
        0.5,
        3,
        (
            rd("limit: zero-copy read of the same batches", "limit", "sequential", 10e6),
            rd("limit: memcpy of the same batches", "limit", "block", 5e6),
            rd("limit: random gather, np.take on 1 core", "limit", "full", 2e6),
            rd("limit: random gather, torch.index_select on 2 threads", "limit", "full", 2.5e6),
            rd("workbench.loader(shuffle='sequential')", "workbench", "sequential", 9e6),
            rd("workbench.loader(shuffle='block')", "workbench", "block", 4e6),
            rd("workbench.loader(shuffle='full')", "workbench", "full", 2e6),
            rd("naive: seed 001's per-item memmap Dataset", "naive", "full", 50e3),
        ),
    )
    seq, block, full = c.verdicts()
    assert " ".join(seq.split()) == (
        "sequential: 9.00 M rows/s = 0.90x [0.90x-0.90x] a zero-copy read of the same batches "
        "(10.00 M rows/s)"
    )
    assert block.startswith("block: 4.00 M rows/s = 0.80x [0.80x-0.80x] a memcpy of the same")
    assert " ".join(full.split()) == (
        "full shuffle: 2.00 M rows/s = 0.80x [0.80x-0.80x] the random-gather limit (2.50 M "
        "rows/s, torch.index_select on 2 threads); 40x [40x-40x] seed 001's per-item memmap "
        "Dataset"
    )
    assert "15%" in c.table()  # the rounds' interquartile range over their median: 0.15 / 1
    assert dataclasses.replace(c, readings=c.readings[:4]).limit("full").rows_per_s == 2.5e6


def test_bad_arguments_and_missing_columns_raise(small):
    with pytest.raises(InvalidInputError):
        compare_orders(small / "s.store", batch_size=0)
    with pytest.raises(InvalidInputError):
        compare_orders(small / "s.store", rounds=0)
    with pytest.raises(InvalidInputError, match="features="):
        compare_orders(small / "s.store", features="pixels")
