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


class StageWindow:
    """The last ``size`` batches' stage seconds; :meth:`means` per stage over them.

    Parameters
    ----------
    size : int, default 200
        Batches kept.
    """

    def __init__(self, size: int = 200) -> None:
        # per batch: (producer seconds in PRODUCER's order, as many as were timed, wait, step)
        self._batches: deque[tuple[tuple[float, ...], float, float]] = deque(maxlen=size)
        # the loader's hot path, without a Python call: push((producer, wait, step)), the
        # producer's seconds in PRODUCER's order (the first ones only, or none, where the rest
        # were not timed)
        self.push: Callable[[tuple[tuple[float, ...], float, float]], None] = self._batches.append

    def add(self, times: dict[str, float]) -> None:
        """One batch's seconds per stage (stages it did not pass are left out)."""
        producer = tuple(float(times.get(s, 0.0)) for s in PRODUCER)
        self._batches.append(
            (producer, float(times.get("wait", 0.0)), float(times.get("step", 0.0)))
        )

    def clear(self) -> None:
        """Forget every batch (the loader's settings changed)."""
        self._batches.clear()

    def __len__(self) -> int:
        return len(self._batches)

    def means(self) -> dict[str, float]:
        """Mean seconds a batch per stage over the window (0.0 for a stage never timed).

        Returns
        -------
        dict of str to float
        """
        sums, batches = [0.0] * len(STAGES), list(self._batches)  # a copy: the loader adds
        for producer, wait, step in batches:
            for i, t in enumerate(producer):
                sums[i] += t
            sums[-2] += wait
            sums[-1] += step
        n = len(batches) or 1
        return {s: t / n for s, t in zip(STAGES, sums)}

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
    """

    bound: str
    stage: str
    share: float
    evidence: str
    advice: str
    change: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.bound}-bound: {self.evidence}. {self.advice}"


def verdict(
    means: dict[str, float],
    *,
    workers: int,
    worker_type: str,
    cores: int,
    batch_rows: int = 0,
    resident: float | None = None,
    remote: bool = False,
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

    Returns
    -------
    Verdict
    """
    wait, step = means.get("wait", 0.0), means.get("step", 0.0)
    waiting = wait / (wait + step) if wait + step > 0 else 0.0
    producer = {s: means.get(s, 0.0) for s in PRODUCER}
    total = sum(producer.values())
    if total == 0.0 and waiting >= WAITS_LITTLE:  # worker processes: no stage timed there yet
        return Verdict(
            "input",
            "",
            0.0,
            f"the consumer waits {waiting:.0%} of its time ({wait * 1e3:.2f} ms a batch); the "
            f"readers' stages were not timed ({workers} {worker_type} readers)",
            "The loader holds the step back: try more readers, or worker_type='thread' to see "
            "which stage it is.",
        )
    if waiting < WAITS_LITTLE or total == 0.0:
        return Verdict(
            "compute",
            "",
            0.0,
            f"the consumer waits {waiting:.0%} of its time ({wait * 1e3:.2f} ms a batch against "
            f"a {step * 1e3:.2f} ms step)",
            "The loader is not the bottleneck: leave it, or make the step faster.",
        )
    stage = max(producer, key=producer.__getitem__)
    share = producer[stage] / total
    ms = producer[stage] * 1e3
    readers = "one thread" if workers == 0 else f"{workers} {worker_type} readers"
    evidence = (
        f"the consumer waits {waiting:.0%} of its time; {stage} is {share:.0%} of each batch "
        f"({ms:.2f} ms) on {readers}"
    )
    return _advise(
        stage, evidence, share, workers, worker_type, cores, batch_rows, resident, remote
    )


def _advise(
    stage: str,
    evidence: str,
    share: float,
    workers: int,
    worker_type: str,
    cores: int,
    batch_rows: int,
    resident: float | None,
    remote: bool,
) -> Verdict:
    """The change that moves the dominant stage."""
    more = max(2, cores)
    if stage == "transform":
        if worker_type != "process" or workers < more:
            return Verdict(
                "input",
                stage,
                share,
                evidence,
                "A Python transform holds the GIL: run it in worker processes.",
                {"worker_type": "process", "num_workers": more},
            )
        return Verdict(
            "input", stage, share, evidence, "Make the transform cheaper, or batch it (vectorise)."
        )
    if stage == "read" and remote:
        return Verdict(
            "input",
            stage,
            share,
            evidence,
            "Shards arrive from the URL slower than batches leave: raise cache_bytes so more "
            "shards are fetched ahead, or keep a local copy.",
        )
    if stage == "read" and resident is not None and resident < 0.5:
        return Verdict(
            "input",
            stage,
            share,
            evidence + f"; {resident:.0%} of the files are in the page cache",
            "Reads wait on storage: read in block order (contiguous runs), or warm the files "
            "first (wb.warm) if they fit in memory.",
            {"shuffle": "block"},
        )
    if stage in ("handoff", "sample") and batch_rows and batch_rows < 128:
        return Verdict(
            "input",
            stage,
            share,
            evidence + f"; batches of {batch_rows} rows",
            "Per-batch overhead dominates tiny batches: use larger batches.",
            {"batch_size": max(256, batch_rows * 8)},
        )
    if stage == "to_device":
        return Verdict(
            "input",
            stage,
            share,
            evidence,
            "The host-to-device copy dominates: pin_memory=True copies asynchronously.",
            {"pin_memory": True},
        )
    if stage == "collate":
        return Verdict(
            "input",
            stage,
            share,
            evidence,
            "collate_fn works row by row: use the dataset's batched reads (collate_fn=None).",
            {"collate_fn": None},
        )
    if workers < more:
        return Verdict(
            "input",
            stage,
            share,
            evidence,
            f"Read with more readers: {more} threads share the work.",
            {"worker_type": "thread", "num_workers": more},
        )
    return Verdict(
        "input", stage, share, evidence, "The readers are saturated: storage is the limit."
    )
