"""``wb.tune``: the widget at trait level in this process (widgets exist without a front end), and
the real thing: JupyterLab in Debian's chromium runs notebooks/05_tune.ipynb, the test drags the
batch-size slider and clicks autotune, and checks the page and the kernel."""

from __future__ import annotations

import re
import shutil
import sys
import threading
import time
from pathlib import Path

import nbformat
import numpy as np
import psutil
import pytest
import torch

import workbench as wb
from workbench.monitoring.stages import PRODUCER
from workbench.ui.tables import trials_table

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402

N = 4000
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_tune.ipynb"


@pytest.fixture
def ds():
    return wb.open_dataset(
        {"x": np.random.default_rng(0).random((N, 8), dtype="float32"), "id": np.arange(N)}
    )


class Recorder:
    """A training step that records which epoch each batch came in and its rows."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, np.ndarray]] = []
        self.loader: wb.Loader | None = None

    def __call__(self, batch) -> None:
        epoch = self.loader._epoch  # the pass in progress: it advances when the pass ends
        self.seen.append((epoch, batch["id"].numpy().copy()))
        time.sleep(0.001)

    def sizes(self) -> list[int]:
        return [len(ids) for _, ids in self.seen]


def test_moving_a_control_reconfigures_the_running_loader_and_keeps_coverage(ds, capfd):
    threads, children = threading.active_count(), len(psutil.Process().children(recursive=True))
    rec = Recorder()
    rec.loader = wb.loader(ds, batch_size=100, shuffle="block", block_rows=256)
    t = wb.tune(rec.loader, rec, refresh=0.05)
    try:
        assert browser.until(lambda: len(rec.seen) >= 5)
        t.controls["batch_size"].value = 512
        assert browser.until(lambda: 512 in rec.sizes())
        assert t.config.batch_size == 512
        assert browser.until(
            lambda: "batch_size=512" in t.label.value
        )  # the view thread redraws it
        t.controls["num_workers"].value = 2
        t.controls["window"].value = 3
        assert browser.until(lambda: t.config.num_workers == 2 and t.config.window == 3)
        t.controls["worker_type"].value = "process"
        assert browser.until(lambda: t.config.worker_type == "process" and t._loader.worker_pids())
        t.controls["shuffle"].value = "full"  # from the next epoch
        epoch = t._loader._epoch
        assert browser.until(lambda: t._loader._epoch >= epoch + 2, 60)
        assert t._loader.order == "full"
        assert browser.until(lambda: len(t.trials) >= 4)
        assert "<table" in t.table.value and t.table.value.count("<tr") >= 4
    finally:
        t.close()
    done = {e for e, _ in rec.seen} - {max(e for e, _ in rec.seen)}  # epochs that ended
    assert len(done) >= 2
    for e in done:
        rows = np.concatenate([ids for k, ids in rec.seen if k == e])
        assert np.array_equal(np.sort(rows), np.arange(N)), e  # each row once, whatever changed
    assert browser.until(
        lambda: (
            threading.active_count() <= threads
            and len(psutil.Process().children(recursive=True)) <= children
        ),
        15,
    )
    assert not t.run.alive and "stopped" in t.label.value
    out, err = capfd.readouterr()
    assert out == "", out  # a thread that prints lands in the wrong notebook cell


def test_apply_reconfigures_the_running_loader_and_moves_the_controls(ds):
    rec = Recorder()
    rec.loader = wb.loader(ds, batch_size=100, shuffle="block", block_rows=256)
    t = wb.tune(rec.loader, rec, refresh=0.05)
    try:
        assert browser.until(lambda: len(rec.seen) >= 3)
        config = t.apply(batch_size=256, num_workers=2, worker_type="thread")
        assert (config.batch_size, config.num_workers, config.worker_type) == (256, 2, "thread")
        assert t.controls["batch_size"].value == 256 and t.controls["num_workers"].value == 2
        assert browser.until(lambda: 256 in rec.sizes())
    finally:
        t.close()


def test_buttons_pause_autotune_and_show_the_code(ds):
    t = wb.tune(ds, batch_size=256, refresh=0.05, memory_budget="1GiB", autotune_s=4)
    try:
        t.buttons["pause"].click()
        assert t.buttons["pause"].description == "resume" and not t.running
        time.sleep(0.3)
        n = t._loader.stats.batches
        time.sleep(0.3)
        assert t._loader.stats.batches - n <= 1  # at most the batch in hand finishes
        t.buttons["pause"].click()
        assert browser.until(lambda: t._loader.stats.batches > n + 3)
        before = len(t.trials)
        t.buttons["autotune"].click()  # returns at once; the search runs on its thread
        assert t.buttons["autotune"].disabled
        assert (
            browser.until(lambda: t.result is not None, 60) and not t.buttons["autotune"].disabled
        )
        assert len(t.trials) > before + 3
        assert all(tr.peak_bytes < t.result.memory_budget for tr in t.result.trials)
        best = t.best
        assert best is not None and t.config.num_workers == best["num_workers"]
        t.buttons["code"].click()
        line = t.code.value
        assert "wb.loader(ds, " in line and f"num_workers={best['num_workers']}" in line
        fresh = t.loader()
        assert fresh.config.num_workers == best["num_workers"] and fresh.batch_size == 256
        fresh.close()
    finally:
        t.close()


def test_the_code_line_keeps_a_chosen_prefetch_factor_and_builds_what_loader_does(ds):
    """A best trial with prefetch_factor=2 (process workers, where the automatic one is 16):
    the line used to leave it out, compared with raw defaults, and so ran another setting."""
    t = wb.tune(
        ds, batch_size=256, num_workers=1, worker_type="process", prefetch_factor=2, refresh=0.05
    )
    try:
        assert browser.until(lambda: t.best is not None, 60)
        line = t.code_line()
        assert "prefetch_factor=2" in line and "worker_type='process'" in line, line
        fresh, pasted = t.loader(), eval(line, {"wb": wb, "ds": ds})
        assert pasted.config == fresh.config and pasted.config.prefetch_factor == 2
        fresh.close()
        pasted.close()
    finally:
        t.close()


class Plain(torch.utils.data.Dataset):
    """A user's own Dataset: per-item Python reads, collated by DataLoader's default_collate."""

    def __len__(self) -> int:
        return 600

    def __getitem__(self, i: int) -> dict[str, int]:
        return {"id": i}


def test_a_users_dataset_with_worker_processes_rebuilt_at_the_boundary():
    seen: list[int] = []
    t = wb.tune(
        Plain(),
        lambda b: seen.append(len(b["id"])),
        batch_size=50,
        num_workers=1,
        worker_type="process",
        refresh=0.05,
    )
    try:
        assert browser.until(lambda: len(seen) >= 3)
        pids = set(t._loader.worker_pids())
        t.controls["num_workers"].value = 2
        t.controls["batch_size"].value = 64
        assert browser.until(lambda: 64 in seen and len(t._loader.worker_pids()) == 2, 60)
        assert pids.isdisjoint(t._loader.worker_pids())
        pids |= set(t._loader.worker_pids())
    finally:
        t.close()
    assert browser.until(
        lambda: (
            not any(
                psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                for p in pids
            )
        ),
        15,
    )
    assert t._loader.worker_pids() == {}


def test_a_step_that_raises_is_shown_and_reraised_on_close(ds):
    def step(batch):
        raise ValueError("shape mismatch in my model")

    t = wb.tune(ds, step, refresh=0.05)
    assert browser.until(lambda: "shape mismatch" in t.status.value)
    with pytest.raises(ValueError, match="shape mismatch"):
        t.close()


def test_the_trials_table_marks_the_best():
    trials = [
        {
            "config": {"batch_size": 8},
            "samples_per_s": s,
            "mb_per_s": 1.0,
            "wait_fraction": 0.5,
            "peak_bytes": 0,
            "batches": 9,
            "cut": c,
            "measured": not c,
        }
        for s, c in ((10.0, ""), (30.0, ""), (99.0, "cut at 900 MiB"))
    ]
    trials[1]["stages"] = {"read": 0.001, "transform": 0.003, "wait": 0.01, "step": 0.02}
    html = trials_table(trials)
    assert html.count("<tr") == 4 and "cut at 900 MiB" in html
    assert ">transform 75%</td>" in html and "title='read 25% · transform 75%'" in html
    bold = [row for row in html.split("<tr") if "font-weight:bold" in row]
    assert len(bold) == 1 and "30" in bold[0]


def _busy(batch):
    """A pure-Python transform that holds the GIL for 2 ms a batch."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.002:
        pass
    return batch


