"""Where the time goes, in ``wb.watch``: the stacked stages chart at trait level in this process,
fed by a real loader with a slow pure-Python transform, and the real thing: JupyterLab in Debian's
chromium drawing the chart while another cell trains, its areas growing and the verdict under it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

import workbench as wb
from workbench.monitoring.stages import PRODUCER
from workbench.ui.stagechart import StageChart, stage_points

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402


def busy(batch):
    """A pure-Python transform that holds the GIL for 2 ms a batch."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.002:
        pass
    return batch


def _loader(**kw):
    ds = wb.open_dataset({"x": np.zeros((20_000, 16), "float32")})
    return wb.loader(ds, batch_size=200, shuffle=True, transform=busy, **kw)


def test_the_chart_stacks_the_monitors_stage_series_and_grows():
    dl = _loader(num_workers=0)
    w = wb.watch(dl, interval=0.05, refresh=0.05)
    try:
        assert w.stages.widget in w.widget.children
        for _ in dl:
            pass
        assert browser.until(lambda: len(w.stages.stack.x) >= 2), len(w.stages.stack.x)
        for _ in dl:
            pass
        w.stop()  # the Monitor's last sample covers the end; draw it
        w.refresh()
        stack, consumer = w.stages.stack, w.stages.consumer
        n = len(stack.x)
        assert n >= 3 and np.asarray(stack.y).shape == (len(PRODUCER), n)
        assert np.asarray(consumer.y).shape == (2, n) and list(stack.labels)[0] == "to_device"
        # the areas are the Monitor's own series, cumulative in ms: top first, sampler last
        hist = w.monitor.history()
        tops = np.asarray(stack.y)
        transform = tops[PRODUCER[::-1].index("transform")] - tops[PRODUCER[::-1].index("read")]
        want = np.array([v for _, v in hist["stage_transform_s"]]) * 1e3
        assert np.allclose(transform, want)
        assert np.allclose(
            tops[0], sum(np.array([v for _, v in hist[f"stage_{s}_s"]]) for s in PRODUCER) * 1e3
        )
        assert transform[-1] >= 1.8 and transform[-1] > 0.5 * tops[0][-1]  # 2 ms, the most of it
        assert np.allclose(consumer.y[0], [v * 1e3 for _, v in hist["stage_wait_s"]])
        assert np.all(np.diff(stack.x) > 0) and stack.x[0] >= 0
        assert "transform" in w.stages.verdict.value and "input-bound" in w.stages.verdict.value
        if not torch.cuda.is_available():
            assert w.stages.note.value == "no GPU: host-to-device not measured"
    finally:
        w.close()
        dl.close()


def test_a_watch_of_no_loader_has_no_stage_chart_and_the_chart_waits_for_data():
    w = wb.watch(interval=0.05, refresh=0.05)
    try:
        assert w.stages.widget not in w.widget.children
    finally:
        w.close()
    chart = StageChart()
    chart.refresh({}, {"loader": {"samples_per_s": 0.0}}, t0=0.0)
    assert chart.verdict.value.startswith("waiting") and len(chart.stack.x) == 0
    # a series that began later (a stage first timed after a reconfigure) is aligned at the end
    t, v = stage_points({"stage_read_s": [[1.0, 1.0], [2.0, 2.0]], "stage_step_s": [[2.0, 5.0]]})
    assert t.tolist() == [1.0, 2.0] and v["step"].tolist() == [0.0, 5.0]


# -- in a real browser ----------------------------------------------------------------------

CELLS = [
    """import time
import numpy as np
import workbench as wb
def busy(batch):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.002:
        pass
    return batch
ds = wb.open_dataset({"x": np.zeros((50_000, 16), "float32")})
dl = wb.loader(ds, batch_size=200, shuffle=True, num_workers=0, transform=busy)
w = wb.watch(dl, interval=0.25, refresh=0.25)
w""",
    """from pathlib import Path
t0 = time.time()
while not Path("stop").exists() and time.time() - t0 < 240:  # busy until the test has looked
    for batch in dl:
        pass""",
    """w.stop(); w.refresh(); dl.close()
Path("kernel.txt").write_text(f"{len(w.stages.stack.x)} {w.stages.stack.y[0][-1]:.4f}")""",
]

# per area of the stack (top first; the consumer's two lines, unfilled, come after): the points
# of its SVG path and its highest point in pixels above the x axis (an area of zeros lies on it)
AREAS = """() => Array.from(document.querySelectorAll('.workbench-watch-stages path.area'))
  .slice(0, 6)
  .map(p => { const d = p.getAttribute('d') || '';
    const ys = (d.match(/-?[\\d.]+(e-?\\d+)?,-?[\\d.]+(e-?\\d+)?/g) || [])
      .map(xy => parseFloat(xy.split(',')[1]));
    return {points: (d.match(/[ML]/g) || []).length,
            height: ys.length ? Math.max(...ys) - Math.min(...ys) : 0}; })"""
VERDICT = "() => (document.querySelector('.workbench-watch-verdict') || {}).textContent || ''"
LEGEND = """() => Array.from(document.querySelectorAll('.workbench-watch-stages .legendtext'))
  .map(e => e.textContent)"""


@pytest.fixture
def lab(tmp_path):
    browser.require()
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in CELLS],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    with browser.serving(tmp_path, {"stages.ipynb": nb}) as server:
        yield server


def test_the_stage_chart_grows_in_jupyterlab_while_another_cell_trains(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b, page = browser.launch(pw)
        try:
            browser.open_notebook(page, lab, "stages.ipynb")
            browser.run_all(page)
            chart = page.locator(".workbench-watch-stages").first
            chart.wait_for(timeout=120_000)
            chart.scroll_into_view_if_needed()
            drawn = browser.until(
                lambda: (a := page.evaluate(AREAS)) and len(a) == 6 and a[0]["points"] >= 4, 90
            )
            assert drawn, (page.evaluate(AREAS), page.evaluate(VERDICT))
            first = page.evaluate(AREAS)
            time.sleep(3)
            later = page.evaluate(AREAS)
            verdict = page.evaluate(VERDICT)
            legend = page.evaluate(LEGEND)
            (tmp_path / "root" / "stop").touch()  # let the training cell end
            assert later[0]["points"] > first[0]["points"], (first, later)
            # the areas' heights on the page: the transform's band (from its top, index 3 top
            # first, down to the axis) is the most of the stack, the sampler's a sliver of it
            top = later[0]["height"]
            band = later[3]["height"] - later[4]["height"]
            assert top > 20 and band > 0.5 * top > later[5]["height"], later
            assert "transform" in verdict and "input-bound" in verdict, verdict
            assert legend[:6] == list(PRODUCER[::-1]) and "consumer wait" in legend, legend
            prompts = browser.wait_cells_ran(page, 180)
            assert prompts == ["[1]:", "[2]:", "[3]:"], prompts
            n, top_ms = (tmp_path / "root" / "kernel.txt").read_text().split()
            assert (
                int(n) >= later[0]["points"] // 2 and float(top_ms) >= 1.8
            )  # an area: 2 points a sample
            body = page.locator(".jp-NotebookPanel").inner_text()
            assert "Error displaying widget" not in body
            if not torch.cuda.is_available():
                assert "no GPU: host-to-device not measured" in body
            assert not [e for e in page.errors if "favicon" not in e and "news" not in e], (
                page.errors
            )
        finally:
            page.screenshot(path=str(tmp_path / "page.png"))
            b.close()
