"""The container's limits: the cgroup readers on v2 and v1 trees, and a real child cgroup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from workbench.monitoring.container import ContainerLimits, _controller_dir, container_limits

GIB = 1 << 30


def _tree(tmp_path: Path, cgroup: str, mountinfo: str, files: dict[str, str]) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(textwrap.dedent(cgroup).lstrip())
    (tmp_path / "proc/self/mountinfo").write_text(textwrap.dedent(mountinfo).lstrip())
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def _v2(tmp_path: Path, memory_max: str, cpu_max: str, parent_max: str = "max") -> Path:
    pod = "sys/fs/cgroup/kubepods/pod1"
    return _tree(
        tmp_path,
        "0::/kubepods/pod1/ctr\n",
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        {
            "sys/fs/cgroup/cgroup.procs": "",
            "sys/fs/cgroup/cgroup.controllers": "cpu memory io",
            "sys/fs/cgroup/kubepods/cgroup.procs": "",
            f"{pod}/cgroup.procs": "",
            f"{pod}/memory.max": parent_max,
            f"{pod}/ctr/cgroup.procs": "1\n",
            f"{pod}/ctr/cgroup.controllers": "cpu memory",
            f"{pod}/ctr/memory.max": memory_max,
            f"{pod}/ctr/memory.current": str(GIB),
            f"{pod}/ctr/memory.stat": f"anon 700\nfile 900\ninactive_file {GIB // 4}\n",
            f"{pod}/ctr/cpu.max": cpu_max,
        },
    )


def test_v2_limit_working_set_and_quota(tmp_path):
    lim = container_limits(_v2(tmp_path, str(4 * GIB), "150000 100000"))
    assert lim.source == "cgroup v2"
    assert lim.memory_limit == 4 * GIB
    assert lim.memory_used == GIB - GIB // 4  # inactive page cache is reclaimable
    assert lim.available == min(lim.host_available, 4 * GIB - lim.memory_used)
    assert lim.cpu_quota == 1.5 and lim.cores == min(2, lim.cpus)
    assert lim.total == 4 * GIB
    assert "limit 4.0 GiB, cgroup v2" in lim.describe() and "quota 1.5" in lim.describe()


def test_v2_the_tightest_limit_up_the_tree_counts(tmp_path):
    lim = container_limits(_v2(tmp_path, "max", "max 100000", parent_max=str(2 * GIB)))
    assert lim.memory_limit == 2 * GIB  # the pod's limit binds its container
    assert lim.cpu_quota is None and lim.cores == lim.cpus


def test_v2_unlimited_reads_as_the_host(tmp_path):
    lim = container_limits(_v2(tmp_path, "max", "max"))
    assert lim.memory_limit is None
    assert lim.available == lim.host_available and lim.total == lim.host_total
    assert lim.describe().startswith("no memory limit")


def _v1(tmp_path: Path, limit: int, quota: str, period: str = "100000") -> Path:
    mem = "sys/fs/cgroup/memory/docker/abc"
    return _tree(
        tmp_path,
        """
        12:pids:/docker/abc
        4:memory:/docker/abc
        2:cpu,cpuacct:/docker/abc
        0::/
        """,
        """
        31 23 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
        35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
        33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
        40 31 0:35 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
        """,
        {
            "sys/fs/cgroup/memory/cgroup.procs": "",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
            "sys/fs/cgroup/memory/docker/cgroup.procs": "",
            f"{mem}/cgroup.procs": "1\n",
            f"{mem}/memory.limit_in_bytes": str(limit),
            f"{mem}/memory.usage_in_bytes": str(3 * GIB // 2),
            f"{mem}/memory.stat": f"cache 10\ntotal_inactive_file {GIB // 2}\n"
            f"hierarchical_memory_limit {limit}\n",
            "sys/fs/cgroup/unified/cgroup.procs": "",
            "sys/fs/cgroup/unified/cgroup.controllers": "",
            "sys/fs/cgroup/cpu,cpuacct/cgroup.procs": "",
            "sys/fs/cgroup/cpu,cpuacct/docker/cgroup.procs": "",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cgroup.procs": "1\n",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": quota,
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": period,
        },
    )


def test_v1_limit_working_set_and_quota(tmp_path):
    lim = container_limits(_v1(tmp_path, 4 * GIB, "50000"))
    assert lim.source == "cgroup v1"  # the empty v2 hierarchy of a hybrid host is passed over
    assert lim.memory_limit == 4 * GIB and lim.memory_used == GIB
    assert lim.cpu_quota == 0.5 and lim.cores == 1


def test_v1_no_quota_and_the_page_counter_max_mean_unlimited(tmp_path):
    lim = container_limits(_v1(tmp_path, 9223372036854771712, "-1"))
    assert lim.memory_limit is None and lim.cpu_quota is None
    assert lim.available == lim.host_available


def test_a_namespaced_mount_is_the_cgroup_itself(tmp_path):
    root = _tree(
        tmp_path,
        "0::/\n",
        "30 23 0:26 /kubepods/pod1/ctr /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        {
            "sys/fs/cgroup/cgroup.procs": "1\n",
            "sys/fs/cgroup/cgroup.controllers": "memory",
            "sys/fs/cgroup/memory.max": str(GIB),
            "sys/fs/cgroup/memory.current": str(GIB // 8),
        },
    )
    lim = container_limits(root)
    assert lim.memory_limit == GIB and lim.memory_used == GIB // 8


def test_no_cgroup_files_means_the_host(tmp_path):
    lim = container_limits(_tree(tmp_path, "", "", {}))
    assert lim.source == "host" and lim.memory_limit is None and lim.memory_used is None


def test_the_limits_are_plain_values():
    lim = container_limits()
    assert isinstance(lim, ContainerLimits) and 1 <= lim.cores <= (os.cpu_count() or 1)
    assert 0 < lim.available <= lim.total


def _child_cgroup() -> tuple[Path, int] | str:
    """A fresh child of this process's memory cgroup, or why none can be made here."""
    if os.geteuid() != 0:
        return "not root: cannot make a child cgroup"
    d, version = _controller_dir(Path("/"), "memory")
    if d is None:
        return "no memory cgroup controller is mounted"
    child = d / f"wbtest-{uuid.uuid4().hex[:8]}"
    try:
        child.mkdir()
    except OSError as e:
        return f"cannot make a child cgroup under {d}: {e}"
    return child, version


