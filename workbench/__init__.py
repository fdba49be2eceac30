"""workbench: train PyTorch models on datasets larger than RAM, from JupyterLab.

>>> import workbench as wb
>>> m = wb.convert("data.csv", "data.store", target="label", progress=False)
>>> ds = wb.open_dataset("data.store"); len(ds), ds[0]["features"].shape
(100, torch.Size([2]))

Names load on first use (PEP 562), so ``import workbench`` and the CLI stay fast and never pull
torch, ipywidgets or distributed until a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__ as __version__

# public name -> module that defines it
_EXPORTS = {
    "Advice": "explore.advise",
    "BatchSampler": "sampling",
    "CSR": "sparse",
    "Column": "manifest",
    "ColumnNotFoundError": "errors",
    "CorruptDatasetError": "errors",
    "DatasetExistsError": "errors",
    "DatasetNotFoundError": "errors",
    "DemoFiles": "demo",
    "Diagnosis": "explore.doctor",
    "Finding": "explore.findings",
    "IncompatibleResumeError": "errors",
    "Inspection": "explore.inspect",
    "InvalidInputError": "errors",
    "Loader": "loading",
    "LoaderError": "errors",
    "LoaderConfig": "options",
    "Trial": "trials",
    "Tuner": "ui.tune",
    "AutotuneResult": "tuning",
    "LoaderStats": "metrics",
    "LoaderTimeoutError": "errors",
    "Manifest": "manifest",
    "Monitor": "monitor",
    "MemoryBudgetWarning": "errors",
    "ORDERS": "sampling",
    "OrderComparison": "limits",
    "RemoteError": "errors",
    "Residency": "pagecache",
    "PerformanceWarning": "errors",
    "Preview": "explore.preview",
    "ProcessMemory": "memory",
    "SourceNotFoundError": "errors",
    "Stats": "explore.stats",
    "Throughput": "throughput",
    "TransformError": "errors",
    "UnsafeInputError": "errors",
    "VerifyReport": "integrity",
    "WorkbenchError": "errors",
    "WorkbenchWarning": "errors",
    "Watch": "ui.watch",
    "WorkerError": "errors",
    "advise": "explore.advise",
    "autotune": "tuning",
    "as_dask": "daskarray",
    "close_client": "cluster",
    "compare_orders": "limits",
    "convert": "conversion",
    "doctor": "explore.doctor",
    "epoch_order": "orders",
    "shuffle_quality": "orders",
    "evict": "pagecache",
    "info": "summary",
    "inspect": "explore.inspect",
    "loader": "loading",
    "local_client": "cluster",
    "make_demo": "demo",
    "measure": "throughput",
    "measure_h2d": "device",
    "memory_tree": "memory",
    "memcpy_mb_per_s": "throughput",
    "open_dataset": "datasets",
    "preview": "explore.preview",
    "process_memory": "memory",
    "publish": "publishing",
    "read_manifest": "catalog",
    "residency": "pagecache",
    "sequential_mb_per_s": "throughput",
    "stats": "explore.stats",
    "to_device": "device",
    "tune": "ui.tune",
    "verify": "integrity",
    "warm": "pagecache",
    "watch": "ui.watch",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
