"""throughput: every batch is really read, rates count from the first batch, limits are sane."""

from __future__ import annotations

import numpy as np
import torch

from workbench.throughput import consume, measure, memcpy_mb_per_s, sequential_mb_per_s


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
