"""``wb.tune``: change a loader's settings live in JupyterLab while a training step runs, see what
each setting did (live charts and a table of trials), and let autotune search under a memory
budget in the same panel.

The training runs on a background thread (:class:`~workbench.tuning.training.TrainingRun`); the
controls (:mod:`workbench.ui.controls`) call ``Loader.reconfigure``, which applies at the next
batch boundary without losing the epoch. The threads only set widget traits: no prints, no
``clear_output``, so other cells run meanwhile and nbval sees no stray output.

>>> ds = wb.open_dataset({"x": np.zeros((20_000, 16), "float32")})
>>> t = tune(ds, batch_size=256, refresh=0.05); t.controls["batch_size"].value = 1024
>>> time.sleep(0.5); t.config.batch_size
1024
>>> t.close()
"""

from __future__ import annotations

import html
import threading
import time  # noqa: F401  (the examples above wait with it)
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..loading.config import LIVE_OPTIONS, LoaderConfig
from ..loading.loaders import Loader, loader
from ..loading.options import takes_loader_options
from ..tuning.search import AutotuneResult, search
from ..tuning.training import TrainingRun, knobs
from ..tuning.trials import best
from .charts import Watch
from .controls import Controls, html_box, layout, make_buttons, settings_label
from .tables import trials_table

__all__ = ["Tuner", "tune"]


@takes_loader_options
def tune(
    source: Any,
    step: Callable[[Any], Any] | None = None,
    *,
    device: str | None = None,
    refresh: float = 0.5,
    memory_budget: int | str | None = None,
    autotune_s: float = 30.0,
    **loader_options: Any,
) -> Tuner:
    """Train ``step(batch)`` over ``source`` on a background thread, with controls that
    reconfigure the loader live, the watch charts, a table of trials and autotune.

    Parameters
    ----------
    source : Dataset or Loader
        What to load; a Loader keeps its own settings (the loader options are then ignored).
    step : callable, optional
        ``step(batch)``, the user's training step; default: read the batch.
    device : str, optional
        Move each batch there (for example "cuda") through ``wb.to_device`` before ``step``.
    refresh : float, default 0.5
        Seconds between redraws of the charts and the table.
    memory_budget : int or str, optional
        Autotune's budget (bytes or "4GiB"); default: half the memory available.
    autotune_s : float, default 30.0
        Seconds the autotune button searches for.

    Returns
    -------
    Tuner
        The panel (display it); ``best``, ``trials``, ``code_line()``, ``loader()``, ``close()``.

    Raises
    ------
    InvalidInputError
        An invalid loader option.

    Examples
    --------
    >>> t = tune(wb.open_dataset({"x": np.zeros((5000, 4), "float32")}), refresh=0.05)
    >>> time.sleep(0.3); t.close(); len(t.trials) >= 1
    True
    """
    return Tuner(
        source,
        step,
        device=device,
        refresh=refresh,
        memory_budget=memory_budget,
        autotune_s=autotune_s,
        **loader_options,
    )


