"""A training run on a background thread: ``step(batch)`` for every batch of a loader (on
``device`` through ``wb.to_device`` when one is given), epoch after epoch, while its settings
change (``Loader.reconfigure``); every setting held becomes a
:class:`~workbench.tuning.trials.Trial`, and the process tree's memory is sampled meanwhile. The
widget (``wb.tune``) and :func:`~workbench.tuning.search.autotune` both drive one.

>>> ds = wb.open_dataset({"x": np.zeros((20_000, 16), "float32")})
>>> run = TrainingRun(wb.loader(ds, batch_size=500)); time.sleep(0.5); run.close()
>>> run.log.trials[0].config["batch_size"], run.log.trials[0].batches > 0
(500, True)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import torch

from ..loading.batches import map_tensors
from ..loading.config import LIVE_OPTIONS
from ..loading.device import to_device
from ..loading.loaders import Loader
from ..monitoring.memory import ProcessMemory, memory_tree, process_memory, quick_memory
from .trials import Trial, TrialLog

__all__: list[str] = []

SAMPLE_S = 0.1  # memory sampling period while tuning, and how often a trial's stages are read
FULL_S = 1.0  # a full PSS reading this often; cheap estimates in between


def _tree() -> dict[int, str]:
    me = psutil.Process()
    return {me.pid: "kernel", **{c.pid: "child" for c in me.children(recursive=True)}}


def tree_pss() -> int:
    """PSS of this process and every child process (loader workers), in bytes."""
    return int(memory_tree(_tree())["total"]["pss"])


class TreeMemory:
    """The tree's PSS, read in full (``smaps_rollup``, ~30 ms for a big process) every ``FULL_S``
    and in between estimated from each process's growth in anonymous memory since (kernel
    counters, O(1)): what a forked worker copies shows up there at once."""

    def __init__(self) -> None:
        self._full: dict[int, ProcessMemory] = {}
        self._at = -FULL_S

    def read(self) -> int:
        now, total = time.monotonic(), 0
        full = now - self._at >= FULL_S
        if full:
            self._at = now
        for pid in _tree():
            try:
                last = None if full else self._full.get(pid)
                if last is None:
                    self._full[pid] = m = process_memory(pid, "tree")
                    total += m.pss
                else:
                    quick = quick_memory(pid, "tree", last)
                    total += last.pss + max(0, quick.anonymous - last.anonymous)
            except (ProcessLookupError, psutil.Error, OSError):
                self._full.pop(pid, None)  # gone between listing and reading
        return total


def read(batch: Any) -> None:
    """The default step: touch every tensor of the batch (a plain read)."""
    map_tensors(batch, torch.Tensor.sum)


class TrainingRun:
    """``step(batch)`` for every batch of ``dl``, epoch after epoch, on a background thread, with
    the trials of every setting held (``log``) and the tree's memory sampled meanwhile."""

    def __init__(
        self,
        dl: Loader,
        step: Callable[[Any], Any] | None = None,
        *,
        device: str | None = None,
        memory_every: float = SAMPLE_S,
    ) -> None:
        self.loader, self.step, self.device = dl, step or read, device
        self.error: BaseException | None = None
        self.log = TrialLog(tree_pss())
        self.lock = threading.Lock()  # the log is written by the train, memory and driver threads
        self.pss = self.log.base_pss
        self._every = memory_every
        self._stop, self._running = threading.Event(), threading.Event()
        self._running.set()
        self._config = dl.config
        self._stages_at = 0.0  # when the open trial last took the loader's stage means
        self.log.start(knobs(dl), time.perf_counter())
        self.log.source_counts(dl.stats.sources, start=True)
        self._unsubscribe = dl.subscribe(self._batch)
        self._threads = [
            threading.Thread(target=self._train, name="workbench-tune", daemon=True),
            threading.Thread(target=self._sample, name="workbench-tune-memory", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _batch(self, event: Any) -> None:
        with self.lock:
            if self.loader.config is not self._config:  # a new setting took effect with this batch
                self._config, self._stages_at = self.loader.config, 0.0
                self.log.start(knobs(self.loader), event.t)
                self.log.source_counts(self.loader.stats.sources, start=True)
            self.log.batch(event.t, event.rows, event.nbytes, event.wait_s, event.step_s)
            # here, on the consumer's thread, the loader's window holds only this trial's batches
            # (cleared at the change): read it a few times a second, not every batch
            if event.t - self._stages_at >= SAMPLE_S:
                self._stages_at = event.t
                self.log.stage_means(self.loader.stages.means())
                self.log.source_counts(self.loader.stats.sources)

    def _train(self) -> None:
        try:
            while not self._stop.is_set():
                batches = to_device(self.loader, self.device) if self.device else self.loader
                for batch in batches:  # on the GPU, copied one batch ahead, when one is given
                    self.step(batch)
                    while not self._running.is_set() and not self._stop.is_set():
                        self._running.wait(0.1)
                    if self._stop.is_set():
                        break
        except BaseException as exc:  # shown by the widget and re-raised by close()
            self.error = exc

    def _sample(self) -> None:
        tree = TreeMemory()
        while not self._stop.wait(self._every):
            try:
                self.pss = tree.read()
            except psutil.Error:
                continue
            with self.lock:
                self.log.memory(time.perf_counter(), self.pss)

    @property
    def alive(self) -> bool:
        return self._threads[0].is_alive()

    @property
    def running(self) -> bool:
        """Training now: alive and not paused."""
        return self._running.is_set() and self.alive

    def holding(self) -> list[Trial]:
        """Every trial so far, the open one last (a snapshot)."""
        with self.lock:
            current = self.log.current
            return [*self.log.trials, *([current] if current is not None else [])]

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def close(self) -> None:
        """Stop the thread and every reader; re-raise what the step or the loader raised."""
        self._stop.set()
        self._running.set()
        for t in self._threads:
            t.join(30)
        self._unsubscribe()
        with self.lock:
            self.log.finish(time.perf_counter())
        self.loader.close()
        if self.error is not None:
            raise self.error


def knobs(dl: Loader) -> dict[str, Any]:
    """The live settings of ``dl``, as ``reconfigure`` and ``wb.loader`` take them."""
    return {k: getattr(dl.config, k) for k in (*LIVE_OPTIONS, "shuffle")}
