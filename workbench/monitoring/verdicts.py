"""``wb.bottleneck`` (in a module not named like it, so that importing this one never shadows
``wb.monitoring.bottleneck``): the verdict (:func:`workbench.monitoring.stages.verdict`) on the
batches a loader delivered last, with its readers, its batch size, the cores the container
gives us, how much of the dataset's files the page cache holds, whether it streams from a URL,
and what was not measured (the copy to a GPU, where there is none).

The loader times each batch's stages as it delivers it (``loader.stages``, a
:class:`~workbench.monitoring.stages.StageWindow`); this asks the verdict about them.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import WorkbenchError
from .container import container_limits
from .pagecache import residency
from .stages import Verdict, verdict

__all__ = ["bottleneck"]


def bottleneck(source: Any) -> Verdict:
    """Why a loader is slow, or that it is not: input- or compute-bound, the stage that
    dominates each batch, the measured evidence and the change that moves it.

    Parameters
    ----------
    source : Loader or Monitor
        A loader that delivered batches (its last 200 count), or a :class:`Monitor` watching
        one.

    Returns
    -------
    Verdict
        ``bound``, ``stage``, ``share``, ``evidence``, ``advice``, ``change`` (options for
        ``loader.reconfigure(**change)``; empty where the fix is outside the loader) and
        ``note`` (what was not measured).

    Examples
    --------
    >>> dl = wb.loader(wb.open_dataset({"x": np.ones((4096, 64), "float32")}), batch_size=256)
    >>> for batch in dl: __import__("time").sleep(0.02)  # a 20 ms step: data is always there
    >>> bottleneck(dl).bound
    'compute'
    """
    dl = source if hasattr(source, "stages") else source.loader
    cfg, where = dl.config, getattr(dl.dataset, "where", None)
    remote = isinstance(where, str) and "://" in where
    return verdict(
        dl.stages.means(),
        workers=cfg.num_workers,
        worker_type=cfg.worker_type,
        cores=container_limits().cores,
        batch_rows=cfg.batch_size,
        resident=None if remote else _coldest(dl.stages.resident, resident(where)),
        remote=remote,
        note="" if dl.stages.device_records() else device_note(),
    )


def resident(where: Any) -> float | None:
    """The page-cache fraction of the files at ``where`` (a dataset's path), or None where it is
    not a local path (a dataset in memory) or the kernel cannot say."""
    if not isinstance(where, (str, os.PathLike)) or not os.path.exists(where):
        return None
    try:
        return residency(where).fraction
    except (WorkbenchError, OSError):
        return None


def _coldest(*fractions: float | None) -> float | None:
    """The lowest known fraction: a run that read cold pages warmed them as it went."""
    known = [f for f in fractions if f is not None]
    return min(known) if known else None


def device_note() -> str:
    """Why the copy to the device was not measured."""
    import torch

    if not torch.cuda.is_available():
        return "no GPU: host-to-device not measured"
    return "host-to-device not measured: iterate wb.to_device(loader, 'cuda') to time it"
