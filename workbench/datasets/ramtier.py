"""The RAM tier: a dataset's dense columns copied once into huge-page memory (:mod:`.hugepages`),
in the background, within the memory budget.

:class:`RamTier` plans the copy (its bytes against the budget: ``memory_budget`` or, by default,
``BUDGET_FRACTION`` of what this process's container leaves, less what other tiers of this
process still have to copy), runs it on a thread reading ``source.read_chunk`` ``CHUNK_BYTES`` at
a time, and re-checks the memory left before each chunk, so that the copy never takes the
container past its budget even when something else grows meanwhile: it stops instead and says so.
``state`` says where it is: ``"copying"``, ``"ready"``, ``"too big"`` (never started: the
message names both sizes), ``"stopped"`` (memory ran short, or :meth:`cancel`), ``"failed"`` (a
read raised: the message says what), ``"sparse"`` (a sparse column: nothing copied) or
``"not here"`` (a worker process that cannot see the copy) or ``"in memory"`` (arrays already
in RAM: nothing to copy). Until ``"ready"`` every read goes to the source as before; after it,
to the copy (:mod:`.tiered`).

>>> ds = wb.open_dataset("x.npy", cache="ram")
>>> ds.ram_tier.wait().state, ds.get_batch([3, 1])["x"][:, 0].tolist()
('ready', [24.0, 8.0])
"""

from __future__ import annotations

import mmap
import os
import threading
import time
import warnings
from typing import Any

import numpy as np

from ..errors import MemoryBudgetWarning
from ..format.manifest import Column
from ..monitoring.container import container_limits, promise, promised_bytes
from ..units import human_bytes
from .hugepages import HUGE, Region, backing

__all__: list[str] = []

BUDGET_FRACTION = 0.5  # the default budget: this share of what the container leaves (as autotune)
CHUNK_BYTES = 64 << 20  # rows copied between checks of the memory left
_READY = 1


def budget_of(memory_budget: int | str | None) -> int:
    """Bytes of ``memory_budget`` (bytes, or text such as ``"4GiB"``); None: ``BUDGET_FRACTION``
    of the memory this container leaves now, less what other tiers here still have to copy."""
    if memory_budget is not None:
        if isinstance(memory_budget, str):
            from dask.utils import parse_bytes

            return int(parse_bytes(memory_budget))
        return int(memory_budget)
    return max(0, int(BUDGET_FRACTION * container_limits().available) - promised_bytes())


