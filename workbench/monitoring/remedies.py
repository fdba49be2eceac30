"""The change that moves the stage that dominates an input-bound run: one rule a cause (a Python
transform on one thread, tiny batches, cold storage, a slow URL, the copy to the device, a
row-by-row collate, too few readers). Pure; ``stages.verdict`` asks it.

>>> remedy("transform", Facts(0, "thread", 4, 256, 0.004))[2]
{'worker_type': 'process', 'num_workers': 4}
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__: list[str] = []

TINY_ROWS = 128  # batches under this many rows ...
TINY_S = 0.0005  # ... that take the producer under this long are mostly per-batch overhead
COLD = 0.5  # under this page-cache fraction, reads go to storage


class Facts(NamedTuple):
    """What the verdict knows besides the stage: the readers, the cores, rows a batch, the
    producer's seconds a batch, the page-cache fraction of the files and whether they stream
    from a URL."""

    workers: int
    worker_type: str
    cores: int
    batch_rows: int
    producer_s: float
    resident: float | None = None
    remote: bool = False


def remedy(stage: str, f: Facts) -> tuple[str, str, dict[str, Any]]:
    """(more evidence, the advice, the loader options that apply it) for ``stage``."""
    more = max(2, f.cores)
    if f.batch_rows and f.batch_rows < TINY_ROWS and f.producer_s < TINY_S:
        return (
            f"; batches of {f.batch_rows} rows take {f.producer_s * 1e6:.0f} us",
            "Per-batch overhead dominates tiny batches: use larger batches.",
            {"batch_size": max(256, f.batch_rows * 8)},
        )
    if stage == "transform":
        if f.worker_type != "process" or f.workers < more:
            return (
                "",
                "A Python transform holds the GIL: run it in worker processes.",
                {"worker_type": "process", "num_workers": more},
            )
        return "", "Make the transform cheaper, or batch it (vectorise).", {}
    if stage == "read" and f.remote:
        return (
            "; the dataset streams from a URL",
            "Shards arrive from the URL slower than batches leave: raise cache_bytes so more "
            "shards are fetched ahead, or keep a local copy.",
            {},
        )
    if stage == "read" and f.resident is not None and f.resident < COLD:
        return (
            f"; {f.resident:.0%} of the files are in the page cache",
            "Reads wait on storage: read in block order (contiguous runs), or warm the files "
            "first (wb.warm) if they fit in memory.",
            {"shuffle": "block"},
        )
    if stage in ("handoff", "sample") and f.batch_rows and f.batch_rows < TINY_ROWS:
        return (
            f"; batches of {f.batch_rows} rows",
            "Per-batch overhead dominates tiny batches: use larger batches.",
            {"batch_size": max(256, f.batch_rows * 8)},
        )
    if stage == "handoff" and f.worker_type == "process" and f.workers:
        return (
            "",
            "Handing batches over from worker processes costs more than reading them: threads "
            "read without the hand-over.",
            {"worker_type": "thread", "num_workers": f.workers},
        )
    if stage == "sample" and f.batch_rows:
        return (
            "",
            "Choosing the rows costs more than reading them (an epoch's order is drawn at its "
            "first batch): larger batches share that cost.",
            {"batch_size": f.batch_rows * 4},
        )
    if stage == "to_device":
        return (
            "",
            "The host-to-device copy dominates: pin_memory=True copies asynchronously.",
            {"pin_memory": True},
        )
    if stage == "collate":
        return (
            "",
            "collate_fn works row by row: use the dataset's batched reads (collate_fn=None).",
            {"collate_fn": None},
        )
    if f.workers < more:
        return (
            "",
            f"Read with more readers: {more} threads share the work.",
            {"worker_type": "thread", "num_workers": more},
        )
    return "", "The readers are saturated: storage is the limit.", {}
