"""The workbench pages of the Dask dashboard: ``/individual-workbench-throughput``,
``/individual-workbench-memory``, ``/individual-workbench-gpu``, ``/individual-workbench-stages``
(where each batch's time goes, and the verdict) and the combined ``/workbench``.

They are listed in the dashboard's "More..." menu and in ``/individual-plots.json``, so the
dask-labextension sidebar in JupyterLab shows them as buttons. A notebook's
:class:`~workbench.monitoring.monitor.Monitor` (or ``wb.watch``) given a ``client`` publishes its
samples to the scheduler, where :class:`~workbench.dashboard.plugin.Collector` keeps them for the
pages.

- ``wb.local_client()`` registers everything;
- with a scheduler of your own: ``dask scheduler --preload workbench.dashboard``. Importing this
  module registers the pages (they must be in distributed's table before the scheduler's web
  server starts); ``dask_setup`` adds the collector.

>>> installed()  # doctest: +NORMALIZE_WHITESPACE
['/individual-workbench-throughput', '/individual-workbench-memory',
 '/individual-workbench-gpu', '/individual-workbench-stages', '/workbench']
"""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import WorkbenchWarning
from .pages import PAGES
from .plugin import NAME, Collector

__all__: list[str] = []


def _applications() -> dict[str, Any] | None:
    """distributed's private table of dashboard pages, or None if it moved."""
    try:
        from distributed.dashboard import scheduler as dashboard
    except ImportError:  # bokeh missing: the dashboard itself is off
        return None
    apps = getattr(dashboard, "applications", None)
    return apps if isinstance(apps, dict) else None


def install() -> bool:
    """Register the pages for every scheduler this process starts from now on.

    Returns False, with a warning, when distributed no longer has its table of pages.
    """
    apps = _applications()
    if apps is None:
        warnings.warn(
            "the workbench pages are not on the Dask dashboard: this distributed has no "
            "distributed.dashboard.scheduler.applications (or bokeh is missing); "
            "wb.watch(loader) shows the same charts in the notebook",
            WorkbenchWarning,
            stacklevel=2,
        )
        return False
    for path, doc_fn in PAGES.items():
        apps.setdefault(path, doc_fn)
    return True


def installed() -> list[str]:
    """The workbench pages registered in this process."""
    apps = _applications() or {}
    return [path for path in PAGES if apps.get(path) is PAGES[path]]


def attach(client: Any) -> None:
    """Add the collector to ``client``'s scheduler (idempotent), which puts the worker plugin
    on every worker."""
    client.register_plugin(Collector(), name=NAME)


def dask_setup(scheduler: Any) -> None:
    """The ``--preload`` hook: the collector on a scheduler started by ``dask scheduler``."""
    scheduler.add_plugin(Collector(), name=NAME, idempotent=True)


install()
