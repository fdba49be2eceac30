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


def test_a_cluster_started_with_the_dask_cli_converts_into_a_relative_destination(
    tmp_path, monkeypatch
):
    """`dask scheduler` / `dask worker` in another working directory: a relative destination still
    means this process's folder, and a folder the workers cannot see is named before any work."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    import numpy as np
    from distributed import Client

    from workbench.cluster import check_visible
    from workbench.errors import InvalidInputError

    elsewhere, here = tmp_path / "elsewhere", tmp_path / "here"
    elsewhere.mkdir()
    here.mkdir()
    file = tmp_path / "scheduler.json"
    dask = str(Path(sys.executable).parent / "dask")
    procs = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--dashboard-address",
                "127.0.0.1:0",
                "--scheduler-file",
                str(file),
            ],
            cwd=elsewhere,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(300):
            if file.exists():
                break
            time.sleep(0.1)
        procs.append(
            subprocess.Popen(
                [
                    dask,
                    "worker",
                    "--scheduler-file",
                    str(file),
                    "--nthreads",
                    "1",
                    "--host",
                    "127.0.0.1",
                    "--dashboard-address",
                    "127.0.0.1:0",
                ],
                cwd=elsewhere,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        monkeypatch.chdir(here)
        x = np.arange(40_000, dtype="float32").reshape(-1, 4)
        np.save(here / "x.npy", x)
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            m = wb.convert("x.npy", "rel.store", shard_bytes=32_000, client=client, progress=False)
            assert len(m.shards) > 1
            assert (here / "rel.store" / "CURRENT").exists() and not (
                elsewhere / "rel.store"
            ).exists()
            got = wb.open_dataset("rel.store").get_batch(range(0, 10_000, 999))["x"].numpy()
            np.testing.assert_array_equal(got, x[::999])
            with pytest.raises(InvalidInputError, match="not visible from Dask worker"):
                check_visible(client, tmp_path / "nowhere")
    finally:
        for p in reversed(procs):
            p.terminate()
            p.wait(30)


def _malloc_env() -> tuple[str | None, str | None]:
    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS")


def test_local_workers_keep_glibcs_adaptive_malloc():
    """Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off glibc's adaptive mmap
    threshold (a shard then costs ~2x the CPU); local_client's workers start without it and keep
    Dask's other settings."""
    client = wb.local_client(1, dashboard=False)
    try:
        assert list(client.run(_malloc_env).values()) == [(None, "1")]
    finally:
        wb.close_client(client)


def _profiling() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


@pytest.mark.parametrize("profile", [False, True])
def test_local_workers_profile_only_when_asked(profile):
    """Dask's profiler walks every worker thread's stack every 10 ms (~8 % of a pure-Python
    conversion's CPU here): off in local_client's workers unless profile=True."""
    client = wb.local_client(1, dashboard=False, profile=profile)
    try:
        assert list(client.run(_profiling).values()) == [profile]
    finally:
        wb.close_client(client)
