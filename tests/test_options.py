"""workbench.loading.options: every entry point that takes the loader's options lists each one,
keyword-only, with the default it really has, for Shift-Tab, tab completion and inspect."""

from __future__ import annotations

import dataclasses
import inspect

import jedi
import numpy as np
import pytest

import workbench as wb
from workbench.loading.config import LoaderConfig
from workbench.loading.options import NAMES, OPTIONS

ENTRY_POINTS = {
    "loader": wb.loader,
    "Loader": wb.Loader,
    "tune": wb.tune,
    "Tuner": wb.results.Tuner,
    "autotune": wb.autotune,
}


def test_the_table_names_every_option_of_the_config():
    fields = {f.name for f in dataclasses.fields(LoaderConfig)} - {
        "auto_workers",
        "auto_prefetch",
        "auto_type",
        "auto_window",
    }
    assert set(NAMES) == fields


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_each_entry_point_lists_every_option_keyword_only(name):
    params = inspect.signature(ENTRY_POINTS[name]).parameters
    for o in OPTIONS:
        p = params[o.name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY and p.default == o.default, (name, o.name)
    assert not [p for p in params.values() if p.kind is inspect.Parameter.VAR_KEYWORD], name
    doc = ENTRY_POINTS[name].__doc__
    assert "Other Parameters" in doc and all(f"\n{o.name} : " in doc for o in OPTIONS), name


def test_no_internal_parameter_in_a_public_signature():
    assert "run" not in inspect.signature(wb.autotune).parameters
    assert "sampler" not in inspect.signature(wb.loader).parameters


def test_the_listed_defaults_are_the_real_ones():
    """Passing every default as shown builds the same loader as passing nothing."""
    ds = wb.open_dataset({"x": np.zeros((512, 4), "float32")})
    shown = {o.name: o.default for o in OPTIONS}
    assert wb.loader(ds, **shown).config == wb.loader(ds).config


def test_completion_and_dir_show_the_options():
    ds = wb.open_dataset({"x": np.zeros((64, 4), "float32")})
    dl = wb.loader(ds, batch_size=16)
    names = [
        c.name
        for c in jedi.Interpreter("wb.loader(ds, prefetch_", [{"wb": wb, "ds": ds}]).complete()
    ]
    assert "prefetch_factor=" in names
    names = [
        c.name for c in jedi.Interpreter("wb.tune(ds, run_r", [{"wb": wb, "ds": ds}]).complete()
    ]
    assert "run_rows=" in names
    assert {"batch_size", "num_workers", "prefetch_factor", "worker_type"} <= set(dir(dl))
    assert dl.batch_size == 16


def test_an_unknown_option_is_refused_with_the_list():
    ds = wb.open_dataset({"x": np.zeros((64, 4), "float32")})
    with pytest.raises(wb.errors.InvalidInputError, match="batch_sise.*batch_size"):
        wb.loader(ds, batch_sise=8)
