"""The workbench pages of the Dask dashboard, on real clusters: registered, listed in
``/individual-plots.json``, fed through the public plugin hooks from a real loader, served by a
scheduler in this process and by one started with ``dask scheduler --preload``, and drawn in a real
browser while the loader runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import workbench as wb
from workbench import dashboard
from workbench.errors import WorkbenchWarning

sys.path.insert(0, str(Path(__file__).parent))
import browser  # noqa: E402

OURS = {
    "/individual-workbench-throughput",
    "/individual-workbench-memory",
    "/individual-workbench-gpu",
    "/individual-workbench-stages",
}


def _base(client) -> str:
    return client.dashboard_link.rsplit("/", 1)[0]


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.read()


def _wait(predicate, timeout: float = 30.0, what: str = "condition"):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@contextlib.contextmanager
def running_loader(client, *, workers: int = 2, interval: float = 0.2, **options):
    """A loader with worker processes (or ``options``) reading epochs on a thread, its Monitor
    publishing."""
    ds = wb.open_dataset({"x": np.random.default_rng(0).random((100_000, 64), dtype="float32")})
    options = {"worker_type": "process", "persistent_workers": True, **options}
    dl = wb.loader(ds, batch_size=500, shuffle=True, num_workers=workers, **options)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            for _ in dl:
                if stop.is_set():
                    break

    with wb.Monitor(dl, client=client, interval=interval) as mon:
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield mon
        finally:
            stop.set()
            thread.join(60)


def _collector_state(dask_scheduler):
    plugin = dask_scheduler.plugins["workbench"]
    current = plugin.current()
    if current is None:
        return {"received": plugin.received}
    source, timeline, snap = current
    return {
        "received": plugin.received,
        "source": source,
        "samples_per_s": timeline.history().get("samples_per_s", []),
        "processes": snap["processes"],
        "workers": plugin.worker_memory(),
    }


def test_distributed_still_has_the_private_table_we_register_in():
    """Pins the path: a rename in distributed fails here, not silently on a user's dashboard."""
    from distributed.dashboard.scheduler import applications

    assert dashboard.install()
    assert OURS | {"/workbench"} <= set(applications)
    assert dashboard.installed() == list(dashboard.pages.PAGES)


def test_install_says_so_and_falls_back_when_the_table_is_gone(monkeypatch):
    import distributed.dashboard.scheduler as table

    monkeypatch.delattr(table, "applications")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert dashboard.install() is False
    assert dashboard.installed() == []
    [w] = [w for w in caught if issubclass(w.category, WorkbenchWarning)]
    assert "wb.watch(loader)" in str(w.message) and "applications" in str(w.message)


def test_pages_are_listed_and_served_by_an_in_process_scheduler():
    client = wb.local_client(1, processes=False)
    try:
        base = _base(client)
        assert base.startswith("http://127.0.0.1:")
        status, body = _get(base + "/individual-plots.json")
        listed = set(json.loads(body).values())
        assert OURS <= listed, listed
        for path in [*OURS, "/workbench"]:
            status, body = _get(base + path)
            assert status == 200 and b"bokeh" in body.lower(), path
        status, body = _get(base + "/status")
        assert b"Workbench Memory" in body  # the "More..." menu
    finally:
        wb.close_client(client)


def test_a_loaders_monitor_reaches_the_scheduler_through_the_plugins():
    client = wb.local_client(1)
    try:
        with running_loader(client) as mon:
            state = _wait(
                lambda: (
                    (s := client.run_on_scheduler(_collector_state))["received"] >= 5
                    and s["workers"]
                    and len(s["processes"]) >= 3
                    and s
                ),
                what="5 snapshots, the loader's workers and the Dask worker's heartbeat",
            )
        assert mon.publish_error is None
        assert any(v > 0 for _, v in state["samples_per_s"])
        names = [p["name"] for p in state["processes"]]
        assert names[0] == "kernel" and sum(n.startswith("loader worker") for n in names) == 2, (
            names
        )
        assert all(p["pss"] > 0 for p in state["processes"])
        [worker] = state["workers"]
        assert worker["name"].startswith("dask worker tcp://127.0.0.1:") and worker["pss"] > 0
        assert worker["uss"] <= worker["pss"] <= worker["rss"]
        # the same figures, as columns of the dashboard's own /workers table
        info = client.scheduler_info()["workers"]
        [metrics] = [w["metrics"] for w in info.values()]
        assert metrics["workbench_pss"] > 0
    finally:
        wb.close_client(client)


