"""``wb.watch``: live charts fed from a thread. Trait-level checks in this process (widgets exist
without a front end), and the real thing: JupyterLab in Debian's chromium, the charts growing while
another cell is busy training.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest

import workbench as wb
from workbench.ui.charts import Watch, header

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402


def _loader(rows: int = 50_000, **kw):
    ds = wb.open_dataset({"x": np.random.default_rng(0).random((rows, 32), dtype="float32")})
    return wb.loader(ds, batch_size=500, shuffle=True, **kw)


def test_the_charts_follow_a_loader_with_worker_processes(capfd):
    dl = _loader(num_workers=2, worker_type="process", persistent_workers=True)
    w = wb.watch(dl, interval=0.1, refresh=0.1)
    try:
        [(name, samples)] = w.lines["samples"]
        assert name == "samples_per_s" and len(samples.x) == 0
        for _ in range(3):
            for _ in dl:
                pass
        assert browser.until(lambda: len(samples.x) >= 3 and len(w.processes.x) == 3), (
            len(samples.x),
            list(w.processes.x),
        )
        assert samples.y.max() > 0
        assert np.all(np.diff(samples.x) > 0) and samples.x[0] >= 0  # seconds since the watch began
        names = list(w.processes.x)
        assert names[0].startswith("kernel") and all(
            n.startswith("loader worker") for n in names[1:]
        )
        uss, shared = (np.asarray(v) for v in w.processes.y)
        assert np.all(uss > 0) and np.all(shared >= 0)
        assert "samples/s" in w.header.value and "batch_size=500" in w.header.value
        memory = dict(w.lines["memory"])
        assert memory["memory_pss_bytes"].y[-1] > 0
        assert memory["memory_rss_bytes"].y[-1] >= memory["memory_pss_bytes"].y[-1]
    finally:
        w.close()
        dl.close()
    assert not w._thread.is_alive() and w.monitor._thread is None  # our Monitor stopped with us
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # a thread that prints lands in the wrong notebook cell


def test_a_monitor_given_to_watch_keeps_running_after_it():
    mon = wb.Monitor(interval=0.05).start()
    try:
        w = wb.watch(mon, refresh=0.05)
        assert w.monitor is mon
        w.close()
        assert mon._thread is not None and mon._thread.is_alive()
    finally:
        mon.stop()


def test_without_a_gpu_the_gpu_chart_says_why_and_hides():
    w = wb.watch(interval=0.05, refresh=0.05)
    try:
        assert browser.until(lambda: bool(w.monitor.latest()))
        w.refresh()
        gpu = w.monitor.latest()["gpu"]
        if gpu["available"]:
            assert w._gpu_box.children == (w._gpu_fig,)
        else:
            assert w._gpu_box.children == () and "no GPU" in w.gpu_note.value
    finally:
        w.close()


def test_the_header_is_plain_facts():
    assert header({}) == "waiting for the first sample ..."
    latest = {
        "loader": {
            "samples_per_s": 12000.4,
            "mb_per_s": 48.0,
            "wait_fraction": 0.12,
            "read_ahead": 3,
            "config": {"batch_size": 8},
        },
        "memory": {"total": {"pss": 3 * 2**20}, "processes": [{}, {}]},
        "page_cache": {"fraction": 0.5},
    }
    assert header(latest, markup=False) == (
        "12,000 samples/s · 48.0 MB/s · wait 12% · read-ahead 3"
        " · PSS 3 MiB in 2 processes · page cache 50% of the dataset"
    )
    assert "<code>batch_size=8</code>" in header(latest)
    latest["machine"] = {"limits": "limit 4.0 GiB, cgroup v2 (1.0 GiB used); 2 cores"}
    assert header(latest, markup=False).endswith(
        " · limit 4.0 GiB, cgroup v2 (1.0 GiB used); 2 cores"
    )
    assert isinstance(wb.watch, type(header)) and wb.Watch is Watch


# -- in a real browser ----------------------------------------------------------------------

CELLS = [
    """import time
import numpy as np
import workbench as wb
ds = wb.open_dataset({"x": np.random.default_rng(0).random((100_000, 32), dtype="float32")})
dl = wb.loader(ds, batch_size=500, shuffle=True, num_workers=2, worker_type="process",
               persistent_workers=True)
w = wb.watch(dl, interval=0.25, refresh=0.25)
w""",
    """from pathlib import Path
t0 = time.time()
while not Path("stop").exists() and time.time() - t0 < 240:  # busy until the test has looked
    for batch in dl:
        pass""",
    """w.stop(); dl.close()
print("done")""",
]

# points in the samples/s line: the M/L commands of its SVG path
POINTS = """() => { const p = document.querySelector('.workbench-watch-samples .line path,'
  + ' .workbench-watch-samples path.line'); if (!p) return -1;
  return ((p.getAttribute('d') || '').match(/[ML]/g) || []).length; }"""
BARS = "() => document.querySelectorAll('.workbench-watch-processes rect.bar').length"


@pytest.fixture
def lab(tmp_path):
    browser.require()
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in CELLS],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    with browser.serving(tmp_path, {"watch.ipynb": nb}) as server:
        yield server


def test_the_charts_grow_in_jupyterlab_while_another_cell_trains(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b, page = browser.launch(pw)
        try:
            browser.open_notebook(page, lab, "watch.ipynb")
            browser.run_all(page)
            page.locator(".workbench-watch-samples svg").first.wait_for(timeout=120_000)
            busy = (
                "() => document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')[1]"
                ".textContent.includes('*')"
            )
            page.wait_for_function(busy, timeout=60_000)
            page.wait_for_function(f"() => ({POINTS})() >= 2", timeout=60_000)
            first = page.evaluate(POINTS)
            time.sleep(3)
            later, still_busy = page.evaluate(POINTS), page.evaluate(busy)
            (tmp_path / "root" / "stop").touch()  # let the training cell end
            assert still_busy, "the training cell ended before the second reading"
            assert later > first, (first, later)
            prompts = browser.wait_cells_ran(page, 180)
            assert prompts == ["[1]:", "[2]:", "[3]:"], prompts
            text = page.locator(".workbench-watch-header").inner_text()
            assert "samples/s" in text and "batch_size=500" in text, text
            assert page.evaluate(BARS) >= 6  # kernel + 2 workers, private and shared stacked
            body = page.locator(".jp-NotebookPanel").inner_text()
            assert "Error displaying widget" not in body and "done" in body
            assert not [e for e in page.errors if "favicon" not in e and "news" not in e], (
                page.errors
            )
        finally:
            b.close()
