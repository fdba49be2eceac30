"""``local_client``: every mode starts, listens on loopback only, and reports a link that opens."""

from __future__ import annotations

import os
import urllib.request

import psutil
import pytest

import workbench as wb


def _listening() -> set[tuple[str, int]]:
    me = psutil.Process()
    out = set()
    for p in [me, *me.children(recursive=True)]:
        for conn in p.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                out.add((conn.laddr.ip, conn.laddr.port))
    return out


@pytest.mark.parametrize("processes", [True, False])
def test_every_mode_starts_on_loopback_with_a_live_dashboard_link(processes):
    before = _listening()
    client = wb.local_client(1, processes=processes)
    try:
        assert len(client.scheduler_info()["workers"]) == 1
        assert client.submit(os.getpid).result() != os.getpid() or not processes
        opened = _listening() - before
        assert opened, "the cluster listens somewhere"
        assert all(ip == "127.0.0.1" for ip, _ in opened), opened
        assert client.dashboard_link.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(client.dashboard_link, timeout=10) as page:
            assert page.status == 200
    finally:
        wb.close_client(client)
    assert client.status == "closed"
