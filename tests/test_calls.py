"""workbench.loading.calls: the one ``wb.loader(...)`` line builder. Every line it prints for a
config, run with ``ds`` bound, rebuilds exactly that config: options chosen by hand stay chosen
(``prefetch_factor=2`` with process workers, ``worker_type='thread'``, ``num_workers=0``), the
loader's own choices stay its own, and autotune's trials and best come back as measured."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.loading.calls import loader_call, value_code
from workbench.loading.config import LoaderConfig
from workbench.tuning.search import autotune

N = 4000


def augment(batch):
    return batch


@pytest.fixture(scope="module")
def ds():
    return wb.open_dataset({"x": np.zeros((N, 8), "float32"), "id": np.arange(N)})


def _rebuilt(line: str, ds) -> LoaderConfig:
    dl = eval(line, {"wb": wb, "ds": ds, "augment": augment})  # as a user pastes it
    try:
        return dl.config
    finally:
        dl.close()


def test_options_print_as_code_in_their_order():
    assert loader_call({}) == "wb.loader(ds)"
    assert (
        loader_call({"batch_size": 64, "num_workers": None, "transform": augment}, "data")
        == "wb.loader(data, batch_size=64, num_workers=None, transform=augment)"
    )
    assert value_code(True) == "True" and value_code("full") == "'full'"
    assert value_code(lambda b: b).startswith("<function")  # no name to write: its repr


CASES = [
    {},
    {"batch_size": 64},
    {"prefetch_factor": 2},  # by hand, equal to what threads pick today
    {"num_workers": 0},
    {"worker_type": "thread"},
    {"num_workers": 2, "worker_type": "process", "prefetch_factor": 2},  # auto would pick 16
    {"num_workers": 1, "worker_type": "process"},
    {"worker_type": "process"},
    {"batch_size": 1 << 14},  # 640 KiB batches: still the loader's choice
    {"shuffle": True},
    {"shuffle": False, "drop_last": True},
    {"shuffle": "sequential", "seed": 7},
    {"shuffle": "shard", "window": 3},
    {"shuffle": "block", "run_rows": 16, "window": 2, "block_rows": 128},
    {"timeout": None},
    {"timeout": 0, "persistent_workers": True, "num_workers": 1, "worker_type": "process"},
    {"transform": augment},  # processes, chosen by the loader
    {"transform": augment, "worker_type": "thread", "num_workers": 2},
    {"rank": 1, "world_size": 2},
]


@pytest.mark.parametrize("options", CASES, ids=lambda o: ",".join(o) or "defaults")
def test_the_printed_line_rebuilds_the_same_config(ds, options):
    dl = wb.loader(ds, **options)
    cfg = dl.config
    dl.close()
    assert _rebuilt(cfg.code_line(), ds) == cfg
    assert _rebuilt(loader_call(cfg.loader_options()), ds) == cfg
    for name in ("num_workers", "worker_type", "prefetch_factor"):
        assert (name in cfg.loader_options()) == (options.get(name) is not None), name


def test_a_chosen_prefetch_factor_of_2_is_printed_and_kept():
    """The bug this builder fixed: compared with raw defaults, ``prefetch_factor=2`` was left
    out, and the line then ran with the automatic one (16 for process workers of small batches)."""
    cfg = LoaderConfig.build(row_nbytes=32, num_workers=2, worker_type="process", prefetch_factor=2)
    assert "prefetch_factor=2" in cfg.code_line()
    assert (
        LoaderConfig.build(row_nbytes=32, num_workers=2, worker_type="process").prefetch_factor > 2
    )


def test_autotune_trials_and_best_print_lines_that_rebuild_them(ds):
    space = {
        "readers": [("thread", 0), ("thread", 2), ("process", 1)],
        "prefetch_factor": [1, 2, 4],
        "window": [4, 8],
    }
    r = autotune(ds, time_budget_s=3, memory_budget="1GiB", batch_size=128, space=space)
    settings = [t.config for t in r.trials] + [r.best]
    assert any(c["prefetch_factor"] == 2 for c in settings)
    for options in settings:
        cfg = LoaderConfig.build(**options)
        line = cfg.code_line()
        assert f"prefetch_factor={options['prefetch_factor']}" in line, line
        dl = wb.loader(ds, **options)
        assert _rebuilt(line, ds) == dl.config
        dl.close()
