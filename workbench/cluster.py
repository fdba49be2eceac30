"""The only importer of ``distributed``: a local cluster bound to loopback."""

from __future__ import annotations

from typing import Any


def local_client(n_workers: int = 2, threads_per_worker: int = 1, processes: bool = True,
                 **kwargs: Any) -> Any:
    """A ``distributed.Client`` on a new LocalCluster; scheduler and dashboard on 127.0.0.1 only.

    >>> client = local_client(2)
    >>> client.dashboard_link
    """
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                           processes=processes, host="127.0.0.1",
                           dashboard_address="127.0.0.1:0", **kwargs)
    return Client(cluster)


def close_client(client: Any) -> None:
    """Close ``client`` and the cluster it runs on."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()
