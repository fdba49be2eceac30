"""The mergeable statistics equal NumPy's, whatever the chunking; the sampled quantiles stay
within their stated error."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from workbench.explore.moments import merge, partial, sample_rows, summary


def _reduce(x: np.ndarray, cuts: list[int]) -> dict[str, np.ndarray]:
    edges = [0, *sorted(set(cuts)), len(x)]
    parts = [partial(x[a:b], i, seed=3) for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]
    total = parts[0]
    for p in parts[1:]:
        total = merge(total, p)
    return summary(total)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 400),
    features=st.integers(1, 4),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 400), max_size=6),
    odd=st.floats(0, 0.2),
)
@example(rows=1, features=1, seed=0, cuts=[], odd=0.125)  # no finite value in any column
def test_any_chunking_gives_numpys_figures(rows, features, seed, cuts, odd):
    rng = np.random.default_rng(seed)
    x = rng.normal(5, 3, (rows, features)) * rng.choice([1e-3, 1, 1e6])
    x[rng.random(x.shape) < odd] = np.nan
    x[rng.random(x.shape) < odd / 2] = np.inf
    x[rng.random(x.shape) < odd / 2] = 0.0
    s = _reduce(x, [c for c in cuts if c < rows])
    finite = np.where(np.isfinite(x), x, np.nan)
    has = np.isfinite(x).any(0)
    np.testing.assert_array_equal(s["count"], np.isfinite(x).sum(0))
    np.testing.assert_array_equal(s["nan"], np.isnan(x).sum(0))
    np.testing.assert_array_equal(s["inf"], np.isinf(x).sum(0))
    np.testing.assert_array_equal(s["zero_fraction"], (x == 0).sum(0) / rows)
    with np.errstate(all="ignore"):
        mean, std = np.nanmean(finite, 0), np.nanstd(finite, 0)
    scale = np.nanmax(np.abs(finite), 0, initial=1.0)
    np.testing.assert_allclose(
        s["mean"][has], mean[has], rtol=1e-9, atol=1e-12 * scale[has].max(initial=1.0)
    )
    np.testing.assert_allclose(
        s["std"][has], std[has], rtol=1e-7, atol=1e-9 * scale[has].max(initial=1.0)
    )
    np.testing.assert_array_equal(s["min"][has], np.nanmin(finite[:, has], 0))
    np.testing.assert_array_equal(s["max"][has], np.nanmax(finite[:, has], 0))
    for j in np.flatnonzero(has):  # every row is in the sample here: quantiles are exact
        col = finite[:, j][~np.isnan(finite[:, j])]
        np.testing.assert_allclose(
            [s["p1"][j], s["p50"][j], s["p99"][j]], np.quantile(col, [0.01, 0.5, 0.99])
        )
        assert s["hist_counts"][j].sum() == np.isfinite(x[:, j]).sum()
    assert np.all(np.isnan(s["mean"][~has]))


def test_quantiles_of_a_big_column_are_within_their_error():
    x = np.random.default_rng(0).random((300_000, 1))
    s = _reduce(x, [100_000, 200_000])
    k = sample_rows(1)
    for q, name in ((0.01, "p1"), (0.5, "p50"), (0.99, "p99")):
        # uniform data: a value is its own rank; allow 4 standard errors of the sample's rank
        assert abs(s[name][0] - q) < 4 * np.sqrt(q * (1 - q) / k)


def test_merging_is_associative_and_keeps_the_same_sample():
    x = np.random.default_rng(1).random((3000, 2))
    a, b, c = (partial(x[i : i + 1000], i // 1000) for i in (0, 1000, 2000))
    left, right = merge(merge(a, b), c), merge(a, merge(b, c))
    np.testing.assert_allclose(left.m2, right.m2)
    np.testing.assert_array_equal(left.keys, right.keys)
    np.testing.assert_array_equal(left.sample, right.sample)
