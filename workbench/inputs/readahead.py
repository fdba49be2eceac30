"""Run an iterator on a thread a few items ahead of its consumer, so producing the next item
(CSV parsing, which releases the GIL) overlaps the consumer's work on this one.

>>> list(read_ahead(lambda: iter(range(5))))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__: list[str] = []

_END = object()


def read_ahead(make: Callable[[], Iterator[Any]], depth: int = 2) -> Iterator[Any]:
    """Run ``make()`` (CSV parsing, which releases the GIL) on a thread, ``depth`` items ahead,
    so parsing overlaps the caller's packing, validation and writing. Errors re-raise here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for chunk in make():
                if not put(chunk):
                    return
            put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            put(e)

    t = threading.Thread(target=work, name="workbench-csv-reader", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        t.join()  # the file must outlive the thread that reads it
