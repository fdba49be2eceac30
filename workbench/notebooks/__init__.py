"""Notebooks in CI: ``pytest --wb-notebooks PATHS`` (the ``pytest11`` plugin in ``plugin``) or
``workbench notebooks check PATHS`` runs each notebook with nbval and compares every output after
``sanitizers`` replaced the figures that change from run to run; ``guards`` (``wb.expect``) turns
a measured figure into an assertion inside a notebook.

>>> import workbench.notebooks
>>> sorted(workbench.notebooks.__all__)
['expect', 'sanitize']
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {"expect": ".guards", "sanitize": ".sanitizers"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
