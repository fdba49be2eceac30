"""Where a batch's time goes, stage by stage, and the verdict: is the model waiting for data, for
which stage, and what setting moves it.

Pure logic: the loader measures (``loading.fetch``, ``loading.passes``, ``loading.feeds``); this
module names the stages, keeps a rolling window of per-batch stage seconds and turns them into a
:class:`Verdict`, as the TensorFlow Profiler's input-pipeline analyzer does per stage.

>>> w = StageWindow()
>>> for _ in range(20):
...     w.add({"read": 0.001, "transform": 0.008, "wait": 0.007, "step": 0.002})
>>> v = verdict(w.means(), workers=0, worker_type="thread", cores=2)
>>> v.bound, v.stage, v.change
('input', 'transform', {'worker_type': 'process', 'num_workers': 2})
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from .remedies import Facts, remedy

__all__ = ["StageWindow", "Verdict", "verdict"]

# Producer stages in the order a batch passes them, then the consumer's two.
STAGES = (
    "sample",  # choosing the rows (the sampler)
    "read",  # I/O and the gather
    "transform",  # the user's transform
    "collate",  # collate_fn
    "handoff",  # to the consumer: a queue or a shared-memory slot
    "to_device",  # the host-to-device copy
    "wait",  # the consumer waiting for the next batch
    "step",  # the consumer's own work between batches
)
PRODUCER = STAGES[:6]
WAITS_LITTLE = 0.05  # a consumer waiting under this share of its time is not held up by data
GIL_SHARE = 0.3  # a transform this much of a batch on threads holds the GIL the others wait on


class StageWindow:
    """The last ``size`` batches' stage seconds; :meth:`means` per stage over them.

    Each batch is one record (the ring ``monitoring.trace`` draws): the producer's seconds in
    ``PRODUCER``'s order up to ``handoff`` (as many as were timed), the consumer's wait and step,
    and the batch's span (where and when its stages ran; None where not known). ``to_device``
    records (start, host seconds, copy seconds) on its own ring: it runs after the batch left.
    ``resident``: the page-cache fraction of the dataset's files as the loader's pass began
    (None: not local files).

    Parameters
    ----------
    size : int, default 200
        Batches kept.
    """

    def __init__(self, size: int = 200) -> None:
        self._batches: deque[tuple[tuple[float, ...], float, float, Any]] = deque(maxlen=size)
        self._devices: deque[tuple[float, float, float]] = deque(maxlen=size)
        # the loader's hot path, without a Python call: push((producer, wait, step, span))
        self.push: Callable[[tuple[tuple[float, ...], float, float, Any]], None] = (
            self._batches.append
        )
        # to_device's: push_device((started, host seconds, copy seconds on the device))
        self.push_device: Callable[[tuple[float, float, float]], None] = self._devices.append
        self.resident: float | None = None  # page-cache fraction of the files as the pass began

    def add(self, times: dict[str, float]) -> None:
        """One batch's seconds per stage (stages it did not pass are left out)."""
        producer = tuple(float(times.get(s, 0.0)) for s in PRODUCER[:5])
        step = float(times.get("step", 0.0))
        self._batches.append((producer, float(times.get("wait", 0.0)), step, None))
        if "to_device" in times:
            self._devices.append((0.0, 0.0, float(times["to_device"])))

    def clear(self) -> None:
        """Forget every batch (the loader's settings changed)."""
        self._batches.clear()
        self._devices.clear()

    def __len__(self) -> int:
        return len(self._batches)

    def records(self) -> list[tuple[tuple[float, ...], float, float, Any]]:
        """The batches' records, oldest first (a copy: the loader adds as it runs)."""
        return list(self._batches)

    def device_records(self) -> list[tuple[float, float, float]]:
        """``to_device``'s records (started, host seconds, copy seconds), oldest first."""
        return list(self._devices)

    def means(self) -> dict[str, float]:
        """Mean seconds a batch per stage over the window (0.0 for a stage never timed).

        ``to_device`` is host and device copy time a batch; ``step`` leaves out the host part,
        which runs between the consumer's calls for batches.

        Returns
        -------
        dict of str to float
        """
        sums, batches = [0.0] * len(STAGES), list(self._batches)  # a copy: the loader adds
        for producer, wait, step, _ in batches:
            for i, t in enumerate(producer):
                sums[i] += t
            sums[-2] += wait
            sums[-1] += step
        n = len(batches) or 1
        out = {s: t / n for s, t in zip(STAGES, sums)}
        devices = list(self._devices)
        if devices:
            host = sum(d[1] for d in devices) / len(devices)
            out["to_device"] = host + sum(d[2] for d in devices) / len(devices)
            out["step"] = max(0.0, out["step"] - host)
        return out

    def shares(self) -> dict[str, float]:
        """Each producer stage's share of the producer's time a batch (sums to 1 when timed).

        Returns
        -------
        dict of str to float
        """
        m = self.means()
        total = sum(m[s] for s in PRODUCER) or 1.0
        return {s: m[s] / total for s in PRODUCER}