@pytest.fixture
def gib_cgroup():
    made = _child_cgroup()
    if isinstance(made, str):
        pytest.skip(made)  # it runs wherever one can be made, CI included
    child, version = made
    (child / ("memory.max" if version == 2 else "memory.limit_in_bytes")).write_text(str(GIB))
    yield child, version
    for _ in range(50):  # the kernel frees the group once its last process has gone
        try:
            child.rmdir()
            break
        except OSError:
            time.sleep(0.1)


def test_autotune_with_its_default_budget_stays_inside_a_1_gib_cgroup(gib_cgroup, tmp_path):
    child, version = gib_cgroup
    script = """
import json, numpy as np, workbench as wb
from workbench.monitoring.container import container_limits
from workbench.tuning.budget import budget_bytes
lim = container_limits()
ds = wb.open_dataset({"x": np.ones((200_000, 256), np.float32), "y": np.arange(200_000)})
res = wb.autotune(ds, time_budget_s=8)
print(json.dumps({"limit": lim.memory_limit, "budget": budget_bytes(None),
                  "describe": lim.describe()}))
"""
    procs = child / "cgroup.procs"
    out = subprocess.run(
        ["sh", "-c", f'echo $$ > {procs} && exec "$0" -c "$1"', sys.executable, script],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, f"killed or failed ({out.returncode}): {out.stderr[-2000:]}"
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["limit"] == GIB, got
    assert got["budget"] <= GIB // 2, got  # half of what the cgroup leaves, not of the host
    peak_file = "memory.peak" if version == 2 else "memory.max_usage_in_bytes"
    if (child / peak_file).exists():
        assert int((child / peak_file).read_text()) <= GIB
    failcnt = child / "memory.failcnt"
    if failcnt.exists():
        assert int(failcnt.read_text()) == 0, "the cgroup hit its limit"


def test_the_monitor_reports_the_containers_memory_not_the_hosts():
    from workbench.monitoring.monitor import Monitor

    machine = Monitor().sample()["machine"]
    lim = container_limits()
    assert machine["total_bytes"] == lim.total and machine["memory_limit_bytes"] == lim.memory_limit
    # the used figure moves between two reads; the limit and the cores do not
    assert machine["limits"].split(" (")[0] == lim.describe().split(" (")[0]
    assert machine["limits"].split(";")[1] == lim.describe().split(";")[1]
    assert 0 < machine["available_bytes"] <= lim.total


def test_a_cpu_quota_of_one_core_caps_the_default_worker_processes():
    """In a real child cgroup with cpu.cfs_quota_us = period (v1) or cpu.max "100000 100000"
    (v2): one core; the loader's automatic process workers for a transform drop from 2 to 1."""
    if os.geteuid() != 0:
        pytest.skip("not root: cannot make a child cgroup")
    d, version = _controller_dir(Path("/"), "cpu")
    if d is None:
        pytest.skip("no cpu cgroup controller is mounted")
    child = d / f"wbtest-{uuid.uuid4().hex[:8]}"
    try:
        child.mkdir()
    except OSError as e:
        pytest.skip(f"cannot make a child cgroup under {d}: {e}")
    try:
        if version == 2:
            (child / "cpu.max").write_text("100000 100000")
        else:
            (child / "cpu.cfs_period_us").write_text("100000")
            (child / "cpu.cfs_quota_us").write_text("100000")
        script = (
            "import json, numpy as np, workbench as wb\n"
            "from workbench.monitoring.container import container_limits\n"
            "dl = wb.loader(wb.open_dataset({'x': np.ones((64, 4), 'float32')}),\n"
            "               transform=lambda b: b)\n"
            "lim = container_limits()\n"
            "print(json.dumps([lim.cpu_quota, lim.cores, dl.config.num_workers,\n"
            "                  dl.config.worker_type]))\n"
        )
        out = subprocess.run(
            [
                "sh",
                "-c",
                f'echo $$ > {child / "cgroup.procs"} && exec "$0" -c "$1"',
                sys.executable,
                script,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        quota, cores, workers, kind = json.loads(out.stdout.strip().splitlines()[-1])
        assert (quota, cores) == (1.0, 1)
        assert (workers, kind) == (1, "process")
    finally:
        for _ in range(50):
            try:
                child.rmdir()
                break
            except OSError:
                time.sleep(0.1)
