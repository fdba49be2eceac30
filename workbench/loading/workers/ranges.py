"""The loader's stages as the ecosystem's profilers see them: ``record_function`` ranges named
``workbench.<stage>`` while a ``torch.profiler`` runs, and NVTX ranges (``torch.cuda.nvtx``) on
CUDA for Nsight Systems (``WB_NVTX=1`` asks for them without torch's profiler: in worker
processes too, which torch's profiler does not see).

Asked once a batch (:func:`profiling`, one attribute read); without a profiler no range is
opened, so the stages cost what they cost untraced. torch's profiler is thread-local: it records
the ranges of the thread that started it (the consumer's: reading in-process, sampling, the
hand-over, ``to_device``), not those of reader threads.

>>> with stage_range("workbench.read"):
...     pass
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.autograd import profiler as _profiler

__all__: list[str] = []

NVTX = os.environ.get("WB_NVTX", "0") == "1"  # Nsight Systems: NVTX ranges without torch's profiler


def profiling() -> bool:
    """Whether stage ranges are wanted now: torch's profiler runs, or ``WB_NVTX=1``."""
    return _profiler._is_profiler_enabled or NVTX


@contextmanager
def stage_range(name: str) -> Iterator[None]:
    """A ``record_function`` range named ``name`` (and an NVTX range where CUDA is)."""
    nvtx = torch.cuda.is_available()
    with torch.profiler.record_function(name):
        if nvtx:
            torch.cuda.nvtx.range_push(name)
        try:
            yield
        finally:
            if nvtx:
                torch.cuda.nvtx.range_pop()
