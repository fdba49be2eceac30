"""``Monitor``: samples a loader's throughput, the memory of every process that reads for it, the
dataset's page cache, the machine, pinned memory and the GPU, on a background thread. The loader
reports each batch to its subscription (one check on the hot path when nobody watches); the rest
is read every ``interval`` s. ``latest()``, ``history()`` are JSON; ``to_prometheus()`` is text.

>>> ds = wb.open_dataset({"x": np.zeros((20_000, 16), "float32")})
>>> with Monitor(wb.loader(ds, batch_size=500), interval=0.05) as mon:
...     for _ in mon.loader: pass
>>> mon.latest()["memory"]["processes"][0]["name"], "samples_per_s" in mon.history()
('kernel', True)
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

from .container import container_limits
from .exposition import prometheus_text
from .gpu import gpu_metrics, pinned
from .metrics import TOPIC, BatchWindow, Timeline, scalars, snapshot
from .trace import export_trace as write_trace
from .verdicts import bottleneck

__all__ = ["Monitor"]

# PSS/USS (smaps_rollup walks every page table: ~15 ms for a process with torch and a mapped
# dataset) and the page cache (mincore looks up every page: ~10 ms per 256 MiB) are read this
# often; the cheap counters every sample
FULL_EVERY_S = 2.0


class Monitor:
    """Watch ``loader`` (optional) and, with ``client``, every Dask worker's memory.

    Parameters
    ----------
    loader : Loader, optional
        The loader to watch: its batches (through :meth:`Loader.subscribe`), read-ahead and
        settings, its worker processes' memory, its dataset's page cache.
    client : distributed.Client, optional
        Also read every Dask worker's memory, and publish each sample to the scheduler
        (``client.log_event`` on ``"workbench-metrics"``) for the dashboard's workbench pages.
    interval : float, default 0.5
        Seconds between samples.
    keep : int, default 600
        Samples kept per series in ``history()``.
    publish : bool, default True
        With a ``client``, publish the samples (False keeps them here).
    """

    def __init__(
        self,
        loader: Any = None,
        *,
        client: Any = None,
        interval: float = 0.5,
        keep: int = 600,
        publish: bool = True,
    ) -> None:
        self.loader, self.client, self.interval = loader, client, float(interval)
        self.publish = bool(publish and client is not None)
        self.publish_error: str | None = None
        self._source = f"{socket.gethostname()} pid {os.getpid()}"
        self._window = BatchWindow()
        self._timeline = Timeline(keep)
        self._latest: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Any = None
        self._lock = threading.Lock()
        self._full_at = -FULL_EVERY_S  # when the slow readings below were last taken
        self._full: dict[int, Any] = {}  # pid -> the last full (PSS) reading
        self._dask: dict[str, Any] = {}
        self._cache: dict[str, Any] | None = None
        self._files: list[str] | None = None  # the dataset's files, listed once

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Monitor:
        """Begin sampling (idempotent).

        Returns
        -------
        Monitor
            This monitor, so ``mon = Monitor(dl).start()`` works.
        """
        if self._thread is not None:
            return self
        if self.loader is not None:
            self._unsubscribe = self.loader.subscribe(self._window.add)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="workbench-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling; one last sample is taken so ``latest()`` covers the end."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.sample()

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    # -- data ------------------------------------------------------------------------------
    def sample(self) -> dict[str, Any]:
        """Take one sample now (the thread calls this every ``interval``) and return it.

        Returns
        -------
        dict
            JSON-able: ``time`` (unix), ``loader`` (rates, read-ahead, epoch, settings, the
            stages' means and verdict once a batch was timed; None without one), ``memory``
            (:func:`~workbench.monitoring.memory.memory_tree`), ``page_cache``, ``machine``,
            ``pinned`` and ``gpu``.
        """
        now = time.time()
        full = time.monotonic() - self._full_at >= FULL_EVERY_S
        if full:
            self._full_at = time.monotonic()
        out: dict[str, Any] = {
            "time": now,
            "loader": self._loader_part(),
            "memory": self._memory_part(full),
            "page_cache": self._page_cache_part(full),
            "machine": _machine(),
            "pinned": pinned(),
            "gpu": gpu_metrics(),
        }
        with self._lock:
            self._latest = out
            self._timeline.add(now, scalars(out))
        if self.publish:
            self._publish(out)
        return out

    def _publish(self, sample: dict[str, Any]) -> None:
        try:
            self.client.log_event(TOPIC, snapshot(sample, self._source))
            self.publish_error = None
        except Exception as exc:  # a closing cluster must not stop the sampling
            self.publish_error = f"{type(exc).__name__}: {exc}"

    def latest(self) -> dict[str, Any]:
        """The newest sample (empty before the first).

        Returns
        -------
        dict
            A copy of what :meth:`sample` last returned.
        """
        with self._lock:
            return dict(self._latest)

    def history(self) -> dict[str, list[list[float]]]:
        """``{series: [[unix time, value], ...]}`` for every series sampled so far.

        Returns
        -------
        dict
            Up to ``keep`` samples a series, oldest first.
        """
        with self._lock:
            return self._timeline.history()

    def since(self, t0: float) -> dict[str, list[list[float]]]:
        """Like :meth:`history`, only the samples taken after unix time ``t0``.

        Parameters
        ----------
        t0 : float
            A unix time.

        Returns
        -------
        dict
            ``{series: [[unix time, value], ...]}``.
        """
        with self._lock:
            return self._timeline.since(t0)

    def export_trace(self, path: str | os.PathLike[str]) -> str:
        """The watched loader's last batches as Chrome Trace JSON (:func:`~.trace.export_trace`).

        Parameters
        ----------
        path : str or PathLike
            The ``.json`` file to write.

        Returns
        -------
        str
            ``path``.
        """
        return write_trace(self.loader, path)

    def to_prometheus(self) -> str:
        """The latest values as Prometheus gauges (``workbench_<series>``), text exposition format;
        the stages as one gauge, ``workbench_stage_seconds{stage="read"}``.

        Returns
        -------
        str
            One ``# HELP``, ``# TYPE`` and value per series (needs ``prometheus_client``).
        """
        return prometheus_text(scalars(self.latest()))

    def _loader_part(self) -> dict[str, Any] | None:
        if self.loader is None:
            return None
        dl, state = self.loader, self.loader.state_dict()
        timed = len(dl.stages) > 0  # none yet, or since the last reconfigure
        tier = getattr(dl.dataset, "ram_tier", None)  # open_dataset(cache="ram")
        return {
            **self._window.summary(),
            **({"stages": dl.stages.means(), "verdict": str(bottleneck(dl))} if timed else {}),
            **({"sources": dict(dl.stats.sources)} if dl.stats.sources else {}),  # wb.mix
            **({"ram_tier": {**tier.info(), "text": tier.describe()}} if tier else {}),
            "read_ahead": dl.read_ahead(),
            "epoch": state["epoch"],
            "batches_done": state["batches_done"],
            "config": {
                "batch_size": dl.batch_size,
                "shuffle": dl.order,
                "num_workers": dl.num_workers,
                "worker_type": dl.worker_type,
                "prefetch_factor": dl.prefetch_factor,
                "pin_memory": dl.pin_memory,
            },
        }

    def _memory_part(self, full: bool) -> dict[str, Any]:
        from .memory import ProcessMemory, memory_tree

        pids = {os.getpid(): "kernel"}
        if self.loader is not None:
            pids.update(self.loader.worker_pids())
        tree = memory_tree(pids, None if full else self._full)
        if full:
            self._full = {p["pid"]: ProcessMemory(**p) for p in tree["processes"]}
        tree["pss_age_s"] = round(time.monotonic() - self._full_at, 3)
        if self.client is not None:
            from .memory import process_memory

            if not full and self._dask:
                workers = self._dask
            else:
                try:  # {address: ProcessMemory}
                    workers = self._dask = self.client.run(process_memory)
                except Exception as exc:  # a closing cluster must not stop the sampling
                    tree["dask_error"] = f"{type(exc).__name__}: {exc}"
                    workers = {}
            for addr, m in sorted(workers.items()):
                tree["processes"].append({**m.to_dict(), "name": f"dask worker {addr}"})
                for k in tree["total"]:
                    tree["total"][k] += getattr(m, k)
        return tree

    def _page_cache_part(self, full: bool) -> dict[str, Any] | None:
        version = getattr(getattr(self.loader, "dataset", None), "version_dir", None)
        if version is None:
            return None
        if self._cache is not None and not full:
            return self._cache
        from .pagecache import files_of, residency

        if self._files is None:
            self._files = files_of(version)
        r = residency(self._files)
        self._cache = dict(
            resident_bytes=r.resident_bytes, total_bytes=r.total_bytes, fraction=r.fraction
        )
        return self._cache


def _machine() -> dict[str, Any]:
    lim = container_limits()  # a pod's limit, not the host's RAM
    return {
        "total_bytes": lim.total,
        "available_bytes": lim.available,
        "memory_limit_bytes": lim.memory_limit,
        "cores": lim.cores,
        "limits": lim.describe(),
    }
