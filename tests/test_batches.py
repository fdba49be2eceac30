"""workbench.loading.batches: the one walker over a batch's tensors, and what is built on it
(a batch's bytes, pinning; ``to_device`` and the default training step use it too)."""

from __future__ import annotations

from typing import NamedTuple

import torch

from workbench.loading.batches import batch_nbytes, map_tensors, pin
from workbench.loading.device import to_device
from workbench.tuning.training import read


class Pair(NamedTuple):
    x: torch.Tensor
    y: torch.Tensor


def _batch():
    sparse = torch.sparse_coo_tensor([[0, 2]], torch.ones(2), (4,))
    return {
        "x": torch.ones(4, 2),
        "nested": [Pair(torch.zeros(4), torch.arange(4)), "tag"],
        "sparse": sparse,
        "n": 3,
    }


def test_every_tensor_is_mapped_in_the_same_containers_and_the_rest_kept():
    out = map_tensors(_batch(), lambda t: t.shape)
    assert out["x"] == (4, 2) and out["n"] == 3 and out["nested"][1] == "tag"
    assert isinstance(out["nested"], list) and type(out["nested"][0]) is Pair
    assert out["nested"][0].y == (4,) and out["sparse"] == (4,)
    paths = map_tensors(_batch(), lambda p, t: p, paths=True)
    assert paths["nested"][0] == Pair(("nested", 0, 0), ("nested", 0, 1))


def test_bytes_pinning_and_devices_walk_named_tuples_too():
    b = _batch()
    assert batch_nbytes(b) == 4 * 2 * 4 + 4 * 4 + 4 * 8 + (
        2 * 8 + 2 * 4
    )  # sparse: indices + values
    assert batch_nbytes(Pair(torch.zeros(4), torch.arange(4))) == 16 + 32
    if torch.cuda.is_available():  # pinning needs a CUDA host allocator
        pinned = pin(b)
        assert pinned["x"].is_pinned() and pinned["nested"][0].y.is_pinned()
    moved = next(to_device([b], "meta"))
    assert moved["x"].device.type == "meta" and moved["nested"][0].x.device.type == "meta"
    assert moved["nested"][1] == "tag" and moved["n"] == 3
    read(b)  # the default step reads nested tensors and leaves the rest alone
