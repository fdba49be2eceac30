"""``wb.watch``: a loader's throughput, the memory of each of its processes, the page cache, where
each batch's time goes (``ui.stagechart``) and the GPU as live charts in JupyterLab, drawn with
bqplot from a background thread.

The thread only sets widget traits (inside ``hold_sync``: one message per chart); it never prints
or displays, so other cells run while it draws and nbval sees no stray output. Series names and
units come from :data:`workbench.monitoring.metrics.SERIES`, as on the dashboard's workbench pages.

>>> ds = wb.open_dataset({"x": np.zeros((20_000, 16), "float32")})
>>> w = watch(wb.loader(ds, batch_size=500), interval=0.05, refresh=0.05)
>>> for _ in w.monitor.loader: pass
>>> w.stop(); w.refresh(); w.header.value.split(" · ")[0]     # doctest: +ELLIPSIS
'<b>... samples/s'
>>> w.close()
"""

from __future__ import annotations

import contextlib
import html
import threading
import time
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from ..monitoring.metrics import SERIES
from ..monitoring.monitor import Monitor
from ..tuning.trials import shares_text
from .controls import live, updated
from .stagechart import StageChart

__all__ = ["Watch", "watch"]

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
MIB = 2**20
# bqplot's views drop data that arrives while their scales are still being built (bqplot#307
# race: "Error setting state: ... reading 'scale'"): let a freshly shown figure settle first
SETTLE_S = 2.0
CHARTS = {  # chart -> (title, series, divisor, axis label)
    "samples": ("Samples per second", ("samples_per_s",), 1, "samples/s"),
    "mb": ("MB per second", ("mb_per_s",), 1, "MB/s"),
    "wait": ("Consumer wait (1: input-bound)", ("wait_fraction",), 1, "fraction"),
    "memory": (
        "Memory (MiB)",
        ("memory_pss_bytes", "memory_rss_bytes", "page_cache_bytes", "pinned_bytes"),
        MIB,
        "MiB",
    ),
    "gpu": ("GPU", ("gpu_utilization",), 1, "fraction"),
}


def watch(
    source: Any = None, *, client: Any = None, interval: float = 0.5, refresh: float = 0.5
) -> Watch:
    """Show live charts of ``source`` (a Loader, a running
    :class:`~workbench.monitoring.monitor.Monitor`, or None for this kernel's memory) and return
    the :class:`Watch` (display it, or let the cell show it). With ``client``, the samples also
    reach the Dask dashboard's workbench pages.

    Parameters
    ----------
    source : Loader, Monitor or None
        What to chart: a loader (a new Monitor samples it), a Monitor (used as it is), or None.
    client : distributed.Client, optional
        For a new Monitor: also sample the Dask workers' memory and publish to the dashboard.
    interval : float, default 0.5
        Seconds between a new Monitor's samples.
    refresh : float, default 0.5
        Seconds between redraws.

    Returns
    -------
    Watch
        Call ``close()`` to stop it and take the charts off the page.

    Examples
    --------
    >>> w = watch(interval=0.05, refresh=0.05); w.close()
    >>> w.monitor.latest()["memory"]["processes"][0]["name"]
    'kernel'
    """
    return Watch(source, client=client, interval=interval, refresh=refresh)


