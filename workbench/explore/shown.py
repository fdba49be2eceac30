"""How an explore result shows itself: text for ``str()``, logs and the CLI, HTML in JupyterLab,
both drawn by the shell (``workbench.ui.reprs``), so every place says the same things. The one
door from this package into the shell's views: the core reaches it lazily, on first display.

>>> str(wb.inspect("x.npy")).splitlines()[0]
'x.npy: .npy file, 1,000 rows'
"""

from __future__ import annotations

from typing import ClassVar

__all__: list[str] = []


class Shown:
    """A result the shell draws: each subclass names its ``view`` (``"stats"``, ...), the key of
    the shell's text and HTML for it; ``__repr__`` stays each result's own one-line summary."""

    view: ClassVar[str]

    def __str__(self) -> str:
        from ..ui.reprs import result_text

        return result_text(self)

    def _repr_html_(self) -> str:
        from ..ui.reprs import result_html

        return result_html(self)
