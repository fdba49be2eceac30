"""The only importer of ``distributed``: a local cluster bound to loopback, and shard jobs run on
any cluster with a bounded number in flight.

>>> client = local_client(1)
>>> m = wb.convert("demo_data/raw/demo.csv", "demo.store", target="label", sparse={"tokens": 1000},
...                client=client, progress=False)        # shards written by the cluster's workers
>>> m.num_rows; close_client(client)
2000
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import dask

from .errors import InvalidInputError

__all__ = ["close_client", "local_client"]

MAX_IN_FLIGHT_PER_WORKER = 2  # enough to hide scheduling latency, few enough to bound memory


def local_client(
    n_workers: int = 2,
    threads_per_worker: int = 1,
    processes: bool = True,
    dashboard: bool = True,
    profile: bool = False,
    **kwargs: Any,
) -> Any:
    """A ``distributed.Client`` on a new LocalCluster; scheduler and dashboard on 127.0.0.1 only.

    With ``dashboard`` (the default) the dashboard has the workbench pages
    (``/individual-workbench-memory`` and others: see :mod:`workbench.dashboard`), which draw
    what a ``wb.Monitor(loader, client=client)`` publishes. ``profile=True`` turns Dask's
    statistical profiler back on (the dashboard's Profile page): it walks every worker
    thread's stack every 10 ms, ~8 % of a pure-Python conversion's CPU on 2 cores here.

    Parameters
    ----------
    n_workers : int, default 2
        Workers in the cluster.
    threads_per_worker : int, default 1
        Threads each worker runs tasks on.
    processes : bool, default True
        Workers as processes (False: threads of this process, which start at once).
    dashboard : bool, default True
        Register the workbench pages on the dashboard and the collector they draw from.
    profile : bool, default False
        Keep Dask's statistical profiler on.
    **kwargs
        More ``distributed.LocalCluster`` arguments (``protocol`` default: ``"tcp://"``).

    Returns
    -------
    distributed.Client
        Close it with :func:`close_client`, which closes its cluster too.

    Examples
    --------
    >>> client = local_client(2)
    >>> len(client.scheduler_info()["workers"]), client.scheduler.address.startswith("tcp://127.0.0.1:")
    (2, True)
    >>> close_client(client)
    """
    from distributed import Client, LocalCluster

    if dashboard:
        from .dashboard import install

        install()  # before the scheduler starts: distributed reads its pages once, at start
    # tcp even in-process: with processes=False distributed picks inproc://, which has no host
    kwargs.setdefault("protocol", "tcp://")
    with dask.config.set(
        {
            "distributed.nanny.pre-spawn-environ": _worker_environ(),
            "distributed.worker.profile.enabled": bool(profile),
        }
    ):
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=threads_per_worker,
            processes=processes,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            **kwargs,
        )
    client = Client(cluster)
    if dashboard:
        from .dashboard import attach

        attach(client)
    return client


def _worker_environ() -> dict[str, Any]:
    """Dask's worker environment without ``MALLOC_TRIM_THRESHOLD_``: setting it turns off glibc's
    adaptive mmap threshold, so every chunk-sized array is mmapped and page-faulted anew (shard
    writing cost ~2x the CPU of the same code in one process, measured: benchmarks/README.md)."""
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


def close_client(client: Any) -> None:
    """Close ``client`` and the cluster it runs on.

    Parameters
    ----------
    client : distributed.Client
        A client, such as one from :func:`local_client`; its ``cluster``, if any, is closed too.

    Examples
    --------
    >>> client = local_client(1, processes=False)    # a thread in this process: starts at once
    >>> close_client(client); client.status
    'closed'
    """
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def run_shard_jobs(
    jobs: Iterable[Any],
    write: Callable[[Any], tuple[int, Any]],
    *,
    client: Any = None,
    workers: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """``write(job)`` for every job as Dask tasks, at most 2 per worker in flight; results in
    completion order. Without ``client``, a local cluster of ``workers`` runs them and closes."""
    own = None
    if client is None:
        client = own = local_client(workers or 2)
    try:
        yield from _run(client, jobs, write)
    finally:
        if own is not None:
            close_client(own)


def check_visible(client: Any, folder: Path) -> None:
    """Every worker of ``client`` must see ``folder`` (the shards it writes go there)."""
    import os

    seen = client.run(os.path.isdir, str(folder))
    blind = sorted(addr for addr, ok in seen.items() if not ok)
    if blind:
        raise InvalidInputError(
            f"{folder}: not visible from Dask worker(s) {', '.join(blind)}; "
            "the destination must be on a file system every worker sees "
            "(a shared folder, the same path on each machine)"
        )


def _run(
    client: Any, jobs: Iterable[Any], write: Callable[[Any], tuple[int, Any]]
) -> Iterator[tuple[int, Any]]:
    from distributed import as_completed, wait

    limit = MAX_IN_FLIGHT_PER_WORKER * max(1, len(client.scheduler_info().get("workers", {})))
    pending = as_completed()
    live: set[Any] = set()
    in_flight = 0
    it = iter(jobs)
    exhausted = False
    checked = False
    try:
        while True:
            while not exhausted and in_flight < limit:
                job = next(it, None)
                if job is None:
                    exhausted = True
                    break
                job.folder = Path(job.folder).absolute()  # a worker's working directory is not ours
                if not checked:
                    check_visible(client, job.folder)
                    checked = True
                job.chunks = list(job.chunks)  # ship the shard's rows to the worker
                fut = client.submit(
                    write, job, pure=False, key=f"workbench-shard-{job.index}-{id(job)}"
                )
                pending.add(fut)
                live.add(fut)
                in_flight += 1
            if in_flight == 0:
                return
            fut = next(pending)
            in_flight -= 1
            live.discard(fut)
            yield fut.result()  # re-raises the task's WorkbenchError here
    except BaseException:
        # let the tasks still running finish: none may write a shard into the staging folder
        # after the conversion aborts and deletes it
        if live:
            wait(list(live))
        raise