@takes_loader_options
class Tuner:
    """The panel :func:`tune` returns: controls, the watch charts, the trials table, the buttons.

    Parameters
    ----------
    source, step, device, refresh, memory_budget, autotune_s
        As for :func:`tune`.
    """

    def __init__(
        self,
        source: Any,
        step: Callable[[Any], Any] | None = None,
        *,
        device: str | None = None,
        refresh: float = 0.5,
        memory_budget: int | str | None = None,
        autotune_s: float = 30.0,
        **loader_options: Any,
    ) -> None:
        self.dataset = source.dataset if isinstance(source, Loader) else source
        self._options = dict(loader_options)
        self._loader = source if isinstance(source, Loader) else loader(source, **loader_options)
        self.memory_budget, self.autotune_s, self.every = memory_budget, autotune_s, refresh
        self.result: AutotuneResult | None = None
        self.run = TrainingRun(self._loader, step, device=device)
        self.watch = Watch(self._loader, interval=refresh, refresh=refresh)
        self._knobs = Controls(self._loader.config, self._changed)
        self.controls = self._knobs.widgets
        self.label, self.status, self.table, self.code = (
            html_box(f"workbench-tune-{name}") for name in ("label", "status", "trials", "code")
        )
        self.buttons = self._buttons()
        self.widget = layout(
            self.controls,
            self.buttons,
            [self.label, self.status, self.watch.widget, self.table, self.code],
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._refresh_loop, name="workbench-tune-view", daemon=True
        )
        self._thread.start()
        self.refresh()

    # -- controls ---------------------------------------------------------------------------
    def _changed(self, name: str, value: Any) -> None:
        try:
            self._loader.reconfigure(**{name: value})
            self.status.value = ""
        except Exception as exc:  # a bad combination: say so, keep running
            self.status.value = html.escape(f"{name}={value!r}: {exc}")

    def _buttons(self) -> dict[str, widgets.Button]:
        buttons = make_buttons()
        buttons["pause"].on_click(lambda _: self.pause() if self.running else self.resume())
        buttons["stop"].on_click(lambda _: self.close())
        buttons["autotune"].on_click(lambda _: self.autotune(wait=False))
        buttons["code"].on_click(lambda _: self._show_code())
        return buttons

    # -- facts for code --------------------------------------------------------------------
    @property
    def config(self) -> LoaderConfig:
        """The settings the running loader uses now."""
        return self._loader.config

    @property
    def running(self) -> bool:
        return self.run.running

    @property
    def trials(self) -> list[dict[str, Any]]:
        """Every setting held so far (the open one last), as dicts."""
        return [t.as_dict() for t in self.run.holding()]

    @property
    def best(self) -> dict[str, Any] | None:
        """The fastest measured setting's options, as ``wb.loader`` takes them."""
        top = best(self.run.holding())
        return dict(top.config) if top is not None else None

    def loader(self) -> Loader:
        """A new loader over the same dataset with the best setting (and your other options).

        Returns
        -------
        Loader
            With the fastest measured setting; the running loader's while none is measured.
        """
        return loader(self.dataset, **{**self._options, **(self.best or knobs(self._loader))})

    def code_line(self) -> str:
        """The ``wb.loader(ds, ...)`` line that builds what :meth:`loader` does.

        Returns
        -------
        str
            One line of Python, to paste into a training script.
        """
        options = {**self._options, **(self.best or knobs(self._loader))}
        return LoaderConfig.build(**options).code_line()

    # -- actions ---------------------------------------------------------------------------
    def apply(self, **changes: Any) -> LoaderConfig:
        """Reconfigure the running loader and the controls: ``tuner.apply(**verdict.change)``.

        Parameters
        ----------
        **changes
            Live loader options (``batch_size=``, ``num_workers=``, ``worker_type=``, ...).

        Returns
        -------
        LoaderConfig
            The settings now in force.
        """
        config = self._loader.reconfigure(**changes)
        self._knobs.sync(config)
        return config

    def pause(self) -> None:
        self.run.pause()
        self.buttons["pause"].description, self.buttons["pause"].icon = "resume", "play"

    def resume(self) -> None:
        self.run.resume()
        self.buttons["pause"].description, self.buttons["pause"].icon = "pause", "pause"

    def autotune(self, wait: bool = True, time_budget_s: float | None = None) -> None:
        """Search the settings under the memory budget in this panel (trials appear live), then
        run with the best.

        Parameters
        ----------
        wait : bool, default True
            Return when the search is done; False returns at once (the button's way).
        time_budget_s : float, optional
            Seconds to search for; default: the panel's ``autotune_s``.
        """
        thread = threading.Thread(
            target=self._autotune, args=(time_budget_s,), daemon=True, name="workbench-autotune"
        )
        self.buttons["autotune"].disabled = True
        thread.start()
        if wait:
            thread.join()

    def _autotune(self, time_budget_s: float | None) -> None:
        self.status.value = "autotune: searching ..."
        try:
            self.result = search(
                self.run,
                memory_budget=self.memory_budget,
                time_budget_s=time_budget_s or self.autotune_s,
            )
            chosen = {k: v for k, v in self.result.best.items() if k in LIVE_OPTIONS}
            self._knobs.sync(self._loader.reconfigure(**chosen))
            self.status.value = html.escape(f"autotune: {self.result!r}")
        except Exception as exc:
            self.status.value = html.escape(f"autotune failed: {type(exc).__name__}: {exc}")
        finally:
            self.buttons["autotune"].disabled = False

    def _show_code(self) -> None:
        self.code.value = f"<pre>{html.escape(self.code_line())}</pre>"

    # -- view ------------------------------------------------------------------------------
    def _refresh_loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.refresh()
            except Exception as exc:  # a widget closed under us
                self.status.value = html.escape(f"tune view stopped: {exc}")
                return

    def refresh(self) -> None:
        """Redraw the label and the trials table now (the view thread does this each tick)."""
        state = "running" if self.running else "paused" if self.run.alive else "stopped"
        self.label.value = settings_label(state, self.config)
        if self.run.error is not None:
            self.status.value = html.escape(f"the step raised: {self.run.error!r}")
        self.table.value = trials_table(self.trials)

    def close(self) -> None:
        """End the training thread, every reader thread and worker process, and the views."""
        self._stop.set()
        self.watch.close()
        try:
            self.run.close()
        finally:
            self.refresh()

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        self.watch.shown()
        bundle = self.widget._repr_mimebundle_(**kwargs)
        # what a saved notebook shows where the widget state is gone
        bundle["text/plain"] = (
            "wb.tune: loader controls, live charts and the trials table; run the cell to see them"
        )
        return bundle

    def __repr__(self) -> str:
        return f"Tuner({self._loader!r}, {len(self.trials)} trials)"
