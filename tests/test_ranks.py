"""Data-parallel ranks for real: ``examples/ddp_train.py`` launched by ``torchrun`` with two gloo
ranks on CPU. The loader takes its rank from the process group; the ranks' rows are disjoint and
cover the epoch with equal batch counts; a run SIGKILLed mid-epoch and resumed from its
checkpoint ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch

import workbench as wb
from workbench.loading.ranks import resolve

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
ROWS, BATCH = 2048, 64


def test_explicit_ranks_win_and_no_group_means_one_rank():
    assert resolve(None, None) == (0, 1)
    assert resolve(3, 4) == (3, 4)
    dl = wb.loader(wb.open_dataset({"x": np.arange(10)}), batch_size=2, rank=1, world_size=2)
    assert (dl.sampler.rank, dl.sampler.world_size) == (1, 2)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(ROWS, 8)).astype("float32")
    wb.convert(
        {"features": x, "label": (x[:, 0] > 0).astype("int64"), "id": np.arange(ROWS)},
        root / "d.store",
        progress=False,
    )
    return root / "d.store"


def _launch(store: Path, out: Path, *extra: str, wait: bool = True) -> subprocess.Popen:
    cmd = [
        TORCHRUN,
        "--standalone",
        "--nproc_per_node=2",
        str(ROOT / "examples" / "ddp_train.py"),
        "--data",
        str(store),
        "--out",
        str(out),
        "--batch-size",
        str(BATCH),
        "--epochs",
        "2",
        "--save-every",
        "4",
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    if wait:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output[-3000:]
    return proc


def _weights(out: Path) -> dict:
    return torch.load(out / "final.pt", weights_only=True)


def test_two_ranks_read_disjoint_halves_and_a_killed_run_resumes_exactly(store, tmp_path):
    whole = tmp_path / "whole"
    _launch(store, whole, "--record", "id")
    per_rank = []
    for r in (0, 1):
        lines = [
            json.loads(line) for line in (whole / f"rows.rank{r}.jsonl").read_text().splitlines()
        ]
        per_rank.append(lines)
    assert len(per_rank[0]) == len(per_rank[1]) == 2 * ROWS // (2 * BATCH)  # equal batch counts
    for epoch in (0, 1):
        a, b = (
            {i for line in lines if line["epoch"] == epoch for i in line["rows"]}
            for lines in per_rank
        )
        assert not a & b and a | b == set(range(ROWS)), epoch  # disjoint, covering
    first = [line["rows"] for line in per_rank[0] if line["epoch"] == 0]
    second = [line["rows"] for line in per_rank[0] if line["epoch"] == 1]
    assert first != second  # a new order each epoch

    killed = tmp_path / "killed"
    proc = _launch(store, killed, "--step-sleep", "0.15", wait=False)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 240:
        marker = killed / "COMMITTED"
        if marker.exists() and json.loads(marker.read_text())["step"] >= 12:
            break
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    ranks = psutil.Process(proc.pid).children(
        recursive=True
    )  # torchrun starts them in new sessions
    for p in [psutil.Process(proc.pid), *ranks]:
        p.send_signal(signal.SIGKILL)  # mid-epoch, no clean-up
    proc.wait(30)
    psutil.wait_procs(ranks, timeout=30)
    assert not [p for p in ranks if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    step = json.loads((killed / "COMMITTED").read_text())["step"]
    assert 12 <= step < 32 and not (killed / "final.pt").exists()
    _launch(store, killed, "--resume")
    resumed, reference = _weights(killed), _weights(whole)
    assert resumed.keys() == reference.keys()
    for k in reference:
        assert torch.equal(resumed[k], reference[k]), k


@pytest.mark.parametrize("before,after", [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_at_another_world_size_reading_the_rest_once(store, before, after):
    """Elastic resume: the rest of the epoch is split between the ranks present now."""

    def loaders(world):
        return [
            wb.loader(
                wb.open_dataset(store),
                batch_size=BATCH,
                shuffle="block",
                seed=3,
                rank=r,
                world_size=world,
                num_workers=2,
            )
            for r in range(world)
        ]

    def ids(batches):
        return [i for b in batches for i in b["id"].tolist()]

    first = loaders(before)
    its = [iter(dl) for dl in first]
    head = [ids([next(it) for _ in range(5)]) for it in its]  # read-ahead threads are further on
    state = json.loads(json.dumps(first[0].state_dict()))
    for dl in first:
        dl.close()
    second = loaders(after)
    for dl in second:
        dl.load_state_dict(state)
    tail = [ids(dl) for dl in second]
    assert len({len(t) for t in tail}) == 1
    read = sorted(i for part in head + tail for i in part)
    assert read == list(range(ROWS))  # every row of the epoch, once
    for dl in second:
        assert dl.state_dict()["epoch"] == 1 and len(dl) == -(-ROWS // (after * BATCH))
