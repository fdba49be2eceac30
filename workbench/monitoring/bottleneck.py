"""``wb.bottleneck``: the verdict (:func:`workbench.monitoring.stages.verdict`) on the batches a
loader delivered last, with its readers, its batch size and the cores the container gives us.

The loader times each batch's stages as it delivers it (``loader.stages``, a
:class:`~workbench.monitoring.stages.StageWindow`); this asks the verdict about them.
"""

from __future__ import annotations

from typing import Any

from .container import container_limits
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
        ``bound``, ``stage``, ``share``, ``evidence``, ``advice`` and ``change`` (options for
        ``loader.reconfigure(**change)``; empty where the fix is outside the loader).

    Examples
    --------
    >>> dl = wb.loader(wb.open_dataset({"x": np.ones((4096, 64), "float32")}), batch_size=256)
    >>> for batch in dl: __import__("time").sleep(0.02)  # a 20 ms step: data is always there
    >>> wb.bottleneck(dl).bound
    'compute'
    """
    dl = source if hasattr(source, "stages") else source.loader
    cfg = dl.config
    return verdict(
        dl.stages.means(),
        workers=cfg.num_workers,
        worker_type=cfg.worker_type,
        cores=container_limits().cores,
        batch_rows=cfg.batch_size,
    )
