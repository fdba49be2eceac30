"""Where the time goes, in ``wb.watch`` (and so in ``wb.tune``): the readers' stages a batch as
stacked areas over time, the consumer's wait and step as lines over them, and the verdict
(:func:`workbench.monitoring.verdicts.bottleneck`) under the chart, from the Monitor's
``stage_<name>_s`` series (:data:`workbench.monitoring.metrics.SERIES`).

The stack is the producer's time a batch on one reader (sampler, read, transform, collate,
hand-over, host-to-device); the lines are the consumer's: a wait near the top of the stack
means the step waits for the readers, a wait near zero that it does not.

>>> chart = StageChart(); chart.refresh({}, {}, t0=0.0); chart.verdict.value
'waiting for the first timed batch ...'
"""

from __future__ import annotations

import html
from typing import Any

import bqplot as bq
import ipywidgets as widgets
import numpy as np

from ..monitoring.metrics import STAGE_SERIES, stage_note
from ..monitoring.stages import PRODUCER

__all__: list[str] = []

STAGE_COLORS = {
    "sample": "#8c564b",
    "read": "#1f77b4",
    "transform": "#ff7f0e",
    "collate": "#2ca02c",
    "handoff": "#9467bd",
    "to_device": "#d62728",
    "wait": "#000000",
    "step": "#7f7f7f",
}
CONSUMER = ("wait", "step")
MS = 1e3  # the chart is in milliseconds a batch
WAITING = "waiting for the first timed batch ..."


def stage_points(history: dict[str, list[list[float]]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The sample times and each stage's seconds a batch at them, from a Monitor's history
    (every stage series is sampled at the same times; a shorter one is aligned at the end).

    >>> t, v = stage_points({"stage_read_s": [[1.0, 0.5], [2.0, 0.25]]})
    >>> t.tolist(), v["read"].tolist(), v["step"].tolist()
    ([1.0, 2.0], [0.5, 0.25], [0.0, 0.0])
    """
    series = {
        s: np.asarray(history.get(n, []), float).reshape(-1, 2) for n, s in STAGE_SERIES.items()
    }
    n = max(len(p) for p in series.values())
    longest = max(series.values(), key=len)
    values = {}
    for s, p in series.items():
        column = np.zeros(n)
        if len(p):
            column[n - len(p) :] = p[:, 1]
        values[s] = column
    return longest[:, 0], values


class StageChart:
    """The figure, its two marks (``stack``: the producer's stages, cumulative, top first;
    ``consumer``: wait and step) and the verdict under it."""

    def __init__(self) -> None:
        xs, ys = bq.LinearScale(), bq.LinearScale(min=0.0)
        top_first = PRODUCER[::-1]  # each area is drawn filled to the bottom over the one above
        self.stack = bq.Lines(
            x=np.zeros(0),
            y=np.zeros((len(top_first), 0)),
            scales={"x": xs, "y": ys},
            colors=[STAGE_COLORS[s] for s in top_first],
            fill_colors=[STAGE_COLORS[s] for s in top_first],
            fill="bottom",
            fill_opacities=[0.85] * len(top_first),
            stroke_width=1,
            labels=list(top_first),
            display_legend=True,
        )
        self.consumer = bq.Lines(
            x=np.zeros(0),
            y=np.zeros((len(CONSUMER), 0)),
            scales={"x": xs, "y": ys},
            colors=[STAGE_COLORS[s] for s in CONSUMER],
            line_style="dashed",
            labels=[f"consumer {s}" for s in CONSUMER],
            display_legend=True,
        )
        self.figure = bq.Figure(
            marks=[self.stack, self.consumer],
            title="Where the time goes (ms a batch)",
            axes=[
                bq.Axis(scale=xs, label="s"),
                bq.Axis(scale=ys, orientation="vertical", label="ms a batch", tick_format=".2s"),
            ],
            fig_margin={"top": 40, "bottom": 40, "left": 60, "right": 130},
            layout=widgets.Layout(width="700px", height="260px"),
            legend_location="top-right",
        )
        self.figure.add_class("workbench-watch-stages")
        self.verdict = widgets.HTML(WAITING)
        self.verdict.add_class("workbench-watch-verdict")
        self.note = widgets.HTML()
        self.note.add_class("workbench-watch-stages-note")
        self.widget = widgets.VBox([self.figure, self.verdict, self.note])
        self._drawn: tuple[int, float] = (0, 0.0)

    def refresh(self, history: dict[str, Any], latest: dict[str, Any], t0: float) -> None:
        """Redraw from a Monitor's ``history()`` and ``latest()``; ``t0``: the x axis' zero."""
        times, values = stage_points(history)
        drawn = (len(times), float(times[-1]) if len(times) else 0.0)
        if drawn != self._drawn:
            self._drawn = drawn
            tops = np.cumsum([values[s] for s in PRODUCER], axis=0)[::-1] * MS
            with self.stack.hold_sync():
                self.stack.x, self.stack.y = times - t0, tops
            with self.consumer.hold_sync():
                self.consumer.x = times - t0
                self.consumer.y = np.array([values[s] for s in CONSUMER]) * MS
        loader = latest.get("loader") or {}
        text = loader.get("verdict")
        self.verdict.value = f"<b>{html.escape(text)}</b>" if text else WAITING
        self.note.value = html.escape(stage_note(latest)) if latest else ""
