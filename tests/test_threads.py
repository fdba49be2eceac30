"""workbench._threads.IdleThread: the one background thread that ends when idle (read-ahead
advice and a remote store's fetch-ahead run on it; tests/test_advice.py covers the advice)."""

from __future__ import annotations

import threading
import time

from workbench._threads import IdleThread


def test_calls_run_in_order_a_backlog_keeps_the_newest_and_a_raise_is_dropped():
    gate, seen = threading.Event(), []

    def slow(i: int) -> None:
        gate.wait(5.0)
        if i == 2:
            raise OSError("background only")
        seen.append((i, threading.current_thread().name))

    worker = IdleThread("workbench-test", keep=1)
    worker.submit(slow, 0)  # runs, held at the gate
    for _ in range(250):
        if worker._busy:
            break
        time.sleep(0.02)
    for i in (1, 2, 3):  # of a backlog only the newest waits
        worker.submit(slow, i)
    gate.set()
    assert worker.wait(5.0)
    assert seen == [(0, "workbench-test"), (3, "workbench-test")]
    worker.submit(slow, 2)  # raises on the thread: nothing else happens
    assert worker.wait(5.0) and len(seen) == 2


def test_the_thread_ends_when_idle_lets_go_and_starts_again():
    worker = IdleThread("workbench-test", idle_s=0.05)
    worker.submit(lambda: None)
    assert worker.wait(5.0)
    for _ in range(100):
        if worker._thread is None:
            break
        time.sleep(0.02)
    assert worker._thread is None and not worker._queue
    done = threading.Event()
    worker.submit(done.set)
    assert done.wait(5.0)
    worker.cancel()
    assert worker.wait(1.0)
