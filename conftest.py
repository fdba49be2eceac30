"""Doctest set-up for ``pytest workbench --doctest-modules``.

Every ``>>>`` example under ``workbench/`` runs in a fresh temporary working directory that
already holds small demo inputs (built once per session, then copied in), with ``np``, ``torch``
and ``wb`` (``import workbench as wb``) in its namespace:

- ``demo_data/raw/``: ``wb.make_demo(..., rows=2000)``: demo.csv, features.npy, labels.npy,
  tokens.indptr.npy, tokens.indices.npy, demo.h5, demo.parquet
- ``demo_data/demo.store``: demo.csv converted (target "label", sparse tokens of width 1000)
- ``x.npy`` (1000 x 8 float32 0..7999), ``data.csv`` (100 rows: a, b, label)
- ``train.csv.gz``: demo.csv gzipped; ``data/``: demo.parquet cut into part-0/part-1.parquet
- ``data.h5``: ``/x`` (100, 3) float32, ``/labels/y`` (100,) int64, group ``/train`` with
  ``x`` (80, 3) and ``y`` (80,)

Other tests (``tests/``) are untouched: the fixture only acts on doctest items.
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

# The jupytext twins of the notebooks are scripts, not test modules: never import them.
collect_ignore_glob = ["notebooks/*.py"]


def _build(root: Path) -> None:
    import numpy as np

    import workbench as wb

    cwd = os.getcwd()
    os.chdir(root)
    try:
        wb.make_demo("demo_data/raw", rows=2000)
        wb.convert(
            "demo_data/raw/demo.csv",
            "demo_data/demo.store",
            target="label",
            sparse={"tokens": 1000},
            progress=False,
        )
        np.save("x.npy", np.arange(8000, dtype="float32").reshape(1000, 8))
        rows = ["a,b,label"] + [f"{i},{i / 10},{i % 2}" for i in range(100)]
        Path("data.csv").write_text("\n".join(rows) + "\n")
        Path("train.csv.gz").write_bytes(gzip.compress(Path("demo_data/raw/demo.csv").read_bytes()))
        _parquet_parts("demo_data/raw/demo.parquet", Path("data"), parts=2)
        _hdf5("data.h5")
    finally:
        os.chdir(cwd)


def _parquet_parts(src: str, out: Path, parts: int) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    out.mkdir()
    step = -(-table.num_rows // parts)
    for i in range(parts):
        pq.write_table(table.slice(i * step, step), out / f"part-{i}.parquet")


def _hdf5(path: str) -> None:
    import h5py
    import numpy as np

    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f["x"] = rng.standard_normal((100, 3), dtype=np.float32)
        f["labels/y"] = np.arange(100) % 2
        f["train/x"] = rng.standard_normal((80, 3), dtype=np.float32)
        f["train/y"] = np.arange(80) % 2


@pytest.fixture(scope="session")
def _doctest_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("doctest_files")
    _build(root)
    return root


@pytest.fixture(autouse=True)
def _doctest_env(request: pytest.FixtureRequest):
    """For doctest items only: fill ``doctest_namespace`` and chdir into a primed ``tmp_path``."""
    from _pytest.doctest import DoctestItem

    if not isinstance(request.node, DoctestItem):
        yield
        return
    import numpy as np
    import torch

    import workbench as wb

    namespace = request.getfixturevalue("doctest_namespace")
    namespace.update(np=np, torch=torch, wb=wb)
    files: Path = request.getfixturevalue("_doctest_files")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    shutil.copytree(files, tmp_path, dirs_exist_ok=True, symlinks=True)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield
    finally:
        os.chdir(cwd)
