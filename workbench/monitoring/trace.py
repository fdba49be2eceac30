"""``export_trace``: the loader's recent batches as Chrome Trace Event Format JSON, which
Perfetto (ui.perfetto.dev) and chrome://tracing open: a track per process and thread, a "batch"
slice per batch on each track it passed, and inside it a complete ("X") slice per stage.

The loader keeps each delivered batch's record in its stage window (``loader.stages``, the last
200 batches): the stage seconds and a span (when it was delivered, on which thread, its epoch and
number, when choosing its rows and reading began, and the reader's pid and thread). A record is
one tuple a batch, always kept (it is what the stage means are computed from); this turns them
into events only when asked. Worker processes' stages carry their own pids: perf_counter() is one
clock for every process of the machine.

>>> import json, tempfile, os
>>> dl = wb.loader(wb.open_dataset({"x": np.ones((1024, 4), "float32")}), batch_size=256)
>>> for _ in dl: pass
>>> path = export_trace(dl, os.path.join(tempfile.mkdtemp(), "trace.json"))
>>> sorted({e["name"] for e in json.load(open(path))["traceEvents"] if e["ph"] == "X"})[:3]
['batch 0', 'batch 1', 'batch 2']
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["export_trace"]

SAMPLER = 1 << 30  # added to the consumer's thread id: the sampler's own track (no real tid)


def export_trace(source: Any, path: str | os.PathLike[str]) -> str:
    """Write the last batches' stages as Chrome Trace Event Format JSON.

    Parameters
    ----------
    source : Loader or Monitor
        A loader that delivered batches (its last 200 count), or a :class:`Monitor` watching one.
    path : str or PathLike
        The ``.json`` file to write (replaced).

    Returns
    -------
    str
        ``path``; open it in Perfetto (ui.perfetto.dev) or chrome://tracing.

    Examples
    --------
    >>> dl = wb.loader(wb.open_dataset({"x": np.ones((512, 4), "float32")}), batch_size=128)
    >>> _ = list(dl); export_trace(dl, "trace.json")
    'trace.json'
    """
    dl = source if hasattr(source, "stages") else source.loader
    events = trace_events(dl.stages.records(), dl.stages.device_records(), os.getpid())
    with open(path, "w") as f:
        json.dump({"traceEvents": events, "displayTimeUnit": "ms"}, f)
    return os.fspath(path)


def _slice(name: str, pid: int, tid: int, start: float, dur: float, **args: Any) -> dict:
    return {
        "name": name,
        "cat": "batch" if name.startswith("batch") else "stage",
        "ph": "X",
        "ts": start * 1e6,
        "dur": max(0.0, dur) * 1e6,
        "pid": pid,
        "tid": tid,
        "args": args,
    }


def _meta(kind: str, pid: int, tid: int, name: str) -> dict:
    return {"name": kind, "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}


def trace_events(records: list[tuple], devices: list[tuple[float, float, float]], pid: int) -> list:
    """The events of ``records`` (``StageWindow.records()``) and ``devices`` (its
    ``device_records()``), the consumer running in process ``pid``."""
    spans = [r for r in records if r[3] is not None]
    events: list[dict] = []
    threads: dict[tuple[int, int], str] = {}
    for i, (producer, wait, _, span) in enumerate(spans):
        sample, read, transform, collate, handoff = (*producer, 0.0, 0.0, 0.0, 0.0, 0.0)[:5]
        got, tid, epoch, k, chosen, t0, rpid, rtid = span
        asked, label, ids = got - wait, f"batch {k}", {"batch": k, "epoch": epoch}
        nxt = spans[i + 1] if i + 1 < len(spans) else None
        end = nxt[3][0] - nxt[1] if nxt is not None else got
        threads[(pid, tid)] = "consumer"
        out = [_slice(label, pid, tid, asked, end - asked, **ids)]
        out.append(_slice("wait", pid, tid, asked, wait, **ids))
        out.append(_slice("handoff", pid, tid, got - min(handoff, wait), min(handoff, wait), **ids))
        step_from = got
        for d0, host, copy in devices:
            if got <= d0 < end:
                d1 = min(d0 + host, end)
                out.append(_slice("to_device", pid, tid, d0, d1 - d0, copy_s=copy, **ids))
                step_from = max(step_from, d1)
        if nxt is not None and end - nxt[2] > step_from - 1e-9:
            step_from = end - nxt[2]
        if nxt is not None:
            out.append(_slice("step", pid, tid, step_from, end - step_from, **ids))
        stages = [("read", t0, read), ("collate", t0 + read, collate)]
        stages.append(("transform", t0 + read + collate, transform))
        if (rpid, rtid) == (pid, tid):  # read in the consumer's thread: inside its wait
            out += [_slice(n, pid, tid, s, d, **ids) for n, s, d in stages]
        else:
            threads.setdefault((rpid, rtid), "reader")
            out.append(_slice(label, rpid, rtid, t0, read + collate + transform, **ids))
            out += [_slice(n, rpid, rtid, s, d, **ids) for n, s, d in stages]
        if (rpid, rtid) == (pid, tid) and asked - 1e-9 <= chosen and chosen + sample <= t0 + 1e-9:
            out.append(_slice("sample", pid, tid, chosen, sample, **ids))
        else:  # chosen while an earlier batch was waited for: on a track of its own
            threads[(pid, tid + SAMPLER)] = "sampler (on the consumer's thread)"
            out.append(_slice(label, pid, tid + SAMPLER, chosen, sample, **ids))
            out.append(_slice("sample", pid, tid + SAMPLER, chosen, sample, **ids))
        events += out
    meta = [_meta("process_name", pid, 0, f"workbench consumer (pid {pid})")]
    for p in sorted({p for p, _ in threads} - {pid}):
        meta.append(_meta("process_name", p, 0, f"workbench loader worker (pid {p})"))
    meta += [_meta("thread_name", p, t, f"{name} ({t})") for (p, t), name in threads.items()]
    return meta + events
