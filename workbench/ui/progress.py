"""Progress bars: the shell that turns ``progress(done, total)`` callbacks into a tqdm bar.

In a terminal the bar is tqdm's meter redrawn in place on stderr (in a log, a line every 30 s).
In a Jupyter kernel it is one display updated in place (``display_id``) with tqdm's meter as text
and a bar as HTML, so the saved notebook shows the finished bar ("100% 20,000/20,000 rows ...")
rather than a widget frozen at its first frame.

>>> bar = reporter(True, "convert -> demo.store")
>>> bar(10_000, 20_000); bar(20_000, 20_000); bar.close()   # drawn on stderr
>>> bar.meter()  # doctest: +ELLIPSIS
'convert -> demo.store: 100%|...| 20,000/20,000 rows [...]'
"""

from __future__ import annotations

import html
import sys
import time
from collections.abc import Callable
from typing import Any

__all__: list[str] = []

ProgressFn = Callable[[int, "int | None"], None]
_EVERY_S = 0.25  # redraw at most 4 times a second; the last state is always drawn on close
_LOG_EVERY_S = 30.0  # not a terminal: one line per 30 s, and the last


def reporter(progress: bool | ProgressFn | None, desc: str, unit: str = "row") -> Any:
    """A callable ``(done, total)`` with ``close()``: a bar for True, the user's callback, or
    nothing."""
    if progress is True:
        return ProgressBar(desc, unit)
    if not progress:
        return _Silent()
    return _Callback(progress)


class _Silent:
    def __call__(self, done: int, total: int | None) -> None:
        pass

    def close(self) -> None:
        pass


class _Callback(_Silent):
    def __init__(self, fn: ProgressFn) -> None:
        self.fn = fn

    def __call__(self, done: int, total: int | None) -> None:
        self.fn(done, total)


class ProgressBar:
    """tqdm's meter, drawn on stderr or as one in-place notebook display."""

    def __init__(self, desc: str, unit: str = "row") -> None:
        self.desc, self.unit = desc, unit
        self.start = time.perf_counter()
        self.done, self.total = 0, None
        self._drawn = 0.0
        self._notebook = _in_notebook()
        self._handle: Any = None
        self._logged = self.start

    def __call__(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        now = time.perf_counter()
        if now - self._drawn >= _EVERY_S:
            self._drawn = now
            self._draw()

    def close(self) -> None:
        if self._notebook:
            self._draw()
        else:
            self._draw_terminal(final=True)

    def meter(self, bar: bool = True) -> str:
        """tqdm's meter for the current state, e.g.
        ``convert -> x: 100%|███| 20,000/20,000 rows ...``."""
        from tqdm import tqdm

        total = self.total if self.total and self.total >= self.done else None
        if total is None:
            fmt = "{desc}: {n:,}{unit} [{elapsed}, {rate_fmt}]"
        else:
            fmt = (
                "{desc}: {percentage:3.0f}%"
                + ("|{bar}|" if bar else "")
                + " {n:,}/{total:,}{unit} [{elapsed}<{remaining}, {rate_fmt}]"
            )
        return tqdm.format_meter(
            self.done,
            total,
            time.perf_counter() - self.start,
            prefix=self.desc,
            unit=f" {self.unit}s",
            unit_scale=True,
            bar_format=fmt,
            ncols=90,
        )

    def _draw(self) -> None:
        if not self._notebook:
            self._draw_terminal()
            return
        from IPython.display import display

        bundle = {"text/plain": self.meter(), "text/html": self._html()}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)

    def _draw_terminal(self, final: bool = False) -> None:
        # a terminal redraws one line in place; a log (CI, a pipe) gets a line now and then
        tty = sys.stderr.isatty()
        now = time.perf_counter()
        if tty:
            sys.stderr.write("\r" + self.meter() + ("\n" if final else ""))
        elif final or now - self._logged >= _LOG_EVERY_S:
            self._logged = now
            sys.stderr.write(self.meter() + "\n")
        sys.stderr.flush()

    def _html(self) -> str:
        frac = min(1.0, self.done / self.total) if self.total else 0.0
        width = f"{100 * frac:.1f}%"
        text = html.escape(self.meter(bar=False))
        return (
            '<div style="display:flex;align-items:center;gap:0.6em;font-family:monospace">'
            '<div style="width:12em;height:0.8em;border:1px solid #888;border-radius:2px">'
            f'<div style="width:{width};height:100%;background:#4c9a2a"></div></div>'
            f"<span>{text}</span></div>"
        )


def _in_notebook() -> bool:
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    shell = ip.get_ipython()  # type: ignore[attr-defined]
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