class Watch:
    """The charts, the thread that feeds them, and the Monitor it reads (started if it is ours).

    Parameters
    ----------
    source, client, interval, refresh
        As :func:`watch` takes them.
    """

    def __init__(
        self, source: Any = None, *, client: Any = None, interval: float = 0.5, refresh: float = 0.5
    ) -> None:
        self._own = not isinstance(source, Monitor)
        self.monitor = Monitor(source, client=client, interval=interval) if self._own else source
        self.monitor.start()
        self.every = float(refresh)
        self._t0 = time.time()
        self.header = widgets.HTML("waiting for the first sample ...")
        self.header.add_class("workbench-watch-header")
        live(self.header)
        self.lines: dict[str, list[tuple[str, bq.Lines]]] = {}
        figures = {key: self._chart(key, *spec) for key, spec in CHARTS.items()}
        self.processes, proc_fig = self._bars()
        self.gpu_note = widgets.HTML()
        self.stages = StageChart()  # where a batch's time goes, and the verdict
        # the GPU chart joins the page once a GPU is seen (a hidden bqplot figure draws at size 0)
        self._gpu_fig, self._gpu_box = figures["gpu"], widgets.Box([])
        self.widget = widgets.VBox(
            [
                self.header,
                widgets.HBox([figures["samples"], figures["mb"], figures["wait"]]),
                widgets.HBox([figures["memory"], proc_fig]),
                *([self.stages.widget] if self.monitor.loader is not None else []),
                self.gpu_note,
                self._gpu_box,
            ]
        )
        self.widget.add_class("workbench-watch")
        self._shown_at: float | None = None
        self._drawn: dict[int, tuple[int, float]] = {}  # mark -> (points, last time) on the page
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-watch", daemon=True)
        self._thread.start()

    # -- charts ----------------------------------------------------------------------------
    def _chart(
        self, key: str, title: str, names: tuple[str, ...], divisor: float, label: str
    ) -> bq.Figure:
        xs, ys = bq.LinearScale(), bq.LinearScale(min=0.0)
        marks = []
        for name, color in zip(names, COLORS):
            mark = bq.Lines(
                x=np.zeros(0),
                y=np.zeros(0),
                scales={"x": xs, "y": ys},
                colors=[color],
                labels=[f"{name} ({SERIES[name].unit})"],
                display_legend=len(names) > 1,
            )
            marks.append(mark)
            self.lines.setdefault(key, []).append((name, mark))
        fig = bq.Figure(
            marks=marks,
            title=title,
            axes=[
                bq.Axis(scale=xs, label="s"),
                bq.Axis(scale=ys, orientation="vertical", label=label, tick_format=".2s"),
            ],
            fig_margin={"top": 40, "bottom": 40, "left": 60, "right": 10},
            layout=widgets.Layout(width="340px", height="240px"),
            legend_location="top-left",
        )
        fig.add_class(f"workbench-watch-{key}")
        self._divisors = {**getattr(self, "_divisors", {}), key: divisor}
        return fig

    def _bars(self) -> tuple[bq.Bars, bq.Figure]:
        xs, ys = bq.OrdinalScale(), bq.LinearScale(min=0.0)
        bars = bq.Bars(
            x=["kernel"],
            y=[[0.0], [0.0]],
            scales={"x": xs, "y": ys},
            type="stacked",
            colors=COLORS[:2],
            labels=["private (USS)", "shared (PSS-USS)"],
            display_legend=True,
        )
        fig = bq.Figure(
            marks=[bars],
            title="PSS per process (MiB)",
            axes=[bq.Axis(scale=xs), bq.Axis(scale=ys, orientation="vertical", tick_format=".2s")],
            fig_margin={"top": 40, "bottom": 60, "left": 60, "right": 10},
            layout=widgets.Layout(width="520px", height="240px"),
            legend_location="top-right",
        )
        fig.add_class("workbench-watch-processes")
        return bars, fig

    # -- updates ---------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if self._shown_at is not None and time.monotonic() - self._shown_at < SETTLE_S:
                continue
            try:
                self.refresh()
            except Exception as exc:  # a widget closed under us: say it in the header, stop
                self.header.value = html.escape(f"watch stopped: {type(exc).__name__}: {exc}")
                updated(self.header)
                return

    def refresh(self) -> None:
        """Redraw every chart from the Monitor's history now (the thread does this each tick)."""
        history, latest = self.monitor.history(), self.monitor.latest()
        for key, marks in self.lines.items():
            for name, mark in marks:
                points = np.asarray(history.get(name, []), dtype=float).reshape(-1, 2)
                drawn = (len(points), points[-1, 0] if len(points) else 0.0)
                if self._drawn.get(id(mark)) == drawn:
                    continue
                self._drawn[id(mark)] = drawn
                with mark.hold_sync():
                    mark.x, mark.y = points[:, 0] - self._t0, points[:, 1] / self._divisors[key]
        procs = (latest.get("memory") or {}).get("processes") or []
        if procs:
            names = [f"{p['name']} {p['pid']}" for p in procs]
            with self.processes.hold_sync():
                if list(self.processes.x) != names:
                    self.processes.x = names
                self.processes.y = [
                    [p["uss"] / MIB for p in procs],
                    [max(0, p["pss"] - p["uss"]) / MIB for p in procs],
                ]
        self.stages.refresh(history, latest, self._t0)
        gpu = latest.get("gpu") or {}
        if gpu.get("available") and not self._gpu_box.children:
            self._gpu_box.children = (self._gpu_fig,)
        self.gpu_note.value = html.escape(gpu.get("reason", gpu.get("name", "")))
        self.header.value = header(latest)
        if latest:  # its first figures
            updated(self.header)

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Draw the last state, stop drawing (the charts keep it) and the Monitor it made."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()
            if self._shown_at is not None:  # a run shorter than the settling is drawn too
                time.sleep(max(0.0, SETTLE_S - (time.monotonic() - self._shown_at)))
            with contextlib.suppress(Exception):  # closed widgets: nothing left to draw on
                self.refresh()
        if self._own:
            self.monitor.stop()

    def close(self) -> None:
        """:meth:`stop`, then take the charts off the page."""
        self.stop()
        self.widget.close()

    def shown(self) -> None:
        """The charts were just put on a page: drawing waits ``SETTLE_S`` (bqplot's scales)."""
        self._shown_at = time.monotonic()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self.shown()
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # what a saved notebook shows where the widget state is gone
        bundle["text/plain"] = (
            "wb.watch: live charts (samples/s, MB/s, wait, memory per process, "
            "GPU); run the cell to see them"
        )
        return bundle

    def __repr__(self) -> str:
        state = "stopped" if self._stop.is_set() else f"drawing every {self.every:g} s"
        return f"Watch({state}; {header(self.monitor.latest(), markup=False)})"


