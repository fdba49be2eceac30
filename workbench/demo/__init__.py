"""The built-in demo: ``data`` (:func:`make_demo`, one synthetic table written as CSV, NPY, HDF5
and Parquet; ``synthetic`` generates its values, ``files`` holds the writers) and ``tour`` (the job
behind ``workbench demo``: convert, verify, load each order against its limit, summarize).

>>> wb.demo.make_demo("raw", rows=100, formats=["csv"]).rows
100
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {"DemoFiles": ".data", "make_demo": ".data"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