@dataclass(frozen=True)
class Verdict:
    """What holds a run back, with the measured evidence and the change that moves it.

    Parameters
    ----------
    bound : {"input", "compute"}
        ``"input"``: the consumer waits for data; ``"compute"``: it hardly ever waits.
    stage : str
        The producer stage that dominates ("" when compute-bound).
    share : float
        That stage's share of the producer's time a batch.
    evidence : str
        The figures the verdict rests on.
    advice : str
        What to do, as a sentence.
    change : dict
        Loader options that apply the advice (``loader.reconfigure(**change)``); empty when the
        fix is outside the loader (leave it, a faster disk, a cheaper transform).
    note : str
        What was not measured, and why (e.g. "no GPU: host-to-device not measured").
    """

    bound: str
    stage: str
    share: float
    evidence: str
    advice: str
    change: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def __str__(self) -> str:
        note = f" ({self.note})" if self.note else ""
        return f"{self.bound}-bound: {self.evidence}. {self.advice}{note}"


def verdict(
    means: dict[str, float],
    *,
    workers: int,
    worker_type: str,
    cores: int,
    batch_rows: int = 0,
    resident: float | None = None,
    remote: bool = False,
    note: str = "",
) -> Verdict:
    """The verdict on one window of stage means (seconds a batch).

    Parameters
    ----------
    means : dict of str to float
        :meth:`StageWindow.means`; the producer's stages are per batch on one reader.
    workers, worker_type : int, str
        The loader's readers now.
    cores : int
        Cores this process may use (the container's, see ``monitoring.container``).
    batch_rows : int, optional
        Rows a batch, for the per-batch overhead case.
    resident : float, optional
        Page-cache fraction of the dataset's files (reads from cold storage when low).
    remote : bool, default False
        The dataset streams from a URL.
    note : str, optional
        What was not measured (the verdict's ``note``).

    Returns
    -------
    Verdict
    """
    wait, step = means.get("wait", 0.0), means.get("step", 0.0)
    waiting = wait / (wait + step) if wait + step > 0 else 0.0
    producer = {s: means.get(s, 0.0) for s in PRODUCER}
    total = sum(producer.values())
    if total == 0.0 and waiting >= WAITS_LITTLE:  # stages not timed (WB_STAGE_TIMES=0)
        return Verdict(
            "input",
            "",
            0.0,
            f"the consumer waits {waiting:.0%} of its time ({wait * 1e3:.2f} ms a batch); the "
            f"readers' stages were not timed ({workers} {worker_type} readers)",
            "The loader holds the step back: try more readers, or time the stages "
            "(WB_STAGE_TIMES=1) to see which one.",
            note=note,
        )
    if waiting < WAITS_LITTLE or total == 0.0:
        return Verdict(
            "compute",
            "",
            0.0,
            f"the consumer waits {waiting:.0%} of its time ({wait * 1e3:.2f} ms a batch against "
            f"a {step * 1e3:.2f} ms step)",
            "The loader is not the bottleneck: leave it, or make the step faster.",
            note=note,
        )
    stage = max(producer, key=producer.__getitem__)
    if worker_type == "thread" and workers and producer["transform"] >= GIL_SHARE * total:
        stage = "transform"  # its GIL stretches the other threads' stages: the cause is it
    share = producer[stage] / total
    ms = producer[stage] * 1e3
    readers = "one thread" if workers == 0 else f"{workers} {worker_type} readers"
    evidence = (
        f"the consumer waits {waiting:.0%} of its time; {stage} is {share:.0%} of each batch "
        f"({ms:.2f} ms) on {readers}"
    )
    facts = Facts(workers, worker_type, cores, batch_rows, total, resident, remote)
    more, advice, change = remedy(stage, facts)
    return Verdict("input", stage, share, evidence + more, advice, change, note)