def header(latest: dict[str, Any], markup: bool = True) -> str:
    """One line of the newest figures, e.g. ``12,000 samples/s · 48.0 MB/s · wait 12% · ...``."""
    if not latest:
        return "waiting for the first sample ..."
    parts = []
    loader = latest.get("loader")
    if loader:
        parts += [
            f"{loader['samples_per_s']:,.0f} samples/s",
            f"{loader['mb_per_s']:,.1f} MB/s",
            f"wait {loader['wait_fraction']:.0%}",
            f"read-ahead {loader['read_ahead']}",
        ]
        shares = shares_text(loader.get("sources") or {})  # wb.mix: of the rows so far
        parts += [shares] if shares else []
        if loader.get("ram_tier"):  # open_dataset(cache="ram"): copying, ready, or why not
            parts.append(loader["ram_tier"]["text"])
    memory = latest.get("memory") or {}
    total = memory.get("total") or {}
    if total:
        parts.append(f"PSS {total['pss'] / MIB:,.0f} MiB in {len(memory['processes'])} processes")
    cache = latest.get("page_cache")
    if cache:
        parts.append(f"page cache {cache['fraction']:.0%} of the dataset")
    limits = (latest.get("machine") or {}).get("limits")
    if limits:  # "limit 4.0 GiB, cgroup v2 (...); 2 cores": what every default sized itself to
        parts.append(limits)
    text = " · ".join(parts)
    if loader and markup:
        config = ", ".join(f"{k}={v}" for k, v in loader["config"].items())
        return f"<b>{html.escape(text)}</b><br><code>{html.escape(config)}</code>"
    return html.escape(text) if markup else text
