"""The read-cost arithmetic of ``explore.facts``, held to what the real samplers do."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.explore.facts import ArrayFacts, access_costs, regular_chunks, strip, touched
from workbench.loading.sampling import BatchSampler


def _units_hit(batches, rows_per_unit: int) -> list[int]:
    return [len(np.unique(b // rows_per_unit)) for b in batches]


@pytest.mark.parametrize("units,draws", [(10, 5), (1000, 256), (15_625, 1024), (50, 500)])
def test_touched_is_the_expected_number_of_distinct_units(units, draws):
    rng = np.random.default_rng(0)
    sim = np.mean(
        [len(np.unique(rng.choice(units * 64, draws, replace=False) // 64)) for _ in range(200)]
    )
    assert touched(units, draws) == pytest.approx(sim, rel=0.03)


def test_full_and_block_costs_match_the_real_samplers():
    n, rows_per_unit, b, block_rows = 200_000, 64, 1024, 4096
    f = ArrayFacts(
        "x", (n, 16), "float32", unit="page", unit_rows=float(rows_per_unit), unit_bytes=4096
    )
    costs = access_costs(f, b, block_rows=block_rows, window=8)
    full = BatchSampler(n, b, order="full", seed=0)
    hit = np.mean(_units_hit(list(full)[:-1], rows_per_unit))
    assert costs["full"].units == pytest.approx(hit, rel=0.03)
    # block order: a window's units are read once for all of its batches
    block = list(BatchSampler(n, b, order="block", seed=0, block_rows=block_rows, window=8))[:-1]
    per_window = (8 * block_rows) // b
    windows = [
        np.unique(np.concatenate(block[i : i + per_window]) // rows_per_unit)
        for i in range(0, len(block) - per_window + 1, per_window)
    ]
    amortized = np.mean([len(w) for w in windows]) / per_window
    assert costs["block"].units == pytest.approx(amortized, rel=0.05)
    seq = _units_hit(list(BatchSampler(n, b, order="sequential")), rows_per_unit)
    assert costs["sequential"].units == pytest.approx(sum(seq[:-1]) / (len(seq) - 1), rel=0.1)
    assert costs["sequential"].amplification == pytest.approx(1.0, abs=0.01)


def test_rows_larger_than_a_unit_cross_into_one_more():
    f = ArrayFacts(
        "img", (10_000, 3, 64, 64), "uint8", unit="page", unit_rows=4096 / 12288, unit_bytes=4096
    )
    c = access_costs(f, 32)
    assert c["full"].amplification == pytest.approx((3 + 1) / 3)
    assert c["sequential"].amplification == pytest.approx(1.0)


def test_chunks_aligned_with_blocks_cost_nothing_extra_and_memory_costs_nothing():
    chunked = ArrayFacts(
        "x", (1 << 20, 8), "float32", unit="hdf5 chunk", unit_rows=8192.0, unit_bytes=8192 * 32
    )
    c = access_costs(chunked, 1024, block_rows=8192)
    assert c["block"].amplification == pytest.approx(1.0)
    assert c["full"].amplification == pytest.approx(touched(128, 1024) * 8192 / 1024)
    in_memory = access_costs(ArrayFacts("y", (100, 4), "float32"), 10)
    assert {o: c.amplification for o, c in in_memory.items()} == {
        "sequential": 1.0,
        "block": 1.0,
        "full": 1.0,
    }


def test_sparse_rows_are_costed_at_their_stored_size():
    f = ArrayFacts(
        "tokens",
        (10_000, 1000),
        "float32",
        unit="page",
        unit_rows=4096 / 64,
        unit_bytes=4096,
        stored_row_bytes=64.0,
    )
    assert access_costs(f, 256)["full"].bytes_used == 256 * 64


def test_strip_and_regular_chunks():
    pages = np.zeros(128, bool)
    pages[:64] = True
    assert strip(pages, bins=4) == [1.0, 1.0, 0.0, 0.0]
    assert strip(np.zeros(0, bool)) == []
    assert regular_chunks(10, 4) == (4, 4, 2) and regular_chunks(0, 4) == ()
    assert math.isclose(sum(strip(np.ones(1000, bool), bins=7)), 7)
