"""workbench: train PyTorch models on datasets larger than RAM, from JupyterLab.

>>> import workbench as wb
>>> m = wb.convert("data.csv", "data.store", target="label", progress=False)
>>> ds = wb.open_dataset("data.store"); len(ds), ds[0]["features"].shape
(100, torch.Size([2]))

Names load on first use (PEP 562), so ``import workbench`` and the CLI stay fast and never pull
torch, ipywidgets or distributed until a function that needs them is called. The top holds the
verbs and main types; ``wb.errors``, ``wb.results`` and ``wb.bench`` hold the errors, the result
types and the benchmark helpers; each capability's package (``wb.loading``, ``wb.monitoring``,
...) lists its own public names in its ``__all__``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__ as __version__

# The face: the verbs and main types, in the order of the mission (about 30 names).
_EXPORTS = {
    # convert, and what a dataset is on disk
    "convert": "conversion",
    "verify": "format",
    "info": "format",
    "publish": "conversion",
    "read_manifest": "format",
    "Manifest": "format",
    "Column": "format",
    "CSR": "format",
    "make_demo": "demo",
    # load
    "open_dataset": "datasets",
    "as_dask": "datasets",
    "mix": "datasets",
    "loader": "loading",
    "Loader": "loading",
    "LoaderConfig": "loading",
    "BatchSampler": "loading",
    "ORDERS": "loading",
    "epoch_order": "loading",
    "shuffle_quality": "loading",
    "to_device": "loading",
    # explore
    "inspect": "explore",
    "preview": "explore",
    "stats": "explore",
    "advise": "explore",
    "doctor": "explore",
    # watch
    "Monitor": "monitoring",
    "bottleneck": "monitoring",
    "watch": "ui",
    "process_memory": "monitoring",
    "memory_tree": "monitoring",
    "residency": "monitoring",
    "warm": "monitoring",
    "evict": "monitoring",
    # tune
    "tune": "ui",
    "autotune": "tuning",
    # scale
    "local_client": "cluster",
    "close_client": "cluster",
    # validate notebooks in CI
    "expect": "notebooks",
}
# Sub-namespaces listed beside the face: every error, every result type, the benchmark helpers.
_NAMESPACES = ("bench", "errors", "results")
# The capability packages, reachable as ``wb.loading`` and so on without an import of their own.
_PACKAGES = (
    "format",
    "inputs",
    "layouts",
    "conversion",
    "datasets",
    "loading",
    "monitoring",
    "tuning",
    "explore",
    "demo",
    "ui",
    "dashboard",
    "cluster",
    "testing",
    "notebooks",
)
# Names that moved into a sub-namespace in 0.x: still resolved here, so old code keeps working,
# but left out of dir() and tab completion.
_MOVED = {
    **{
        n: "errors"
        for n in (
            "ColumnNotFoundError",
            "CorruptDatasetError",
            "DatasetExistsError",
            "DatasetNotFoundError",
            "IncompatibleResumeError",
            "InvalidInputError",
            "LoaderError",
            "LoaderTimeoutError",
            "MemoryBudgetWarning",
            "PerformanceWarning",
            "RemoteError",
            "SourceNotFoundError",
            "TransformError",
            "UnsafeInputError",
            "WorkbenchError",
            "WorkbenchWarning",
            "WorkerError",
        )
    },
    **{
        n: "results"
        for n in (
            "Advice",
            "AutotuneResult",
            "DemoFiles",
            "Diagnosis",
            "Finding",
            "Inspection",
            "LoaderStats",
            "OrderComparison",
            "Preview",
            "ProcessMemory",
            "Residency",
            "Stats",
            "Throughput",
            "Trial",
            "Tuner",
            "VerifyReport",
            "Watch",
        )
    },
    **{
        n: "bench"
        for n in (
            "compare_orders",
            "measure",
            "measure_h2d",
            "memcpy_mb_per_s",
            "sequential_mb_per_s",
        )
    },
}

__all__ = sorted([*_EXPORTS, *_NAMESPACES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _NAMESPACES or name in _PACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        module = _EXPORTS.get(name) or _MOVED.get(name)
        if module is None:
            raise AttributeError(f"module 'workbench' has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
