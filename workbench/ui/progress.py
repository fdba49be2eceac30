"""Progress bars: the shell that turns ``progress(done, total)`` callbacks into a tqdm bar.

In a terminal the bar is tqdm's own, on stderr. In a Jupyter kernel it is one display updated in
place (``display_id``) with tqdm's meter as text and a bar as HTML, so the saved notebook shows
the finished bar ("100% 20,000/20,000 rows ...") rather than a widget frozen at its first frame.

>>> bar = reporter(True, "convert -> demo.store")
>>> bar(10_000, 20_000); bar(20_000, 20_000); bar.close()
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


def reporter(progress: bool | ProgressFn | None, desc: str, unit: str = "row") -> Any:
    """A callable ``(done, total)`` with ``close()``: a bar for True, the user's callback, or nothing."""
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
        self._tqdm: Any = None

    def __call__(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        now = time.perf_counter()
        if now - self._drawn >= _EVERY_S:
            self._drawn = now
            self._draw()

    def close(self) -> None:
        self._draw()
        if self._tqdm is not None:
            self._tqdm.close()

    def meter(self) -> str:
        from tqdm import tqdm

        total = self.total if self.total and self.total >= self.done else None
        return tqdm.format_meter(self.done, total, time.perf_counter() - self.start,
                                 prefix=self.desc, unit=f" {self.unit}s", unit_scale=False,
                                 ncols=90)

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

    def _draw_terminal(self) -> None:
        from tqdm import tqdm

        if self._tqdm is None:
            self._tqdm = tqdm(desc=self.desc, unit=f" {self.unit}s", file=sys.stderr,
                              dynamic_ncols=True)
        bar = self._tqdm
        if self.total is not None and bar.total != self.total:
            bar.total = self.total
        bar.update(self.done - bar.n)

    def _html(self) -> str:
        frac = min(1.0, self.done / self.total) if self.total else 0.0
        width = f"{100 * frac:.1f}%"
        text = html.escape(self.meter())
        return ('<div style="display:flex;align-items:center;gap:0.6em;font-family:monospace">'
                '<div style="width:12em;height:0.8em;border:1px solid #888;border-radius:2px">'
                f'<div style="width:{width};height:100%;background:#4c9a2a"></div></div>'
                f"<span>{text}</span></div>")


def _in_notebook() -> bool:
    ip = sys.modules.get("IPython")
    if ip is None:
        return False
    shell = ip.get_ipython()  # type: ignore[attr-defined]
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
