"""The workbench pages of the Dask dashboard: Bokeh documents drawn from the scheduler's
:class:`~workbench.dashboard.plugin.Collector`, with the series' names and units from
:data:`workbench.monitoring.metrics.SERIES` (the same ones the notebook widget draws).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from bokeh.layouts import column, row
from bokeh.models import ColumnDataSource, Div, FactorRange, NumeralTickFormatter
from bokeh.plotting import figure

from ..monitoring.metrics import SERIES, Timeline, stage_note
from .plugin import Collector, collector
from .stagechart import Stages, stages_text

__all__: list[str] = []

UPDATE_MS = 500
KEEP = 600  # points per line on the page (5 minutes at the Monitor's default 0.5 s)
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
WAITING = (
    "<b>Waiting for a workbench Monitor.</b> In the notebook: "
    "<code>wb.watch(loader, client=client)</code> or "
    "<code>wb.Monitor(loader, client=client).start()</code>."
)


class Lines:
    """A timeline of some :data:`SERIES`, one line and one ColumnDataSource (named
    ``workbench-<series>``) per series, streamed with the points the figure has not drawn."""

    def __init__(self, title: str, names: tuple[str, ...], *, fmt: str | None = None) -> None:
        self.names, self.seen = names, 0.0
        self.fig = figure(
            title=title,
            x_axis_type="datetime",
            height=200,
            sizing_mode="stretch_width",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        self.sources = {}
        for name, color in zip(names, COLORS):
            src = ColumnDataSource({"t": [], "v": []}, name=f"workbench-{name}")
            self.fig.line(
                "t",
                "v",
                source=src,
                color=color,
                line_width=2,
                legend_label=f"{name} ({SERIES[name].unit})",
            )
            self.sources[name] = src
        self.fig.legend.location = "top_left"
        self.fig.legend.click_policy = "hide"
        if fmt:
            self.fig.yaxis.formatter = NumeralTickFormatter(format=fmt)

    def reset(self) -> None:
        self.seen = 0.0
        for src in self.sources.values():
            src.data = {"t": [], "v": []}

    def update(self, timeline: Timeline) -> None:
        for name, points in timeline.since(self.seen).items():
            if name in self.sources:
                self.sources[name].stream(
                    {"t": [t * 1000 for t, _ in points], "v": [v for _, v in points]}, rollover=KEEP
                )
                self.seen = max(self.seen, points[-1][0])


class Processes:
    """The newest memory of each process as stacked bars: private (USS), its share of shared
    pages (PSS - USS) and swap; the bars add up to the tree's PSS."""

    PARTS = ("uss", "shared_pss", "swap")

    def __init__(self) -> None:
        self.source = ColumnDataSource(
            {"name": [], **{p: [] for p in self.PARTS}}, name="workbench-processes"
        )
        self.fig = figure(
            title="Memory per process (PSS = private + share of shared pages)",
            y_range=FactorRange(factors=[]),
            height=260,
            sizing_mode="stretch_width",
            tools="save",
        )
        self.fig.hbar_stack(
            list(self.PARTS),
            y="name",
            height=0.7,
            source=self.source,
            color=COLORS[:3],
            legend_label=["private (USS)", "shared (PSS-USS)", "swap"],
        )
        self.fig.xaxis.formatter = NumeralTickFormatter(format="0.0 b")
        self.fig.legend.location = "bottom_right"

    def update(self, processes: list[dict[str, Any]]) -> None:
        names = [f"{p['name']} ({p.get('pid', '?')})" for p in processes]
        self.source.data = {
            "name": names,
            "uss": [p.get("uss", 0) for p in processes],
            "shared_pss": [max(0, p.get("pss", 0) - p.get("uss", 0)) for p in processes],
            "swap": [p.get("swap", 0) for p in processes],
        }
        if list(self.fig.y_range.factors) != names:
            self.fig.y_range.factors = names


class Panel:
    """One page's figures and a line of text; :meth:`update` redraws from the collector."""

    def __init__(
        self,
        lines: list[Lines | Stages],
        extra: Any = None,
        text: Callable[[Collector, dict[str, Any]], str] = lambda c, s: "",
    ) -> None:
        self.lines, self.extra, self.text = lines, extra, text
        self.div = Div(text=WAITING, sizing_mode="stretch_width")
        self.root = column(
            self.div,
            *([extra.fig] if extra else []),
            *[ln.fig for ln in lines],
            sizing_mode="stretch_width",
        )
        self.source: str | None = None

    def update(self, plugin: Collector) -> None:
        current = plugin.current()
        if current is None:
            if self.extra is not None:
                self.extra.update(plugin.worker_memory())
            return
        source, timeline, snap = current
        if source != self.source:  # another kernel took over: start its lines afresh
            self.source = source
            for ln in self.lines:
                ln.reset()
        for ln in self.lines:
            ln.update(timeline)
        if self.extra is not None:
            self.extra.update(merged_processes(snap, plugin.worker_memory()))
        self.div.text = f"<b>{html.escape(source)}</b> " + self.text(plugin, snap)


