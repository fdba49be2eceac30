"""``wb.stats`` on real stores, files and Dask arrays, in this process and on a Dask cluster:
the figures equal NumPy's, memory stays bounded, bad input is named."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import workbench as wb
from workbench.errors import WorkbenchError


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, (30_000, 5)).astype("float32")
    x[::97, 1] = np.nan
    y = rng.integers(0, 4, 30_000)
    wb.convert({"x": x, "y": y}, root / "d.store", shard_bytes=200_000, nan="allow", progress=False)
    np.save(root / "x.npy", x)
    return root, x, y


def _check(figs, a):
    finite = np.where(np.isfinite(a), a, np.nan).astype("float64")
    np.testing.assert_allclose(figs["mean"], np.nanmean(finite, 0), rtol=1e-10)
    np.testing.assert_allclose(figs["std"], np.nanstd(finite, 0), rtol=1e-8)
    np.testing.assert_array_equal(figs["min"], np.nanmin(finite, 0))
    np.testing.assert_array_equal(figs["max"], np.nanmax(finite, 0))
    np.testing.assert_array_equal(figs["nan"], np.isnan(a).sum(0))
    for q, name in ((0.01, "p1"), (0.5, "p50"), (0.99, "p99")):  # 30,000 rows: all sampled
        np.testing.assert_allclose(figs[name], np.nanquantile(finite, q, axis=0))


def test_a_store_equals_numpy(data):
    root, x, y = data
    s = wb.stats(root / "d.store")
    assert s.rows == 30_000 and set(s.columns) == {"x", "y"}
    _check(s.columns["x"], x)
    _check(s.columns["y"], y.reshape(-1, 1))
    assert s.columns["x"]["nan"][1] == len(range(0, 30_000, 97))
    assert "nan" in str(s) and str(s).splitlines()[0] == f"{root / 'd.store'}: 30,000 rows"


def test_dask_arrays_and_a_cluster_reduce_to_the_same_figures(data):
    import dask.array as da

    root, x, _ = data
    arr = da.from_array(x, chunks=(4000, 5))
    local = wb.stats(arr)
    _check(local.columns["array"], x)
    assert "reduced as 8 Dask tasks" in local.notes[0]
    client = wb.local_client(1, processes=False, dashboard=False)
    try:
        on_cluster = wb.stats(arr, client=client)
        by_path = wb.stats(root / "x.npy", client=client)
    finally:
        wb.close_client(client)
    for k in ("mean", "std", "min", "max", "p50"):
        np.testing.assert_allclose(on_cluster.columns["array"][k], local.columns["array"][k])
    _check(by_path.columns["x"], x)
    assert by_path.notes == ["reduced on 1 Dask workers"]


def test_memory_stays_bounded_on_a_file_bigger_than_a_chunk(tmp_path):
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(
        path, mode="w+", dtype="float32", shape=(2_000_000, 32)
    )  # 256 MB
    big[:] = 1.0
    big.flush()
    del big
    code = (
        "import resource, numpy as np, torch, workbench as wb; import workbench.datasets; "
        "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; before = peak(); "
        f"s = wb.stats({str(path)!r}); print(peak() - before, s.columns['x']['mean'][0])"
    )
    grew_kib, mean = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert float(mean) == 1.0
    # one 8 MiB chunk (16 MiB as float64) + the 100k-row sample, not the 256 MB file; page cache
    # pages of the mapped file count in RSS too, so allow for the file's pages being mapped
    assert int(grew_kib) < 150_000 + 256_000


def test_progress_is_drawn_and_rendering_escapes(data, capsys):
    root, _, _ = data
    wb.stats(root / "d.store", progress=True)
    assert "30,000/30,000" in capsys.readouterr().err
    s = wb.stats({"<b>": np.arange(10.0)})
    page = s._repr_html_()
    assert "&lt;b&gt;" in page and "<b>:" not in page.replace("<b>" + s.source, "")
    assert page.count("class='workbench-hist'") == 1


def test_bad_input_is_named(tmp_path):
    with pytest.raises(WorkbenchError, match="nowhere"):
        wb.stats(tmp_path / "nowhere")
    (tmp_path / "a.csv").write_text("a\n1\n")
    with pytest.raises(WorkbenchError, match="convert"):
        wb.stats(tmp_path / "a.csv")
