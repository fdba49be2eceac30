"""workbench.loading.workers.ranges: under ``torch.profiler`` the loader's stages are
``record_function`` ranges named ``workbench.<stage>``, found in ``key_averages()`` and in the
exported Chrome trace beside the model's own ops; without a profiler no range is opened."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.loading import fetch, passes


def _noisy(batch):
    return [t + 0.0 for t in batch]


def _train(dl, steps: int = 6) -> None:
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    for i, (x, y) in enumerate(dl):
        loss = torch.nn.functional.mse_loss(model(x).squeeze(1), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i + 1 == steps:
            break


def _foreign() -> torch.utils.data.Dataset:
    g = torch.Generator().manual_seed(0)
    return torch.utils.data.TensorDataset(torch.randn(512, 4, generator=g), torch.randn(512))


@pytest.mark.parametrize(
    "options,stages",
    [
        ({"num_workers": 0}, {"sample", "read", "collate", "transform"}),
        ({"num_workers": 2, "worker_type": "thread"}, {"sample", "handoff"}),
    ],
)
def test_the_stages_are_profiler_ranges_beside_the_model(tmp_path, options, stages):
    dl = wb.loader(_foreign(), batch_size=32, transform=_noisy, **options)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        _train(dl)
    keys = {e.key for e in prof.key_averages()}
    assert {f"workbench.{s}" for s in stages} <= keys, sorted(keys)
    assert "aten::mse_loss" in keys  # the model's ops, in the same profile
    prof.export_chrome_trace(str(tmp_path / "kineto.json"))
    names = {e.get("name") for e in json.load(open(tmp_path / "kineto.json"))["traceEvents"]}
    assert {f"workbench.{s}" for s in stages} <= names


def test_our_datasets_read_in_a_range_and_to_device_too_on_cuda(tmp_path):
    ds = wb.open_dataset({"x": np.ones((1024, 4), "float32"), "y": np.zeros(1024, "float32")})
    dl = wb.loader(ds, batch_size=128, num_workers=0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for batch in wb.to_device(dl, device):
            batch["x"].sum()
    keys = {e.key for e in prof.key_averages()}
    assert {"workbench.sample", "workbench.read"} <= keys
    assert ("workbench.to_device" in keys) == torch.cuda.is_available()


def test_without_a_profiler_no_range_is_opened(monkeypatch):
    opened: list[str] = []

    def counting(name: str):
        opened.append(name)
        return torch.profiler.record_function(name)

    monkeypatch.setattr(fetch, "stage_range", counting)
    monkeypatch.setattr(passes, "stage_range", counting)
    for options in ({"num_workers": 0}, {"num_workers": 2, "worker_type": "thread"}):
        _train(wb.loader(_foreign(), batch_size=32, transform=_noisy, **options))
    assert opened == []
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]):
        _train(wb.loader(_foreign(), batch_size=32, transform=_noisy, num_workers=0))
    assert {"workbench.read", "workbench.sample"} <= set(opened)  # the same code, profiled