def merged_processes(snap: dict[str, Any], workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Monitor's processes, plus the Dask workers it did not already count."""
    procs = list(snap.get("processes") or [])
    named = {p["name"] for p in procs}
    return procs + [w for w in workers if w["name"] not in named]


def _throughput_text(plugin: Collector, snap: dict[str, Any]) -> str:
    config = snap.get("config")
    if not config:
        return "watches no loader"
    note = stage_note(snap)  # without a GPU every page says what it cannot show
    text = "loader: " + html.escape(", ".join(f"{k}={v}" for k, v in config.items()))
    return text + (f" · {html.escape(note)}" if note else "")


def _memory_text(plugin: Collector, snap: dict[str, Any]) -> str:
    cache, pinned = snap.get("page_cache") or {}, snap.get("pinned") or {}
    parts = []
    if cache:
        parts.append(f"page cache: {cache.get('fraction', 0):.0%} of the dataset's files resident")
    parts.append(
        f"pinned: {pinned['bytes'] / 2**20:.1f} MiB"
        if pinned.get("available")
        else html.escape(pinned.get("reason", "pinned: unknown"))
    )
    if (snap.get("machine") or {}).get("limits"):
        parts.append(html.escape(snap["machine"]["limits"]))
    parts.append("RSS counts shared pages once per process; PSS splits them, so PSS adds up")
    return " · ".join(parts)


def _gpu_text(plugin: Collector, snap: dict[str, Any]) -> str:
    gpu = snap.get("gpu") or {}
    if not gpu.get("available"):
        return html.escape(gpu.get("reason", "no GPU"))
    return html.escape(f"{gpu.get('name', 'GPU')}: {gpu.get('utilization', 0):.0%} busy")


def throughput_panel() -> Panel:
    return Panel(
        [
            Lines("Samples per second", ("samples_per_s",), fmt="0,0"),
            Lines("MB per second", ("mb_per_s",), fmt="0,0.0"),
            Lines("Consumer wait (1: input-bound, 0: compute-bound)", ("wait_fraction",)),
            Lines("Time between batches", ("step_p50_s", "step_p95_s")),
            Lines("Batches read ahead", ("read_ahead",)),
        ],
        text=_throughput_text,
    )


def memory_panel() -> Panel:
    return Panel(
        [
            Lines(
                "Memory of the loader's processes, page cache and pinned",
                (
                    "memory_pss_bytes",
                    "memory_real_bytes",
                    "memory_rss_bytes",
                    "page_cache_bytes",
                    "pinned_bytes",
                    "available_bytes",
                ),
                fmt="0.0 b",
            )
        ],
        extra=Processes(),
        text=_memory_text,
    )


def gpu_panel() -> Panel:
    return Panel(
        [
            Lines("GPU utilization", ("gpu_utilization",), fmt="0%"),
            Lines("GPU memory used", ("gpu_memory_bytes",), fmt="0.0 b"),
            Lines(
                "PCIe (NVML, whole device)",
                ("gpu_pcie_rx_bytes_per_s", "gpu_pcie_tx_bytes_per_s"),
                fmt="0.0 b",
            ),
        ],
        text=_gpu_text,
    )


def stages_panel() -> Panel:
    return Panel([Stages()], text=stages_text)


def page(*panels: Callable[[], Panel], title: str) -> Callable[[Any, Any, Any], None]:
    """A dashboard application: ``doc_fn(scheduler, extra, doc)`` as ``applications`` wants."""

    def doc_fn(scheduler: Any, extra: Any, doc: Any) -> None:
        plugin = collector(scheduler)
        built = [make() for make in panels]
        for p in built:
            p.update(plugin)
        doc.add_root(
            row(*[p.root for p in built], sizing_mode="stretch_width")
            if len(built) > 1
            else built[0].root
        )
        doc.title = f"Dask: {title}"
        doc.add_periodic_callback(lambda: [p.update(plugin) for p in built], UPDATE_MS)

    doc_fn.__name__ = title.lower().replace(" ", "_")
    return doc_fn


PAGES: dict[str, Callable[[Any, Any, Any], None]] = {
    "/individual-workbench-throughput": page(throughput_panel, title="Workbench Throughput"),
    "/individual-workbench-memory": page(memory_panel, title="Workbench Memory"),
    "/individual-workbench-gpu": page(gpu_panel, title="Workbench GPU"),
    "/individual-workbench-stages": page(stages_panel, title="Workbench Stages"),
    "/workbench": page(throughput_panel, memory_panel, gpu_panel, stages_panel, title="Workbench"),
}
