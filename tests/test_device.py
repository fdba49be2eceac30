"""workbench.loading.device: CPU passthrough is free and lazy; on CUDA, batches arrive whole, in
order, one batch ahead."""

from __future__ import annotations

import pytest
import torch

from workbench.loading.device import measure_h2d, to_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA fallback")


def batches(n: int, pulled: list[int]):
    for i in range(n):
        pulled.append(i)
        yield {"x": torch.full((4, 3), float(i)), "y": torch.arange(4) + i, "name": f"b{i}"}


def test_cpu_passthrough_same_objects_in_order_lazily():
    source = [{"x": torch.ones(2)}, torch.zeros(3), (torch.ones(1), [torch.zeros(1)])]
    assert all(a is b for a, b in zip(to_device(source, "cpu"), source))
    pulled: list[int] = []
    out = to_device(batches(3, pulled), torch.device("cpu"))
    assert pulled == []  # nothing read before the consumer asks
    next(out)
    assert pulled == [0]


@no_cuda
def test_cuda_without_gpu_passes_through_and_measure_says_unavailable():
    source = [{"x": torch.ones(2)}]
    assert next(to_device(source, "cuda")) is source[0]
    assert measure_h2d(1 << 20, device="cuda") == {"available": False}
    assert measure_h2d(1 << 20, device="cpu") == {"available": False}


def test_other_devices_keep_the_batch_structure():
    out = next(to_device([{"a": (torch.ones(2), [torch.zeros(3)]), "tag": "t"}], "meta"))
    assert out["a"][0].device.type == "meta" and out["a"][1][0].device.type == "meta"
    assert isinstance(out["a"], tuple) and isinstance(out["a"][1], list) and out["tag"] == "t"


@cuda
def test_cuda_batches_equal_source_in_order_one_ahead():
    pulled: list[int] = []
    out = to_device(batches(5, pulled), "cuda")
    for i, batch in enumerate(out):
        assert pulled[-1] == min(i + 1, 4)  # the next batch is already being copied
        assert batch["x"].is_cuda and batch["y"].is_cuda and batch["name"] == f"b{i}"
        assert torch.equal(batch["x"].cpu(), torch.full((4, 3), float(i)))
        assert torch.equal(batch["y"].cpu(), torch.arange(4) + i)


@cuda
def test_cuda_growing_batches_pinned_and_sparse_inputs():
    sizes = [2, 5, 3, 9, 1]
    src = [torch.arange(n * 4, dtype=torch.float32).reshape(n, 4) for n in sizes]
    for got, want in zip(to_device(iter(src), "cuda"), src):
        assert torch.equal(got.cpu(), want)  # staging grew without corrupting earlier copies
    pinned = torch.arange(6.0).pin_memory()
    assert torch.equal(next(to_device([pinned], "cuda")).cpu(), torch.arange(6.0))
    sp = torch.eye(3).to_sparse()
    moved = next(to_device([{"s": sp}], "cuda"))["s"]
    assert moved.is_cuda and moved.is_sparse and torch.equal(moved.to_dense().cpu(), torch.eye(3))


@cuda
def test_cuda_copy_is_visible_to_consumer_stream_work():
    # Heavy work on the consumer stream right after hand-off must see the finished copy.
    src = [torch.full((1 << 20,), float(i)) for i in range(6)]
    for i, x in enumerate(to_device(src, "cuda")):
        assert float((x * 2).sum()) == 2.0 * i * (1 << 20)


@cuda
def test_measure_h2d_reports_both_paths():
    r = measure_h2d(16 << 20, repeats=3)
    assert r["available"] and r["to_device_gbps"] > 0 and r["pinned_copy_gbps"] > 0
    assert r["ratio_to_pinned"] == pytest.approx(r["to_device_gbps"] / r["pinned_copy_gbps"])
