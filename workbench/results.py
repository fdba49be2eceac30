"""Every result type a workbench verb returns, in one place (each is defined beside the verb that
makes it; this module only names them). Each prints itself as text and renders as HTML in Jupyter.

>>> from workbench.results import Inspection
>>> isinstance(wb.inspect("x.npy"), Inspection)
True
"""

from __future__ import annotations

from ._lazy import attach

_EXPORTS = {
    "Advice": ".explore.advice",
    "AutotuneResult": ".tuning.search",
    "DemoFiles": ".demo.data",
    "Diagnosis": ".explore.diagnoses",
    "Finding": ".explore.findings",
    "Inspection": ".explore.inspection",
    "LoaderStats": ".monitoring.metrics",
    "OrderComparison": ".bench.comparison",
    "Preview": ".explore.previews",
    "ProcessMemory": ".monitoring.memory",
    "Residency": ".monitoring.pagecache",
    "CacheChange": ".monitoring.warming",
    "ContainerLimits": ".monitoring.container",
    "Stats": ".explore.statistics",
    "Throughput": ".bench.throughput",
    "Trial": ".tuning.trials",
    "Tuner": ".ui.panel",
    "VerifyReport": ".format.integrity",
    "Watch": ".ui.charts",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
