"""Read-ahead advice off the caller's thread: the kernel queues a cold window's reads inside
``madvise`` (1-15 ms for 16 MiB on this VM's disk), time the consumer would otherwise spend
waiting there instead of reading the window it has.

>>> seen = []; advise = Advisor(lambda a, b: seen.append(a + b) or a + b); advise(1, 2)
>>> advise(3, 4); advise.wait(5.0), seen   # the first asked for something: the next, on the thread
(True, [3, 7])
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__: list[str] = []

IDLE_S = 1.0  # the thread ends after this long without advice, and starts again on the next


class Advisor:
    """``advisor(*args)`` queues ``fn(*args)`` for a daemon thread of its own and returns at
    once; calls run in order, and one that raises is dropped (advice only: a read still reads).

    While ``fn`` asks for nothing (returns 0: warm data, where our datasets' ``will_need`` only
    looks), it is called in the caller's thread instead: waking a thread once a window cost
    ~2 us a batch (bs 256), more than the call itself."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._pending = 0
        self._inline = True  # whether calls run in the caller (the last one asked for nothing)

    def __call__(self, *args: Any) -> None:
        if self._inline:
            try:
                self._inline = not self.fn(*args)
            except Exception:
                pass
            return
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's thread is not here
                self._queue, self._thread, self._pid, self._pending = queue.SimpleQueue(), None, os.getpid(), 0
            self._pending += 1
            self._queue.put(args)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="workbench-advice", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                args = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            try:
                if not self.fn(*args):
                    self._inline = True  # warm again: the next calls run in the caller
            except Exception:
                pass
            with self._lock:
                self._pending -= 1

    def wait(self, timeout: float) -> bool:
        """Whether every queued call has run within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self._pending and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._pending