def test_the_trials_table_shows_where_each_trials_time_went(ds):
    t = wb.tune(ds, batch_size=256, num_workers=0, transform=_busy, refresh=0.05)
    try:
        assert browser.until(lambda: t.trials[0]["stages"].get("transform", 0) > 0, 30)
        assert browser.until(lambda: "workbench-trial-stage" in t.table.value)
        t.pause()  # no more batches: the trial's stages hold still
        time.sleep(0.2)
        t.refresh()
        stages = t.trials[0]["stages"]
        assert stages["transform"] >= 0.0018  # 2 ms a batch, measured in the reader
        head = t.table.value.split("</thead>")[0]
        assert head.index("time goes to") < head.index("note")
        cell = t.table.value.split("workbench-trial-stage")[1].split("</td>")[0]
        total = sum(stages[s] for s in PRODUCER)
        top = max(PRODUCER, key=stages.__getitem__)  # the cell names the trial's dominant stage
        assert cell.endswith(f">{top} {stages[top] / total:.0%}"), (cell, stages)
        assert f"transform {stages['transform'] / total:.0%}" in cell.split("title='")[1]
    finally:
        t.close()


# -- in a real browser ----------------------------------------------------------------------

SAMPLES = """() => { const p = document.querySelector('.workbench-watch-samples .line path,'
  + ' .workbench-watch-samples path.line'); if (!p) return -1;
  return ((p.getAttribute('d') || '').match(/[ML]/g) || []).length; }"""
