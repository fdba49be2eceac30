"""Read-ahead advice off the caller's thread: the kernel queues a cold window's reads inside
``madvise`` (1-15 ms for 16 MiB on this VM's disk), time the consumer would otherwise spend
waiting there instead of reading the window it has.

>>> seen = []; advise = Advisor(lambda a, b: seen.append(a + b) or a + b); advise(1, 2)
>>> advise(3, 4); advise.wait(5.0), seen   # the first asked for something: the next, on the thread
(True, [3, 7])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._threads import IdleThread

__all__: list[str] = []

IDLE_S = 1.0  # the thread ends after this long without advice, and starts again on the next
MAX_QUEUED = 2  # calls waiting at most: the newest (AHEAD_WINDOWS windows' worth)


class Advisor(IdleThread):
    """``advisor(*args)`` queues ``fn(*args)`` for a daemon thread of its own and returns at
    once; calls run in order, one that raises is dropped (advice only: a read still reads), and
    of a backlog only the newest ``MAX_QUEUED`` wait (older advice is for windows the pass has
    reached already). :meth:`cancel` drops what waits, at a pass's end.

    While ``fn`` asks for nothing (returns 0: warm data, where our datasets' ``will_need`` only
    looks), it is called in the caller's thread instead: waking a thread once a window cost
    ~2 us a batch (bs 256), more than the call itself."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        super().__init__("workbench-advice", keep=MAX_QUEUED, idle_s=IDLE_S)
        self.fn = fn
        self._inline = True  # whether calls run in the caller (the last one asked for nothing)

    def __call__(self, *args: Any) -> None:
        if self._inline:
            try:
                self._inline = not self.fn(*args)
            except Exception:
                pass
            return
        self.submit(self._advise, *args)

    def _advise(self, *args: Any) -> None:
        if not self.fn(*args):
            self._inline = True  # warm again: the next calls run in the caller

    def cancel(self, timeout: float = 1.0) -> None:
        """Drop the calls still waiting, let the one running finish (``timeout`` at most) and
        end the thread: no advice reads pages for a pass that is over, and the dataset it holds
        (its mappings, which keep their pages cached) is not kept alive by it."""
        super().cancel(timeout)
