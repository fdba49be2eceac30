"""Measure: each shuffle order against its own physical limit (``limits``: :func:`compare_orders`
over the ``readers``, into an :class:`OrderComparison`, ``comparison``), batches against the
machine's memcpy and disk rates (``throughput``), host-to-device copies (:func:`measure_h2d`),
and the seeds' naive Dataset classes, our baselines (``naive``).

>>> wb.bench.memcpy_mb_per_s(nbytes=1 << 20) > 0
True
"""

from __future__ import annotations

from .._lazy import attach

_EXPORTS = {
    "OrderComparison": ".comparison",
    "Throughput": ".throughput",
    "compare_orders": ".limits",
    "measure": ".throughput",
    "measure_h2d": "..loading.device",
    "memcpy_mb_per_s": ".throughput",
    "sequential_mb_per_s": ".throughput",
    "quartiles": ".comparison",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = attach(__name__, _EXPORTS)