def _aligned(n: int) -> int:
    return -(-n // HUGE) * HUGE


class RamTier:
    """The copy of ``cols`` of ``source`` (``n`` rows) in RAM; see the module."""

    def __init__(
        self,
        source: Any,
        cols: tuple[Column, ...],
        n: int,
        memory_budget: Any = None,
        *,
        skip: str = "",
    ) -> None:
        self.source, self.rows = source, int(n)
        self.nbytes = sum(_aligned(c.row_bytes * self.rows) for c in cols)
        self.budget = budget_of(memory_budget)
        self.backing, self.huge = backing(), False
        self.copied_rows, self.seconds, self.message = 0, 0.0, ""
        self.state = "copying"
        self.arrays: dict[str, np.ndarray] = {}
        self._cols, self._region, self._thread = cols, None, None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._word = np.frombuffer(mmap.mmap(-1, 8), np.int64)  # shared with forked children
        where = getattr(source, "where", "the dataset")
        if skip:
            self._end("in memory", f"{where}: {skip}")
        elif any(c.sparse for c in cols):
            self._end("sparse", f"{where}: sparse columns are read from the source (dense only)")
        elif self.nbytes > self.budget:
            self._end(
                "too big",
                f"{where}: the RAM tier needs {human_bytes(self.nbytes)}, over the memory "
                f"budget of {human_bytes(self.budget)} (of {human_bytes(container_limits().total)}"
                "); reading from the page cache as before. Select fewer columns (columns=), or "
                "give memory_budget= more room",
            )
            warnings.warn(self.message, MemoryBudgetWarning, stacklevel=4)

    @property
    def ready(self) -> bool:
        """Whether reads come from the copy; in a process forked while it was copied, from when
        the owner's copy ends (a shared copy is seen there; a private one never is)."""
        return self.state == "ready" or (self.state == "copying" and self._adopt())

    def _adopt(self) -> bool:
        region = self._region
        if self._thread is None or self._thread.is_alive():
            return False  # the owner, still copying (or not started)
        if region is None or region.lost:  # a child forked before the copy was (or had) a region
            self.state, self.message = "not here", "forked before the copy ended: reads the source"
            return False
        if self._word[0] != _READY:
            return False
        self.arrays = _columns(region, self._cols, self.rows)
        self.state = "ready"
        return True

    def start(self) -> RamTier:
        """Begin the copy on a background thread (where it was planned); returns self."""
        if self.state == "copying" and self._thread is None:
            try:  # mapped now, before any worker forks, so a shared copy is seen there too
                self._region = Region(self.nbytes, self.backing)
            except OSError as e:
                self._end("failed", f"no memory mapped for the copy: {e!r}")
                return self
            self.huge = self._region.huge
            promise(self, self.nbytes)
            self._thread = threading.Thread(target=self._run, name="wb-ram-tier", daemon=True)
            self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> RamTier:
        """Wait for the copy to end (any state but ``"copying"``); returns self."""
        if self._thread is not None and self._thread.is_alive():  # none in a forked child
            self._done.wait(timeout)
        return self

    def cancel(self) -> None:
        """Stop the copy (reads stay on the source) and give its memory back."""
        self._cancel.set()
        self.wait()
        if self.state == "copying":
            self._end("stopped", "the copy was cancelled")

    def _run(self) -> None:
        t0 = time.perf_counter()
        try:
            self._copy()
        except BaseException as e:  # any failure leaves the source serving every read
            self._free()
            self._end("failed", f"the copy failed at row {self.copied_rows:,}: {e!r}")
        finally:
            self.seconds = time.perf_counter() - t0
            promise(self, 0)
            self._done.set()

    def _copy(self) -> None:
        region = self._region
        assert region is not None  # mapped by start()
        out = _columns(region, self._cols, self.rows)
        step = max(1, CHUNK_BYTES // max(1, sum(c.row_bytes for c in self._cols)))
        floor = container_limits().available - self.budget  # what the budget leaves others
        for a in range(0, self.rows, step):
            b = min(self.rows, a + step)
            left = (self.rows - a) * (self.nbytes // max(1, self.rows))
            if self._cancel.is_set() or container_limits().available - left < floor:
                self._free()
                why = "cancelled" if self._cancel.is_set() else "memory ran short"
                self._end("stopped", f"the copy stopped at row {a:,} ({why}): reading the source")
                return
            chunk = self.source.read_chunk(a, b)
            for name, dst in out.items():
                np.copyto(dst[a:b], chunk[name], casting="no")
            self.copied_rows = b
            promise(self, left)
        region.seal()
        self.arrays = _columns(region, self._cols, self.rows)
        self.state = "ready"  # after the arrays: a reader that sees it finds them
        self._word[0] = _READY  # and processes forked meanwhile (shared backing) adopt them

    def _free(self) -> None:
        self.arrays = {}
        if self._region is not None:
            self._region.close()
            self._region = None

    def _end(self, state: str, message: str) -> None:
        self.state, self.message = state, message
        self._done.set()

    def close(self) -> None:
        """Give the copy's memory back; reads go to the source from now on."""
        self.cancel()
        self.state, self.message = "stopped", "closed"
        self._free()

    def describe(self) -> str:
        """One line for ``inspect``, the Monitor and ``repr``.

        Returns
        -------
        str
            For example ``"ram tier ready: 2.0 GiB, 2 MiB pages, private, copied in 1.2 s"``.
        """
        pages = "2 MiB pages" if self.huge else "4 KiB pages"
        size = f"{human_bytes(self.nbytes)} of budget {human_bytes(self.budget)}"
        if self.state == "ready":
            return (
                f"ram tier ready: {size}, {pages}, {self.backing}, copied in {self.seconds:.1f} s"
            )
        if self.state == "copying":
            return f"ram tier copying: row {self.copied_rows:,} of {self.rows:,} ({size})"
        return f"ram tier {self.state}: {self.message}"

    def info(self) -> dict[str, Any]:
        """The tier's figures as plain values (state, bytes, budget, rows copied, backing, huge
        pages, seconds, message), for the Monitor.

        Returns
        -------
        dict
            Keys ``state``, ``nbytes``, ``budget``, ``rows``, ``copied_rows``, ``backing``,
            ``huge``, ``seconds``, ``message``.
        """
        return {
            k: getattr(self, k)
            for k in (
                "state",
                "nbytes",
                "budget",
                "rows",
                "copied_rows",
                "backing",
                "huge",
                "seconds",
                "message",
            )
        }

    def __getstate__(self) -> dict[str, Any]:
        """A worker process started by spawn: the sealed shared copy where one can be reopened,
        else nothing (it reads the source)."""
        path = self._region.reopen_path if self.ready and self._region is not None else None
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_") or k == "_cols"}
        state.update(arrays={}, reopen=path, source=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        path = state.pop("reopen")
        self.__dict__.update(state)
        self._region, self._thread = None, None
        self._cancel, self._done = threading.Event(), threading.Event()
        self._word = np.zeros(1, np.int64)
        self._done.set()
        if path is None or self.state != "ready":
            self.state, self.message = "not here", "a spawned worker reads the source"
            return
        try:
            region = self._region = Region(self.nbytes, "shared", path=path)
        except OSError as e:
            self.state, self.message = "not here", f"could not reopen the copy: {e}"
            return
        self.arrays = _columns(region, self._cols, self.rows)


def _columns(region: Region, cols: tuple[Column, ...], rows: int) -> dict[str, np.ndarray]:
    """The columns' arrays over ``region``: each from a huge-page boundary, in ``cols``' order."""
    out, off = {}, 0
    for c in cols:
        nb = c.row_bytes * rows
        a = region.view(off, nb).view(c.dtype).reshape(rows, *c.shape)
        if region.sealed or not region.owner == os.getpid():
            a.flags.writeable = False  # read-only: contiguous batches are zero-copy views
        out[c.name] = a
        off += _aligned(nb)
    return out
