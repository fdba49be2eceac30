"""Metrics as plain data: the series we watch (names, units, help, defined once for every host
that draws them), ring buffers of ``(time, value)``, and loader rates from per-batch events.

Pure logic: no threads, no files, no widgets. :class:`workbench.monitoring.monitor.Monitor`
samples into it; the notebook widget, the dashboard pages and ``to_prometheus`` read from it.

>>> w = BatchWindow()
>>> for t in (1.0, 1.1, 1.2, 1.3):
...     w.add(BatchEvent(t, rows=100, nbytes=4000, wait_s=0.05, step_s=0.1))
>>> s = w.summary(); round(s["samples_per_s"]), round(s["wait_fraction"], 2)
(1000, 0.5)
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import numpy as np

from .stages import STAGES

__all__ = ["LoaderStats"]


@dataclass(frozen=True)
class Spec:
    unit: str
    help: str


SERIES: dict[str, Spec] = {
    "samples_per_s": Spec("samples/s", "rows the loader delivered per second"),
    "mb_per_s": Spec("MB/s", "batch bytes the loader delivered per second"),
    "batches_per_s": Spec("batches/s", "batches the loader delivered per second"),
    "wait_fraction": Spec(
        "fraction",
        "share of wall time the consumer waited for data "
        "(near 1: input-bound; near 0: compute-bound)",
    ),
    "step_p50_s": Spec("s", "median time between two delivered batches"),
    "step_p95_s": Spec("s", "95th percentile of the time between two delivered batches"),
    "read_ahead": Spec("batches", "batches read ahead of the consumer (in flight)"),
    "memory_pss_bytes": Spec(
        "bytes", "PSS summed over the kernel, loader workers and Dask workers"
    ),
    "memory_real_bytes": Spec(
        "bytes",
        "anonymous + shmem PSS summed over those processes "
        "(memory that is not reclaimable page cache)",
    ),
    "memory_rss_bytes": Spec(
        "bytes",
        "RSS summed over those processes (counts shared pages once per process: an over-count)",
    ),
    "page_cache_bytes": Spec("bytes", "bytes of the dataset's files resident in the page cache"),
    "available_bytes": Spec(
        "bytes", "memory this process can still take: its cgroup's room, or the host's"
    ),
    "pinned_bytes": Spec("bytes", "pinned host memory held by torch's CUDA host allocator"),
    "gpu_utilization": Spec("fraction", "GPU busy fraction (NVML)"),
    "gpu_memory_bytes": Spec("bytes", "GPU memory in use (NVML)"),
    "gpu_pcie_rx_bytes_per_s": Spec(
        "bytes/s", "PCIe bytes the GPU received (NVML, whole device, 20 ms window)"
    ),
    "gpu_pcie_tx_bytes_per_s": Spec("bytes/s", "PCIe bytes the GPU sent (NVML, whole device)"),
}
LOADER_SERIES = tuple(SERIES)[:7]  # the ones a Monitor sample's "loader" part holds
STAGE_HELP = {  # what each of monitoring.stages.STAGES times, for the stage_<name>_s series
    "sample": "choosing the rows (the sampler)",
    "read": "reading (I/O and the gather)",
    "transform": "the transform",
    "collate": "collate_fn",
    "handoff": "the hand-over to the consumer (a queue or a shared-memory slot)",
    "to_device": "the host-to-device copy",
    "wait": "the consumer's wait for the batch",
    "step": "the consumer's own step between batches",
}
STAGE_SERIES = {f"stage_{s}_s": s for s in STAGES}
SERIES.update(
    (name, Spec("s", f"seconds a batch spent in {STAGE_HELP[s]}, mean of the last 200 batches"))
    for name, s in STAGE_SERIES.items()
)
# what a page or chart of the stages says where there is no GPU (torch sees no CUDA device)
NO_GPU = "no GPU: host-to-device not measured"


def stage_note(sample: dict[str, Any]) -> str:
    """What a chart of the stages says beside them: :data:`NO_GPU` where ``sample`` (a Monitor
    sample or its :func:`snapshot`) saw no CUDA device, else "".

    >>> stage_note({"pinned": {"available": False}})
    'no GPU: host-to-device not measured'
    """
    return "" if (sample.get("pinned") or {}).get("available") else NO_GPU


class BatchEvent(NamedTuple):
    """One delivered batch: when, how many rows and bytes, how long the consumer waited for it,
    and the time since the previous batch."""

    t: float
    rows: int
    nbytes: int
    wait_s: float
    step_s: float


class BatchWindow:
    """Events since the last :meth:`summary`; each summary covers one sampling interval."""

    def __init__(self) -> None:
        self._events: list[BatchEvent] = []

    def add(self, event: BatchEvent) -> None:
        self._events.append(event)  # list.append is atomic under the GIL: safe from the loader

    def summary(self) -> dict[str, float]:
        events, self._events = self._events, []
        if not events:
            return dict.fromkeys(LOADER_SERIES[:6], 0.0)
        steps = np.array([e.step_s for e in events])
        span = float(steps.sum()) or 1e-9
        return {
            "samples_per_s": sum(e.rows for e in events) / span,
            "mb_per_s": sum(e.nbytes for e in events) / 1e6 / span,
            "batches_per_s": len(events) / span,
            "wait_fraction": min(1.0, sum(e.wait_s for e in events) / span),
            "step_p50_s": float(np.percentile(steps, 50)),
            "step_p95_s": float(np.percentile(steps, 95)),
        }


class Ring:
    """The last ``size`` samples of one series as ``(time, value)``."""

    def __init__(self, size: int) -> None:
        self._data: deque[tuple[float, float]] = deque(maxlen=size)

    def append(self, t: float, value: float) -> None:
        self._data.append((t, float(value)))

    def to_list(self) -> list[list[float]]:
        return [[t, v] for t, v in self._data]

    def since(self, t0: float) -> list[list[float]]:
        """The samples taken after ``t0`` (what a chart has not drawn yet)."""
        out = []
        for t, v in reversed(self._data):
            if t <= t0:
                break
            out.append([t, v])
        return out[::-1]

    def __len__(self) -> int:
        return len(self._data)


class Timeline:
    """A ring per :data:`SERIES` name: what a :class:`~workbench.monitoring.monitor.Monitor` keeps,
    and what the dashboard keeps for each process that publishes to it.

    >>> tl = Timeline(keep=3)
    >>> for t in range(5): tl.add(float(t), {"samples_per_s": 10.0 * t, "not_a_series": 1})
    >>> tl.history()["samples_per_s"], tl.since(3.0)
    ([[2.0, 20.0], [3.0, 30.0], [4.0, 40.0]], {'samples_per_s': [[4.0, 40.0]]})
    """

    def __init__(self, keep: int = 600) -> None:
        self._rings = {name: Ring(keep) for name in SERIES}

    def add(self, t: float, values: dict[str, float]) -> None:
        for name, value in values.items():
            ring = self._rings.get(name)
            if ring is not None:
                ring.append(t, value)

    def history(self) -> dict[str, list[list[float]]]:
        return {name: ring.to_list() for name, ring in self._rings.items() if len(ring)}

    def since(self, t0: float) -> dict[str, list[list[float]]]:
        out = {name: ring.since(t0) for name, ring in self._rings.items()}
        return {name: points for name, points in out.items() if points}


# the event topic a Monitor publishes on (client.log_event) and the dashboard listens to
TOPIC = "workbench-metrics"
PROCESS_FIELDS = ("name", "pid", "pss", "uss", "rss", "shared", "swap", "real")


def snapshot(sample: dict[str, Any], source: str = "") -> dict[str, Any]:
    """What of one Monitor sample a dashboard draws, small and msgpack-able: the series values,
    each process's memory, page cache, pinned memory, the GPU (or why there is none), the
    machine (the container's limits), the config and the verdict on the stages.

    >>> snap = snapshot({"time": 1.0,
    ...                  "loader": {"samples_per_s": 5.0, "config": {"batch_size": 8}}})
    >>> snap["values"], snap["config"]
    ({'samples_per_s': 5.0}, {'batch_size': 8})
    """
    memory = sample.get("memory") or {}
    return {
        "source": source,
        "time": float(sample.get("time", 0.0)),
        "values": scalars(sample),
        "processes": [
            {k: p[k] for k in PROCESS_FIELDS if k in p} for p in memory.get("processes", [])
        ],
        "page_cache": sample.get("page_cache"),
        "pinned": sample.get("pinned"),
        "gpu": sample.get("gpu"),
        "machine": sample.get("machine"),
        "config": (sample.get("loader") or {}).get("config"),
        "verdict": (sample.get("loader") or {}).get("verdict"),
    }


def scalars(sample: dict[str, Any]) -> dict[str, float]:
    """The :data:`SERIES` values found in one Monitor sample (absent ones are left out)."""
    loader = sample.get("loader") or {}
    out = {k: loader[k] for k in LOADER_SERIES if k in loader}
    stages = loader.get("stages") or {}  # absent until the loader timed a batch
    out.update((name, stages[s]) for name, s in STAGE_SERIES.items() if s in stages)
    total = (sample.get("memory") or {}).get("total") or {}
    for key, name in (
        ("pss", "memory_pss_bytes"),
        ("real", "memory_real_bytes"),
        ("rss", "memory_rss_bytes"),
    ):
        if key in total:
            out[name] = total[key]
    for name, path in (
        ("page_cache_bytes", ("page_cache", "resident_bytes")),
        ("available_bytes", ("machine", "available_bytes")),
        ("pinned_bytes", ("pinned", "bytes")),
        ("gpu_utilization", ("gpu", "utilization")),
        ("gpu_memory_bytes", ("gpu", "memory_used_bytes")),
        ("gpu_pcie_rx_bytes_per_s", ("gpu", "pcie_rx_bytes_per_s")),
        ("gpu_pcie_tx_bytes_per_s", ("gpu", "pcie_tx_bytes_per_s")),
    ):
        value = (sample.get(path[0]) or {}).get(path[1])
        if value is not None:
            out[name] = value
    return out


@dataclass
class LoaderStats:
    """Running counters: ``wait_s`` is time the consumer spent blocked on data, ``total_s`` wall
    time from the start of each pass to its latest batch (summed over passes).

    Parameters
    ----------
    batches, samples, bytes : int, default 0
        Batches, rows and bytes delivered.
    wait_s, total_s : float, default 0.0
        Seconds the consumer waited for data, and wall seconds of the passes.
    sources : dict of str to int
        Rows delivered from each source of a mixture (``wb.mix``); empty otherwise.
    """

    batches: int = 0
    samples: int = 0
    bytes: int = 0
    wait_s: float = 0.0
    total_s: float = 0.0
    sources: dict[str, int] = field(default_factory=dict)

    def _per_s(self, amount: float) -> float:
        return amount / self.total_s if self.total_s else 0.0

    samples_per_s = property(lambda self: self._per_s(self.samples))
    mb_per_s = property(lambda self: self._per_s(self.bytes / 1e6))
    wait_fraction = property(lambda self: self._per_s(self.wait_s))

    def as_dict(self) -> dict[str, float]:
        return {
            **asdict(self),
            "samples_per_s": self.samples_per_s,
            "mb_per_s": self.mb_per_s,
            "wait_fraction": self.wait_fraction,
        }

    def add(self, rows: int, nbytes: int, wait_s: float, since_last_s: float) -> None:
        self.batches += 1
        self.samples += rows
        self.bytes += nbytes
        self.wait_s += wait_s
        self.total_s += since_last_s

    def reset(self) -> None:
        self.batches = self.samples = self.bytes = 0
        self.wait_s = self.total_s = 0.0
        self.sources.clear()
