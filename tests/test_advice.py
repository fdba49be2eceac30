"""workbench.loading.advice: advice runs on a thread of its own, in order, while it asks for
anything; in the caller while it asks for nothing; and survives what it calls."""

from __future__ import annotations

import os
import threading
import time

from workbench.loading import advice as _advice
from workbench.loading.advice import Advisor


def test_calls_run_in_order_off_the_callers_thread_and_a_backlog_keeps_the_newest():
    seen: list[tuple[int, str]] = []
    gate = threading.Event()

    def fn(i: int) -> int:
        if i:
            gate.wait(5.0)
        if i == 5:
            raise OSError("advice only")
        seen.append((i, threading.current_thread().name))
        return 4096  # bytes asked for: cold data

    advise = Advisor(fn)
    t0 = time.perf_counter()
    for i in range(7):
        advise(i)
    assert time.perf_counter() - t0 < 0.5 and len(seen) == 1  # nobody waited for the slow calls
    gate.set()
    assert advise.wait(5.0)
    done = [i for i, _ in seen]
    assert done[0] == 0 and done == sorted(done) and done[-1] == 6  # 5 raised: dropped
    assert len(done) <= 1 + 1 + _advice.MAX_QUEUED  # the inline one, the one running, the newest
    assert seen[0][1] == threading.current_thread().name  # the first: in the caller
    assert {name for _, name in seen[1:]} == {"workbench-advice"}


def test_cancel_drops_what_waits_and_lets_the_running_call_finish():
    seen: list[int] = []
    gate = threading.Event()

    def fn(i: int) -> int:
        if i:
            gate.wait(5.0)
        seen.append(i)
        return 1

    advise = Advisor(fn)
    advise(0)  # in the caller; the rest on the thread
    advise(1)
    for _ in range(100):
        if advise._busy:
            break
        time.sleep(0.01)
    advise(2)
    threading.Timer(0.1, gate.set).start()
    advise.cancel(5.0)
    assert seen == [0, 1] and advise.wait(1.0)  # 2 was waiting: dropped
    for _ in range(100):  # and the thread lets go of fn
        if advise._thread is None:
            break
        time.sleep(0.01)
    assert advise._thread is None
    advise(3)  # the next pass: a thread again
    assert advise.wait(5.0) and seen == [0, 1, 3]


def test_advice_that_asks_for_nothing_runs_in_the_caller_again():
    names: list[str] = []
    asks = iter([1, 1, 0, 0])
    advise = Advisor(lambda: names.append(threading.current_thread().name) or next(asks))
    advise()  # asks: the next goes to the thread
    advise()  # asks
    assert advise.wait(5.0)
    advise()  # on the thread, asks for nothing: warm
    assert advise.wait(5.0)
    advise()
    me = threading.current_thread().name
    assert names == [me, "workbench-advice", "workbench-advice", me]


def test_the_thread_ends_when_idle_and_starts_again(monkeypatch):
    monkeypatch.setattr(_advice, "IDLE_S", 0.05)
    seen: list[int] = []
    advise = Advisor(lambda x: seen.append(x) or 1)
    advise(0)
    advise(1)
    assert advise.wait(5.0)
    for _ in range(100):
        if advise._thread is None:
            break
        time.sleep(0.02)
    assert advise._thread is None
    advise(2)
    assert advise.wait(5.0) and seen == [0, 1, 2] and advise._thread is not None


def test_a_forked_child_gets_a_thread_of_its_own():
    seen: list[int] = []
    advise = Advisor(lambda x: seen.append(x) or 1)
    advise(0)
    advise(1)
    assert advise.wait(5.0)
    pid = os.fork()
    if pid == 0:  # the child: the parent's thread did not come along
        advise(2)
        os._exit(0 if advise.wait(5.0) and seen == [0, 1, 2] else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
