"""Where the time goes, on the dashboard (``/individual-workbench-stages`` and ``/workbench``): the
readers' stages a batch as stacked areas over time, the consumer's wait and step as dashed lines,
from the ``stage_<name>_s`` series a Monitor publishes; the verdict and, without a GPU, that the
host-to-device copy is not measured, in the panel's line of text. As ``wb.watch`` draws them.
"""

from __future__ import annotations

import html
from typing import Any

from bokeh.models import ColumnDataSource
from bokeh.plotting import figure

from ..monitoring.metrics import STAGE_SERIES, Timeline, stage_note
from ..monitoring.stages import PRODUCER, STAGES

__all__: list[str] = []

KEEP = 600  # samples on the page (5 minutes at the Monitor's default 0.5 s)
COLORS = ("#8c564b", "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#d62728")  # PRODUCER's order
CONSUMER = {"wait": "#000000", "step": "#7f7f7f"}
MS = 1e3


class Stages:
    """The figure and its ColumnDataSource (``workbench-stages``: ``t`` in ms since the epoch and
    a column per stage in ms a batch), streamed with the samples the page has not drawn; the
    ``Lines`` interface (``fig``, ``reset``, ``update``), so a ``Panel`` holds it as a line."""

    def __init__(self) -> None:
        self.seen = 0.0
        self.source = ColumnDataSource(self._empty(), name="workbench-stages")
        self.fig = figure(
            title="Where the time goes (ms a batch: the readers' stages, the consumer's wait "
            "and step)",
            x_axis_type="datetime",
            height=260,
            sizing_mode="stretch_width",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        self.fig.varea_stack(
            list(PRODUCER),
            x="t",
            source=self.source,
            color=list(COLORS),
            alpha=0.85,
            legend_label=list(PRODUCER),
        )
        for stage, color in CONSUMER.items():
            self.fig.line(
                "t",
                stage,
                source=self.source,
                color=color,
                line_dash="dashed",
                line_width=2,
                legend_label=f"consumer {stage}",
            )
        self.fig.yaxis.axis_label = "ms a batch"
        self.fig.legend.location = "top_left"
        self.fig.legend.click_policy = "hide"

    @staticmethod
    def _empty() -> dict[str, list[float]]:
        return {"t": [], **{s: [] for s in STAGES}}

    def reset(self) -> None:
        self.seen = 0.0
        self.source.data = self._empty()

    def update(self, timeline: Timeline) -> None:
        new = timeline.since(self.seen)
        points = {s: dict(map(tuple, new.get(name, []))) for name, s in STAGE_SERIES.items()}
        times = sorted(set().union(*points.values()))  # every stage is sampled at once
        if not times:
            return
        rows = self._empty()
        rows["t"] = [t * 1000 for t in times]
        for s in STAGES:
            rows[s] = [points[s].get(t, 0.0) * MS for t in times]
        self.source.stream(rows, rollover=KEEP)
        self.seen = times[-1]


def stages_text(plugin: Any, snap: dict[str, Any]) -> str:
    """The panel's line: the verdict on the stages, and what a run without a GPU cannot show."""
    if not snap.get("config"):
        return "watches no loader"
    parts = [html.escape(snap.get("verdict") or "no batch timed yet")]
    note = stage_note(snap)
    return " · ".join(parts + ([html.escape(note)] if note else []))