def test_a_scheduler_started_with_preload_serves_the_pages(tmp_path):
    """``dask scheduler --preload workbench.dashboard`` in another process, a ``dask worker``."""
    file = tmp_path / "scheduler.json"
    bin_dir = Path(sys.executable).parent
    scheduler = subprocess.Popen(
        [
            str(bin_dir / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--dashboard-address",
            "127.0.0.1:0",
            "--scheduler-file",
            str(file),
            "--preload",
            "workbench.dashboard",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "scheduler.log", "w"),
    )
    worker = None
    try:
        _wait(file.exists, 60, "the scheduler file")
        worker = subprocess.Popen(
            [
                str(bin_dir / "dask"),
                "worker",
                "--scheduler-file",
                str(file),
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--dashboard-address",
                "127.0.0.1:0",
                "--no-nanny",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / "worker.log", "w"),
        )
        import cloudpickle
        from distributed import Client

        # the scheduler in the other process cannot import this test module: ship it by value
        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            base = _base(client)
            listed = set(json.loads(_get(base + "/individual-plots.json")[1]).values())
            assert OURS <= listed, (listed, (tmp_path / "scheduler.log").read_text()[-2000:])
            with running_loader(client, workers=1):
                state = _wait(
                    lambda: (
                        (s := client.run_on_scheduler(_collector_state))["received"] >= 3
                        and s["workers"]
                        and s
                    ),
                    what="snapshots in the other process",
                )
            assert state["source"].endswith(f"pid {os.getpid()}")
            assert state["workers"][0]["pss"] > 0
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(30)


@pytest.fixture(scope="module")
def chromium():
    browser.require()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b, page = browser.launch(pw)
        yield page
        b.close()


def _lengths(page) -> dict:
    return page.evaluate(browser.BOKEH_SOURCES)


@pytest.mark.parametrize(
    "path,series",
    [
        (
            "/individual-workbench-memory",
            ["workbench-memory_pss_bytes", "workbench-memory_rss_bytes"],
        ),
        (
            "/individual-workbench-throughput",
            ["workbench-samples_per_s", "workbench-wait_fraction"],
        ),
    ],
)
def test_the_pages_draw_a_running_loader_in_a_real_browser(chromium, path, series):
    page = chromium
    page.errors.clear()
    client = wb.local_client(1)
    try:
        with running_loader(client):
            page.goto(_base(client) + path)
            page.locator("canvas").first.wait_for(state="visible", timeout=30_000)
            first = _wait(
                lambda: (n := _lengths(page)) and all(n.get(s, {}).get("n") for s in series) and n,
                what=f"{series} drawn",
            )
            time.sleep(2.0)
            later = _lengths(page)
        for s in series:
            assert later[s]["n"] > first[s]["n"], (s, first[s], later[s])
        if path.endswith("memory"):  # kernel, two loader workers and the Dask worker, as bars
            bars = page.evaluate("""() => { for (const d of window.Bokeh.documents)
                for (const m of d._all_models.values()) if (m.name === 'workbench-processes')
                  return Array.from(m.data.get ? m.data.get('name') : m.data.name); }""")
            assert len(bars) == 4 and bars[0].startswith("kernel"), bars
        texts = page.evaluate("""() => { const out = []; for (const d of window.Bokeh.documents)
            for (const m of d._all_models.values())
              if (typeof m.text === 'string') out.push(m.text);
            return out; }""")
        assert any(f"pid {os.getpid()}" in t for t in texts) and not any(
            "Waiting" in t for t in texts
        )
        if path.endswith("memory"):  # the limits every default sized itself to
            from workbench.monitoring.container import container_limits

            cores = container_limits().describe().split("; ")[1]
            assert any(cores in t for t in texts), texts
        assert not [e for e in page.errors if "favicon" not in e], page.errors
    finally:
        page.goto("about:blank")  # before the cluster closes: no reconnecting page left behind
        wb.close_client(client)


def busy(batch):
    """A pure-Python transform that holds the GIL for 2 ms a batch."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.002:
        pass
    return batch


# the columns of the page's workbench-stages source
STAGE_COLUMNS = """() => { for (const d of window.Bokeh.documents)
  for (const m of d._all_models.values()) if (m.name === 'workbench-stages') {
    const out = {}; for (const k of ['t', 'transform', 'read', 'wait'])
      out[k] = Array.from(m.data.get ? m.data.get(k) : m.data[k]);
    return out; }
  return null; }"""
TEXTS = """() => { const out = []; for (const d of window.Bokeh.documents)
  for (const m of d._all_models.values()) if (typeof m.text === 'string') out.push(m.text);
  return out; }"""


@pytest.mark.parametrize("path", ["/individual-workbench-stages", "/workbench"])
def test_the_stages_page_draws_where_the_time_goes_in_a_real_browser(chromium, path):
    """A slow pure-Python transform on one thread: its stage is most of every batch on the page,
    the verdict says so, and (without a GPU) the page says what it cannot measure."""
    page = chromium
    page.errors.clear()
    client = wb.local_client(1)
    try:
        with running_loader(client, workers=0, transform=busy, persistent_workers=False):
            page.goto(_base(client) + path)
            page.locator("canvas").first.wait_for(state="visible", timeout=30_000)
            first = _wait(
                lambda: (c := page.evaluate(STAGE_COLUMNS)) and len(c["t"]) >= 2 and c,
                what="the stages drawn",
            )
            time.sleep(2.0)
            later = page.evaluate(STAGE_COLUMNS)
            texts = page.evaluate(TEXTS)
        assert len(later["t"]) > len(first["t"]) and later["t"] == sorted(later["t"])
        # ms a batch: the 2 ms transform dominates what the reader does
        # (the first samples average few batches: a cold first read may outweigh them there)
        assert min(later["transform"]) >= 1.8
        assert np.median(later["read"]) < 0.5 * np.median(later["transform"])
        assert max(later["wait"]) > 0
        [line] = [t for t in texts if f"pid {os.getpid()}" in t and "input-bound" in t]
        assert "transform" in line, line
        if not torch.cuda.is_available():
            assert "no GPU: host-to-device not measured" in line, line
        assert not [e for e in page.errors if "favicon" not in e], page.errors
    finally:
        page.goto("about:blank")
        wb.close_client(client)


def test_jupyterlabs_dask_sidebar_lists_our_pages_and_opens_one(chromium, tmp_path):
    """dask-labextension (installed with workbench) reads /individual-plots.json: our pages are
    buttons, and one opens in a JupyterLab tab that draws the running loader."""
    page = chromium
    (tmp_path / "root").mkdir()
    lab = browser.Lab(tmp_path / "root", tmp_path / "private")
    lab.start()
    client = wb.local_client(1)
    try:
        with running_loader(client):
            page.goto(lab.url("/lab") + "&reset")
            tab = page.locator("li.lm-TabBar-tab[data-id='dask-dashboard-launcher']")
            tab.wait_for(timeout=120_000)
            tab.click()
            url = page.locator(".dask-URLInput input")
            url.fill(_base(client))
            url.press("Enter")
            button = page.locator(".dask-DashboardListing-item", has_text="Workbench Memory")
            button.wait_for(timeout=60_000)
            items = page.locator(".dask-DashboardListing-item").all_text_contents()
            listed = {t.strip().lower() for t in items}  # the sidebar shows them in capitals
            assert {
                "workbench throughput",
                "workbench memory",
                "workbench gpu",
                "workbench stages",
            } <= listed, listed
            button.click()
            frame = page.locator(".lm-DockPanel iframe").first
            frame.wait_for(timeout=60_000)
            src = frame.get_attribute("src")
            assert src.endswith("/individual-workbench-memory"), src
            frame.content_frame.locator("canvas").first.wait_for(state="visible", timeout=60_000)
            inner = next(f for f in page.frames if "workbench-memory" in f.url)
            n = "workbench-memory_pss_bytes"
            first = _wait(
                lambda: inner.evaluate(browser.BOKEH_SOURCES).get(n, {}).get("n"),
                what="the memory line in the sidebar's tab",
            )
            time.sleep(2)
            assert inner.evaluate(browser.BOKEH_SOURCES)[n]["n"] > first
    finally:
        page.goto("about:blank")
        wb.close_client(client)
        lab.stop()
