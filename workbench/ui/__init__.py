"""The UI room: the only modules that import ipywidgets, Bokeh, tqdm or IPython's display.

Everything here is a thin shell over the public functions; ``import workbench`` never loads it.
``charts`` (:func:`watch`) draws a Monitor live, ``stagechart`` where each batch's time goes
and the verdict; ``panel`` (:func:`tune`) adds the controls (``controls``: the widgets), the
trials table and autotune; ``reprs``, ``tables`` and ``diagnosis`` draw the explore results;
``progress`` turns callbacks into tqdm bars.

>>> sorted(wb.ui.__all__)
['Tuner', 'Watch', 'tune', 'watch']
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {"Tuner": ".panel", "Watch": ".charts", "tune": ".panel", "watch": ".charts"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
