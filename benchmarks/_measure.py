"""Measure one contender in a fresh Python process: its timed seconds and its peak RSS.

A contender is a function in a benchmark script that returns a dict with at least ``seconds``
(it times only the part being compared, after its own setup). Running each contender in a new
interpreter makes ``ru_maxrss`` that contender's own high-water mark, not the benchmark's. The
parent also samples the RSS of the child plus all its descendants (Dask workers), which
``ru_maxrss`` cannot see.

>>> r = run_child(Path(__file__), "contender", {"n": 10})
>>> r["seconds"], r["peak_rss_mib"], r["tree_rss_mib"]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

MARK = "@@MEASURE@@"

# Runs in the child: import the script by path (its __main__ block does not run), call the
# contender, then report its result plus this process's own peak RSS on one marked line.
_BOOTSTRAP = (
    r"""
import importlib.util, json, resource, sys
script, func, kwargs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, __import__("os").path.dirname(script))
spec = importlib.util.spec_from_file_location("_measured_script", script)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
out = getattr(mod, func)(**kwargs)
ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
out.update(peak_rss_mib=ru / 1024, children_peak_rss_mib=kids / 1024)
sys.stdout.flush()
print(%r + json.dumps(out), flush=True)
"""
    % MARK
)


def current_rss_mib() -> float:
    """This process's resident set size now, in MiB (Linux /proc; no psutil needed)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _tree_rss_mib(pid: int) -> tuple[float, float]:
    """(RSS, anonymous RSS) in MiB summed over ``pid`` and its descendants. Anonymous excludes
    file-backed pages (memory-mapped inputs), which the kernel can drop under pressure."""
    import psutil

    try:
        p = psutil.Process(pid)
        procs = [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    total = anon = 0
    for q in procs:
        try:
            with open(f"/proc/{q.pid}/status") as f:
                fields = dict(
                    line.split(":", 1) for line in f if line.startswith(("VmRSS", "RssAnon"))
                )
        except (OSError, ValueError):
            continue
        total += int(fields.get("VmRSS", "0 kB").split()[0])
        anon += int(fields.get("RssAnon", "0 kB").split()[0])
    return total / 1024, anon / 1024


def run_child(
    script: Path,
    func: str,
    kwargs: dict[str, Any],
    *,
    timeout: float = 3600,
    sample_every: float = 0.05,
    python: str = sys.executable,
) -> dict[str, Any]:
    """Run ``func(**kwargs)`` from ``script`` in a new interpreter: its dict plus RSS figures.

    Adds ``peak_rss_mib`` (the child's ``ru_maxrss``), ``children_peak_rss_mib`` (largest reaped
    descendant), ``tree_rss_mib`` (largest sampled RSS summed over the child and its descendants)
    and ``tree_anon_mib`` (the same for anonymous memory only: no memory-mapped file pages).

    >>> run_child(Path("benchmarks/convert.py"), "np_save", {"npy": "x.npy", "dest": "y.npy"})
    """
    cmd = [python, "-c", _BOOTSTRAP, str(script), func, json.dumps(kwargs)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0.0, 0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss, anon = _tree_rss_mib(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], anon)
            stop.wait(sample_every)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise RuntimeError(f"{func}{kwargs}: timed out after {timeout}s\n{err[-4000:]}") from None
    finally:
        stop.set()
        sampler.join()
    lines = [ln for ln in out.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{func}{kwargs}: child exited {proc.returncode}\n{out[-2000:]}\n{err[-4000:]}"
        )
    result = json.loads(lines[-1][len(MARK) :])
    result["tree_rss_mib"] = max(peak[0], result["peak_rss_mib"])
    result["tree_anon_mib"] = peak[1]
    result["stdout"] = "\n".join(ln for ln in out.splitlines() if not ln.startswith(MARK))
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Stopwatch:
    """``with Stopwatch() as t: ...`` then ``t.seconds``; also notes the RSS when timing started."""

    def __enter__(self) -> Stopwatch:
        self.rss_start_mib = current_rss_mib()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t0

    def result(self, **extra: Any) -> dict[str, Any]:
        return {"seconds": self.seconds, "rss_start_mib": self.rss_start_mib, **extra}
