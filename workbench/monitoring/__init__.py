"""Watch: the series we draw (``metrics``, pure), the memory of every process as the kernel counts
it (``memory``), the container's memory limit and CPU quota (``container``), the page cache under
a dataset's files (``pagecache``), the GPU (``gpu``), and :class:`Monitor`, which samples all of
it on a thread. The widgets (``workbench.ui.charts``) and the dashboard pages
(``workbench.dashboard``) draw what it samples.

>>> wb.monitoring.process_memory().pss > 0
True
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {
    "ContainerLimits": ".container",
    "LoaderStats": ".metrics",
    "Monitor": ".monitor",
    "ProcessMemory": ".memory",
    "Residency": ".pagecache",
    "StageWindow": ".stages",
    "bottleneck": ".verdicts",
    "export_trace": ".trace",
    "Verdict": ".stages",
    "container_limits": ".container",
    "CacheChange": ".warming",
    "evict": ".warming",
    "memory_tree": ".memory",
    "process_memory": ".memory",
    "residency": ".pagecache",
    "verdict": ".stages",
    "warm": ".warming",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