ROWS = "() => document.querySelectorAll('.workbench-tune-trials tbody tr').length"
# the trials table's stage column: its header, and each row's cell and the split on hover
STAGE_CELLS = """() => ({head: Array.from(document.querySelectorAll('.workbench-tune-trials th'))
    .map(e => e.textContent),
  cells: Array.from(document.querySelectorAll('.workbench-tune-trials td.workbench-trial-stage'))
    .map(e => [e.textContent, e.getAttribute('title')])})"""
LABEL = "() => (document.querySelector('.workbench-tune-label') || {}).textContent || ''"


@pytest.fixture
def lab(tmp_path):
    browser.require()
    nb = nbformat.read(NOTEBOOK, 4)
    panel = next(
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "wb.tune(" in c.source
    )
    # the notebook up to the panel, then a cell the test runs after moving the controls
    nb.cells = nb.cells[: panel + 1] + [
        nbformat.v4.new_code_cell(
            'Path("kernel.txt").write_text(f"{tuner.config.batch_size} {len(tuner.trials)}")'
        )
    ]
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    with browser.serving(tmp_path, {"tune.ipynb": nb}) as server:
        yield server
    shutil.rmtree(tmp_path / "root" / "nb_data", ignore_errors=True)


def test_drag_the_batch_size_and_autotune_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b, page = browser.launch(pw)
        try:
            browser.open_notebook(page, lab, "tune.ipynb")
            cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
            cells.first.click()
            for _ in range(cells.count() - 1):  # run every cell but the kernel check
                page.keyboard.press("Shift+Enter")
            page.locator(
                ".workbench-tune-batch-size .noUi-handle, "
                ".workbench-tune-batch-size .ui-slider-handle"
            ).first.wait_for(timeout=120_000)
            browser.wait_idle(page, 240)
            page.wait_for_function(f"() => ({SAMPLES})() >= 2", timeout=60_000)
            points = page.evaluate(SAMPLES)
            assert "batch_size=256" in page.evaluate(LABEL)

            handle = page.locator(
                ".workbench-tune-batch-size .noUi-handle, "
                ".workbench-tune-batch-size .ui-slider-handle"
            ).first
            handle.scroll_into_view_if_needed()
            box = handle.bounding_box()
            track = page.locator(
                ".workbench-tune-batch-size .noUi-target, "
                ".workbench-tune-batch-size .slider-container"
            ).first.bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] / 2, y)
            page.mouse.down()  # drag to about the middle of the track: batch sizes near 1024
            page.mouse.move(track["x"] + track["width"] * 0.5, y, steps=10)
            page.mouse.up()
            page.wait_for_function(f"() => !({LABEL})().includes('batch_size=256')", timeout=30_000)
            shown = page.evaluate(LABEL)
            new_size = int(shown.split("batch_size=")[1].split(",")[0])
            assert new_size > 256, shown
            rows = page.evaluate(ROWS)

            page.locator(".workbench-tune-autotune").click()
            page.wait_for_function(f"() => ({ROWS})() >= {rows + 3}", timeout=120_000)
            page.wait_for_function(
                "() => !document.querySelector('.workbench-tune-autotune').disabled",
                timeout=120_000,
            )
            assert page.evaluate(SAMPLES) > points  # the chart kept growing
            assert "autotune: AutotuneResult" in page.locator(".workbench-tune-status").inner_text()
            table = page.evaluate(STAGE_CELLS)
            assert table["head"][-2:] == ["time goes to", "note"], table["head"]
            # the first trial (in-process, the notebook's augment transform) was timed per stage
            text, split = table["cells"][0]
            assert re.fullmatch(r"(sample|read|transform|collate|handoff|to_device) \d+%", text)
            assert text.split()[0] in split and split.count("%") >= 2, (text, split)
            kernel_size = int(page.evaluate(LABEL).split("batch_size=")[1].split(",")[0])

            page.keyboard.press("Escape")
            cells.last.click()
            page.keyboard.press("Shift+Enter")
            assert browser.until(lambda: (tmp_path / "root" / "kernel.txt").exists(), 60)
            size, trials = map(int, (tmp_path / "root" / "kernel.txt").read_text().split())
            assert size == kernel_size == new_size  # autotune keeps the batch size you chose
            assert trials >= rows + 3
            body = page.locator(".jp-NotebookPanel").inner_text()
            assert "Error displaying widget" not in body
            assert not [e for e in page.errors if "favicon" not in e and "news" not in e], (
                page.errors
            )
        finally:
            page.screenshot(path=str(tmp_path / "page.png"))  # what the page showed, for a failure
            b.close()
