"""A daemon thread of one's own for work handed off in the background, that ends when idle: its
calls hold what they refer to (a dataset, and so its mappings and their cached pages), so it lets
go after ``idle_s`` with nothing to do, and the next call starts another. Read-ahead advice
(``loading.advice.Advisor``) and a remote store's fetch-ahead (``datasets.remote``) run on one.

>>> seen = []; worker = IdleThread("workbench-example"); worker.submit(seen.append, 1)
>>> worker.wait(5.0), seen
(True, [1])
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Callable
from typing import Any

__all__: list[str] = []

IDLE_S = 1.0  # the thread ends after this long without a call, and starts again on the next


class IdleThread:
    """``submit(fn, *args)`` queues ``fn(*args)`` for a daemon thread named ``name`` and returns
    at once. Calls run in order; one that raises is dropped (background work only: whoever needs
    the result does the work again and sees the error); of a backlog only the newest ``keep``
    wait. The thread ends after ``idle_s`` without a call, and in a forked child (where the
    parent's thread did not come along) the first call starts one of the child's own.
    :meth:`cancel` drops what waits and ends the thread."""

    def __init__(self, name: str, *, keep: int = 2, idle_s: float = IDLE_S) -> None:
        self.name, self.keep, self.idle_s = name, int(keep), float(idle_s)
        self._cond = threading.Condition()
        self._reset()

    def _reset(self) -> None:
        self._queue: collections.deque = collections.deque()
        self._thread: threading.Thread | None = None
        self._pid, self._busy, self._stop = os.getpid(), False, False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._pid != os.getpid():  # a forked child: the parent's thread is not here, and its
            self._cond = threading.Condition()  # lock may have been held at the fork
            self._reset()
        with self._cond:
            self._queue.append((fn, args))
            while len(self._queue) > self.keep:
                self._queue.popleft()
            self._cond.notify()
            if self._thread is None:
                self._stop = False
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue and not self._stop:
                    self._cond.wait(self.idle_s)
                if not self._queue or self._stop:  # idle or cancelled: let go of what calls hold
                    self._thread = None
                    return
                (fn, args), self._busy = self._queue.popleft(), True
            try:
                fn(*args)
            except Exception:
                pass
            del fn, args
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def wait(self, timeout: float) -> bool:
        """Whether every queued call has run within ``timeout`` seconds."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def cancel(self, timeout: float = 1.0) -> None:
        """Drop the calls still waiting, let the one running finish (``timeout`` at most) and
        end the thread."""
        with self._cond:
            self._queue.clear()
            self._stop = True
            self._cond.notify_all()
        self.wait(timeout)
