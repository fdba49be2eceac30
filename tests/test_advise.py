"""``wb.advise`` on real files: the advice follows the data and the machine, and a short
measurement backs it in the current layout and in the proposed store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import workbench as wb
from workbench.errors import InvalidInputError


@pytest.fixture(scope="module")
def h5(tmp_path_factory):
    path = tmp_path_factory.mktemp("advise") / "x.h5"
    with h5py.File(path, "w") as f:  # small gzip chunks: the naive layout
        f.create_dataset(
            "x",
            data=np.random.default_rng(0).random((20_000, 16), dtype="float32"),
            chunks=(2000, 16),
            compression="gzip",
        )
        f.create_dataset("y", data=np.arange(20_000), chunks=(2000,))
    return path


def test_a_chunked_hdf5_file_is_advised_into_a_store_and_both_are_measured(h5):
    a = wb.advise(h5, batch_size=512, shuffle="full")
    topics = {r.topic: r for r in a.recommendations}
    assert topics["layout"].value == "store" and "hdf5 chunk" in topics["layout"].reason
    assert topics["shuffle"].value == "full" and a.situation["fits"]
    layouts = {(m["layout"], m["order"]) for m in a.measurements}
    assert {
        ("current (hdf5 chunk)", "full"),
        ("proposed store", "full"),
        ("proposed store", "block"),
    } <= layouts
    assert all(m["rows_per_s"] > 0 for m in a.measurements)
    assert json.loads(json.dumps(a.to_dict()))["situation"]["rows"] == 20_000


def test_a_small_page_cache_turns_full_order_into_block(h5):
    a = wb.advise(h5, batch_size=512, shuffle="full", ram_bytes=1 << 20, measure=False)
    shuffle = {r.topic: r for r in a.recommendations}["shuffle"]
    assert shuffle.value == "block" and "does not fit the page cache" in shuffle.reason
    assert a.measurements == []
    text, page = str(a), a._repr_html_()
    assert all(len(line) <= 100 for line in text.splitlines())
    assert "does not fit" in text and "<code>shuffle=&quot;block&quot;</code>" in page


def test_bad_input_and_the_cli(h5, tmp_path):
    with pytest.raises(InvalidInputError, match="shuffle='random'"):
        wb.advise(h5, shuffle="random")
    exe = str(Path(sys.executable).parent / "workbench")
    out = subprocess.run(
        [exe, "advise", str(h5), "--shuffle", "block", "--batch-size", "256"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "layout: store" in out and "measured (rows/s" in out
