"""Measure how fast batches arrive, next to the machine's limits for the same bytes.

Every measurement consumes each batch the same way (a sum over every tensor), so a lazy or
zero-copy view cannot skip the read.

>>> ds = wb.open_dataset(np.load("x.npy", mmap_mode="r"))      # 1000 rows of 8 float32
>>> t = measure(wb.loader(ds, batch_size=100, shuffle="full", num_workers=0), max_seconds=5)
>>> t.samples, t.bytes // t.samples, t.mb_per_s < 10 * memcpy_mb_per_s(16 << 20)
(900, 32, True)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..datasets.base import shared_tensor

__all__ = ["Throughput", "measure", "memcpy_mb_per_s", "sequential_mb_per_s"]


@dataclass(frozen=True)
class Throughput:
    """What :func:`measure` counted, the first batch left out; ``samples_per_s`` and ``mb_per_s``
    are the steady-state rates.

    Parameters
    ----------
    samples, bytes : int
        Rows and bytes consumed after the first batch.
    seconds : float
        From the first batch's arrival to the end.
    first_batch_s : float
        From the start to the first batch: the start-up cost.
    """

    samples: int
    bytes: int
    seconds: float
    first_batch_s: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


def consume(batch: Any) -> tuple[int, int]:
    """Read every byte of a batch (sum); returns ``(rows, bytes)``."""
    tensors = (
        batch.values()
        if isinstance(batch, dict)
        else batch
        if isinstance(batch, (list, tuple))
        else [batch]
    )
    rows = nbytes = 0
    for t in tensors:
        if isinstance(t, torch.Tensor):
            if t.is_sparse or t.layout != torch.strided:
                t = t.values()
            float(t.sum())
            nbytes += t.numel() * t.element_size()
            rows = max(rows, len(t)) if t.dim() else rows
        elif isinstance(t, np.ndarray):
            float(t.sum())
            nbytes += t.nbytes
            rows = max(rows, len(t))
    return rows, nbytes


def measure(
    batches: Iterable[Any],
    *,
    max_batches: int | None = None,
    max_seconds: float | None = None,
    rows_per_batch: int | None = None,
) -> Throughput:
    """Iterate ``batches`` (a loader, or any iterable of batches), consuming each one.

    Steady-state rates count from the first batch; ``first_batch_s`` is the start-up cost.

    Parameters
    ----------
    batches : iterable
        Batches: a tensor, a tuple or list of them, or a dict of them (NumPy arrays too).
    max_batches : int, optional
        Stop after this many batches, the first included (default: when ``batches`` ends).
    max_seconds : float, optional
        Stop at the first batch that arrives this long after the start.
    rows_per_batch : int, optional
        Rows to count per batch (default: the longest tensor's length).

    Returns
    -------
    Throughput
        All zeros if ``batches`` yields nothing.

    Examples
    --------
    >>> ds = wb.open_dataset({"x": np.zeros((5000, 4), "float32")})
    >>> t = measure(wb.loader(ds, batch_size=1000, num_workers=0))
    >>> t.samples, t.bytes, t.first_batch_s > 0    # the first batch starts the clock: not counted
    (4000, 64000, True)
    """
    t0 = time.perf_counter()
    start = None
    samples = nbytes = n = 0
    for batch in batches:
        now = time.perf_counter()
        rows, b = consume(batch)
        if start is None:
            start = now
            first = now - t0
        else:
            samples += rows_per_batch or rows
            nbytes += b
        n += 1
        if (max_batches and n >= max_batches) or (max_seconds and now - t0 >= max_seconds):
            break
    end = time.perf_counter()
    if start is None:
        return Throughput(0, 0, 0.0, 0.0)
    return Throughput(samples, nbytes, end - start, first)


def memcpy_mb_per_s(nbytes: int = 256 << 20, repeats: int = 5) -> float:
    """Best-of memcpy speed: the ceiling for any order that gathers rows into a new batch.

    Parameters
    ----------
    nbytes : int, default 256 MiB
        Bytes a copy (of float32 ones).
    repeats : int, default 5
        Copies timed; the fastest counts.

    Returns
    -------
    float
        MB/s (1e6 bytes a second).

    Examples
    --------
    >>> memcpy_mb_per_s(16 << 20) > 100     # MB/s, best of 5 copies of 16 MiB
    True
    """
    src = np.ones(nbytes // 4, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    return nbytes / 1e6 / best


def sequential_mb_per_s(array: np.ndarray, batch_rows: int, max_seconds: float = 5.0) -> Throughput:
    """Zero-copy batch-sized slices of a (memory-mapped) array, each summed: the ceiling for
    contiguous batches from that file.

    Parameters
    ----------
    array : numpy.ndarray
        The array, read in whole passes until ``max_seconds``.
    batch_rows : int
        Rows a slice.
    max_seconds : float, default 5.0
        How long to read.

    Returns
    -------
    Throughput
        As :func:`measure` counts it.

    Examples
    --------
    >>> t = sequential_mb_per_s(np.load("x.npy", mmap_mode="r"), batch_rows=100, max_seconds=0.2)
    >>> t.samples > 0, t.bytes == t.samples * 8 * 4     # passes over the 1000 x 8 float32 rows
    (True, True)
    """

    def slices() -> Iterable[torch.Tensor]:
        while True:  # whole passes until max_seconds: a small array must not end the clock early
            for a in range(0, len(array), batch_rows):
                yield shared_tensor(np.asarray(array[a : a + batch_rows]))

    return measure(slices(), max_seconds=max_seconds)
