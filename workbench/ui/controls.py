"""The tune panel's widgets: the loader's knobs as controls, kept in step with its settings
without echoing a change back, the buttons, the label, the HTML boxes and the layout.
``wb.tune`` (:mod:`workbench.ui.panel`) wires them to the running loader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..loading.config import LoaderConfig
from ..loading.sampling import ORDERS
from ..monitoring.container import container_limits

__all__: list[str] = []

BATCH_SIZES = [2**k for k in range(4, 17)]
RUN_ROWS = [2**k for k in range(0, 9)]


class Controls:
    """The loader's knobs as widgets (``widgets[name]``, by option name): ``on_change(name,
    value)`` runs when the user moves one, never when :meth:`sync` sets them."""

    def __init__(self, config: LoaderConfig, on_change: Callable[[str, Any], None]) -> None:
        self.widgets = _knobs(config)
        self.syncing = False
        self.on_change = on_change
        for name, w in self.widgets.items():
            w.add_class(f"workbench-tune-{name.replace('_', '-')}")
            w.observe(lambda change, name=name: self._changed(name, change["new"]), "value")

    def _changed(self, name: str, value: Any) -> None:
        if not self.syncing:
            self.on_change(name, value)

    def sync(self, config: LoaderConfig) -> None:
        """Show ``config``'s values (a batch size or run length off the scale joins it)."""
        self.syncing = True
        try:
            for name, w in self.widgets.items():
                value = getattr(config, name)
                if isinstance(w, widgets.SelectionSlider) and value not in w.options:
                    w.options = sorted({*w.options, value})
                w.value = value
        finally:
            self.syncing = False


def _knobs(c: LoaderConfig) -> dict[str, widgets.Widget]:
    cores = container_limits().cores
    sizes = sorted({*BATCH_SIZES, c.batch_size})
    style = {"description_width": "initial"}
    return {
        "batch_size": widgets.SelectionSlider(
            options=sizes,
            value=c.batch_size,
            description="batch size",
            continuous_update=False,
            style=style,
        ),
        "num_workers": widgets.IntSlider(
            value=c.num_workers,
            min=0,
            max=max(8, 2 * cores),
            description="workers",
            continuous_update=False,
        ),
        "worker_type": widgets.ToggleButtons(
            options=["thread", "process"], value=c.worker_type, description="type"
        ),
        "prefetch_factor": widgets.IntSlider(
            value=c.prefetch_factor,
            min=1,
            max=8,
            description="prefetch",
            continuous_update=False,
        ),
        "pin_memory": widgets.Checkbox(value=c.pin_memory, description="pin memory"),
        "shuffle": widgets.Dropdown(options=list(ORDERS), value=c.shuffle, description="shuffle"),
        "window": widgets.IntSlider(
            value=c.window, min=1, max=64, description="window", continuous_update=False
        ),
        "run_rows": widgets.SelectionSlider(
            options=sorted({*RUN_ROWS, c.run_rows}),
            value=c.run_rows,
            description="run rows",
            continuous_update=False,
            style=style,
        ),
    }


def make_buttons() -> dict[str, widgets.Button]:
    """The panel's buttons, not yet wired: pause, stop, autotune, show code."""
    buttons = {
        "pause": widgets.Button(description="pause", icon="pause"),
        "stop": widgets.Button(description="stop", icon="stop"),
        "autotune": widgets.Button(description="autotune", icon="magic", button_style="primary"),
        "code": widgets.Button(description="show code", icon="code"),
    }
    for name, b in buttons.items():
        b.add_class(f"workbench-tune-{name}")
    return buttons


def settings_label(state: str, c: LoaderConfig) -> str:
    """The label's HTML: the run's ``state`` and the settings in force."""
    return (
        f"<b>{state}</b>: batch_size={c.batch_size}, num_workers="
        f"{c.num_workers} ({c.worker_type}), prefetch_factor="
        f"{c.prefetch_factor}, window={c.window}, run_rows={c.run_rows}, "
        f"shuffle={c.shuffle!r}"
    )


def html_box(css_class: str) -> widgets.HTML:
    """An empty HTML widget the browser test finds by ``css_class``."""
    w = widgets.HTML()
    w.add_class(css_class)
    return w


def layout(
    controls: dict[str, widgets.Widget],
    buttons: dict[str, widgets.Button],
    below: list[widgets.Widget],
) -> widgets.VBox:
    """The panel: the controls in two rows, the buttons, then ``below`` in order."""
    knobs = list(controls.values())
    box = widgets.VBox(
        [
            widgets.HBox(knobs[:4]),
            widgets.HBox(knobs[4:]),
            widgets.HBox(list(buttons.values())),
            *below,
        ]
    )
    box.add_class("workbench-tune")
    return box


# the classes the notebook plugin's --wb-browser looks for
LIVE, WAITING = "workbench-live", "workbench-waiting"


def live(w: widgets.DOMWidget) -> widgets.DOMWidget:
    """Mark ``w`` a live output, waiting until :func:`updated`: a notebook run in JupyterLab by
    the plugin fails where one still waits once every cell ran (its updates never arrived)."""
    w.add_class(LIVE)
    w.add_class(WAITING)
    return w


def updated(w: widgets.DOMWidget) -> None:
    """``w`` showed its first figures (see :func:`live`)."""
    w.remove_class(WAITING)  # a no-op once removed
