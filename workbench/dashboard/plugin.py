"""Where the dashboard's figures come from, through distributed's public plugin hooks.

- :class:`Collector`, a ``SchedulerPlugin``: keeps a
  :class:`~workbench.monitoring.metrics.Timeline` and the newest snapshot of every process whose
  :class:`~workbench.monitoring.monitor.Monitor` publishes with
  ``client.log_event("workbench-metrics", ...)``, so the pages work whether the scheduler runs in
  the kernel or in another process.
- :class:`WorkerMemory`, a ``WorkerPlugin`` the collector installs on every worker: each Dask
  worker's PSS, USS, RSS, shared and swap as ``worker.metrics``, sent with every heartbeat (and
  shown as columns of the dashboard's own ``/workers`` table).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin
from distributed.protocol.pickle import dumps

from ..monitoring.memory import process_memory
from ..monitoring.metrics import TOPIC, Timeline

__all__: list[str] = []

NAME = "workbench"
WORKER_FIELDS = ("pss", "uss", "rss", "shared", "swap", "real")
PSS_EVERY_S = 2.0  # smaps_rollup walks the page tables: read it this often, not every heartbeat


class Collector(SchedulerPlugin):
    """Series per publishing process, held on the scheduler for the workbench pages."""

    name = NAME
    idempotent = True  # a second registration keeps the series already held

    def __init__(self, keep: int = 600) -> None:
        self.keep = keep
        self.timelines: dict[str, Timeline] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.received = 0
        self.scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        await scheduler.register_worker_plugin(
            None, dumps(WorkerMemory()), name=NAME, idempotent=True
        )

    def log_event(self, topic: str, msg: Any) -> None:
        if topic != TOPIC or not isinstance(msg, dict):
            return
        source = str(msg.get("source", ""))
        timeline = self.timelines.setdefault(source, Timeline(self.keep))
        timeline.add(float(msg.get("time", time.time())), msg.get("values") or {})
        self.snapshots[source] = msg
        self.received += 1

    def current(self) -> tuple[str, Timeline, dict[str, Any]] | None:
        """The source that published last, its timeline and newest snapshot (None before any)."""
        if not self.snapshots:
            return None
        source = max(self.snapshots, key=lambda s: self.snapshots[s].get("time", 0.0))
        return source, self.timelines[source], self.snapshots[source]

    def worker_memory(self) -> list[dict[str, Any]]:
        """Each Dask worker's memory from its last heartbeat (those running our WorkerMemory)."""
        out = []
        workers = getattr(self.scheduler, "workers", {}) if self.scheduler is not None else {}
        for address, ws in sorted(workers.items()):
            metrics = ws.metrics
            if "workbench_pss" not in metrics:
                continue
            out.append(
                {
                    "name": f"dask worker {address}",
                    "pid": metrics.get("workbench_pid", 0),
                    **{f: int(metrics.get(f"workbench_{f}", 0)) for f in WORKER_FIELDS},
                }
            )
        return out


class WorkerMemory(WorkerPlugin):
    """``worker.metrics["workbench_<field>"]``: this worker process's memory, read every 2 s."""

    name = NAME
    idempotent = True

    def setup(self, worker: Any) -> None:
        self._at = -PSS_EVERY_S
        self._last: dict[str, int] = {}
        worker.metrics["workbench_pid"] = lambda w: self._read()["pid"]
        for field in WORKER_FIELDS:
            worker.metrics[f"workbench_{field}"] = lambda w, f=field: self._read()[f]

    def teardown(self, worker: Any) -> None:
        for key in [k for k in worker.metrics if k.startswith("workbench_")]:
            del worker.metrics[key]

    def _read(self) -> dict[str, int]:
        if time.monotonic() - self._at >= PSS_EVERY_S:
            m = process_memory()
            self._last = {"pid": m.pid, **{f: getattr(m, f) for f in WORKER_FIELDS}}
            self._at = time.monotonic()
        return self._last


def collector(scheduler: Any) -> Collector:
    """The scheduler's Collector, added now if the scheduler was started without it."""
    plugin = scheduler.plugins.get(NAME)
    if plugin is None:
        plugin = Collector()
        scheduler.add_plugin(plugin, name=NAME, idempotent=True)
        # add_plugin does not start a plugin on a running scheduler; pages run on its event loop
        plugin.scheduler = scheduler
        asyncio.ensure_future(plugin.start(scheduler))
    return plugin
