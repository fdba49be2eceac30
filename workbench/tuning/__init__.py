"""Tune: ``trials`` (what one setting, held for a while, measured; pure), ``training`` (the user's
step run on a background thread, with the process tree's memory sampled), ``search``
(:func:`autotune`, one knob at a time), ``budget`` (the memory budget it never crosses: the
settings it refuses, the trials it cuts). ``wb.tune``'s panel (``workbench.ui.panel``) is a shell
over them.

>>> sorted(wb.tuning.__all__)
['AutotuneResult', 'Trial', 'autotune']
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {"AutotuneResult": ".search", "Trial": ".trials", "autotune": ".search"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
