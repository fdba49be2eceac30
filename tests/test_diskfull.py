"""A full disk, for real: each case runs in a private mount namespace (``unshare -m``, as root)
on a small tmpfs, in a child that prints what it saw as JSON. Conversion raises DiskFullError
naming the sizes and leaves the committed version readable and no temp files; the shard cache
evicts what it is done with, or raises DiskFullError, and leaves no half-written shard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import json, os, sys
from pathlib import Path
import numpy as np
import workbench as wb
from workbench.errors import DiskFullError
MNT = Path(sys.argv[1])

def debris(root):
    return sorted(
        str(p.relative_to(root)) for p in Path(root).rglob("*")
        if p.name.endswith((".partial", ".tmp", ".part")) or ".part" in p.name
    )

def free():
    st = os.statvfs(MNT)
    return st.f_bavail * st.f_frsize
"""


def _unshare_ok() -> str | None:
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs in a private mount namespace"
    if shutil.which("unshare") is None:
        return "util-linux unshare is not installed"
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -m failed here: {probe.stderr.strip()}"
    return None


def in_tmpfs(tmp_path: Path, size: str, body: str) -> dict:
    """Run ``body`` (after PRELUDE) in a child whose ``MNT`` is a fresh tmpfs of ``size``;
    returns the JSON it printed last."""
    why = _unshare_ok()
    if why:
        pytest.skip(why)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = tmp_path / "case.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    cmd = f"mount -t tmpfs -o size={size} tmpfs {mnt} && exec {sys.executable} {script} {mnt}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        ["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, env=env, timeout=300
    )
    if run.returncode != 0 and "mount" in run.stderr and "tmpfs" in run.stderr:
        pytest.skip(f"cannot mount a tmpfs: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_conversion_that_cannot_fit_is_refused_before_it_writes(tmp_path):
    """8 MiB of known size into a 4 MiB tmpfs, over an earlier small version: refused up front
    with the sizes, the old version intact, nothing written."""
    out = in_tmpfs(
        tmp_path,
        "4m",
        """
        d = MNT / "d.store"
        old = np.arange(4000, dtype="float32").reshape(1000, 4)
        wb.convert(old, d, progress=False)
        before = free()
        r = {}
        try:
            wb.convert(np.ones((2048, 1024), "float32"), d, overwrite=True, progress=False)
        except DiskFullError as e:
            r["error"], r["oserror"] = str(e), isinstance(e, OSError)
        ds = wb.open_dataset(d)
        r["old_ok"] = bool(np.array_equal(ds.read_chunk(0, len(ds))["x"], old))
        r["debris"], r["free_lost"], r["names"] = debris(d), before - free(), sorted(os.listdir(d))
        print(json.dumps(r))
        """,
    )
    assert out.get("oserror") is True, out
    msg = out["error"]
    assert str(tmp_path / "mnt" / "d.store") in msg and "nothing was written" in msg, msg
    need = int(msg.split("needs about ")[1].split(" bytes")[0].replace(",", ""))
    assert need >= 8 << 20, msg
    assert "MiB) free" in msg and "bigger disk" in msg, msg
    assert out["old_ok"] and out["debris"] == [] and out["free_lost"] == 0, out
    assert out["names"][0] == "CURRENT" and len(out["names"]) == 2, out


@pytest.mark.parametrize("layout", ["store", "parquet", "hdf5"])
def test_a_disk_that_fills_up_mid_conversion_raises_and_leaves_the_old_version(tmp_path, layout):
    """A stream of unknown length (~8 MiB) into a 4 MiB tmpfs: the writes meet ENOSPC (HDF5:
    the writer's own room check, as HDF5 cannot recover from one); DiskFullError names the
    sizes, every partial file is closed and removed (the free space comes back whole)."""
    out = in_tmpfs(
        tmp_path,
        "4m",
        f"""
        d = MNT / "d.ds"
        old = np.arange(4000, dtype="float32").reshape(1000, 4)
        wb.convert(old, d, format={layout!r}, progress=False)
        before = free()

        def rows():
            for i in range(32):
                yield {{"x": np.full((1024, 64), i, "float32")}}

        r = {{}}
        try:
            wb.convert(rows(), d, format={layout!r}, overwrite=True, progress=False,
                       shard_bytes=1 << 20)
            r["error"] = None
        except DiskFullError as e:
            r["error"], r["cause"] = str(e), type(e.__cause__).__name__
            r["free_lost"] = before - free()  # while the error (and its traceback) lives
        ds = wb.open_dataset(d)
        r["old_ok"] = bool(np.array_equal(ds.read_chunk(0, len(ds))["x"], old))
        r["debris"], r["names"] = debris(d), sorted(os.listdir(d))
        print(json.dumps(r))
        """,
    )
    msg = out["error"]
    assert msg is not None, "an 8 MiB conversion fit in a 4 MiB tmpfs?"
    assert str(tmp_path / "mnt" / "d.ds") in msg and "filled up" in msg, msg
    assert "bytes" in msg and "are free there" in msg and "Nothing was committed" in msg, msg
    assert out["cause"] in ("OSError", "DiskFullError"), out
    assert out["old_ok"] and out["debris"] == [], out
    assert out["free_lost"] == 0, f"{out['free_lost']:,} bytes still held by partial files"
    assert len(out["names"]) == 2, out  # CURRENT and the old version


def test_a_small_file_written_atomically_onto_a_full_disk_leaves_no_temp_file(tmp_path):
    out = in_tmpfs(
        tmp_path,
        "1m",
        """
        from workbench.format.files import no_space, write_atomic
        p = MNT / "CURRENT"
        p.write_text("v-old\\n")
        fd = os.open(MNT / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\\0" * 4096)
        except OSError:
            os.close(fd)
        r = {}
        try:
            write_atomic(p, "v-new\\n" * 2000, durable=True)
        except OSError as e:
            r["full"] = no_space(e)
        r["text"], r["names"] = p.read_text(), sorted(os.listdir(MNT))
        print(json.dumps(r))
        """,
    )
    assert out == {"full": True, "text": "v-old\n", "names": ["CURRENT", "filler"]}, out


CACHE = """
src = Path(sys.argv[1]).parent / "src.store"  # the "remote": on the real disk
rows = {rows}
wb.convert(np.ones((rows, 256), "float32") * np.arange(rows, dtype="float32")[:, None], src,
           shard_bytes={shard_bytes}, progress=False)
ds = wb.open_dataset("file://" + str(src), cache_dir=MNT / "cache", cache_bytes=1 << 30)
r = {{"shards": len(ds.manifest.shards)}}
import time
t0 = time.perf_counter()
try:
    for a in range(0, rows, 256):
        got = ds.read_chunk(a, min(rows, a + 256))["x"]
        assert (got[:, 0] == np.arange(a, min(rows, a + 256))).all()
    r["error"] = None
except DiskFullError as e:
    r["error"] = str(e)
r["seconds"] = time.perf_counter() - t0
r["fetches"], r["held"] = ds.cache.fetches, len(ds.cache._held)
r["debris"] = debris(MNT)
r["files"] = sorted(str(p.relative_to(MNT)) for p in MNT.rglob("*") if p.is_file())
print(json.dumps(r))
"""


def test_the_shard_cache_on_a_full_disk_evicts_the_shards_it_is_done_with(tmp_path):
    """Eight 256 KiB shards, a cache_bytes of 1 GiB, but a 1 MiB disk: each shard that finds the
    disk full evicts those already read and is fetched again; every row reads right."""
    out = in_tmpfs(tmp_path, "1m", CACHE.format(rows=2048, shard_bytes=256 << 10))
    assert out["error"] is None, out["error"]
    assert out["shards"] == 8 and out["fetches"] == 8, out
    assert out["held"] < 4, out  # some were evicted: the disk holds fewer than 4
    assert out["debris"] == [], out


def test_a_shard_bigger_than_the_cache_disk_raises_disk_full_and_leaves_no_part_file(tmp_path):
    out = in_tmpfs(tmp_path, "1m", CACHE.format(rows=2048, shard_bytes=4 << 20))
    msg = out["error"]
    assert msg is not None, "a 2 MiB shard fit on a 1 MiB disk?"
    assert str(tmp_path / "mnt" / "cache") in msg and "shard 0" in msg, msg
    assert "2,097," in msg and "are free" in msg and "cache_dir=" in msg, msg
    assert out["debris"] == [] and out["files"] == [] and out["held"] == 0, out
    assert out["seconds"] < 1.0, out  # not retried with backoff: the disk is ours, not the server's


def test_a_disk_that_fills_up_at_commit_raises_and_leaves_the_old_version(tmp_path):
    """Every shard is written, then another writer takes the last free byte before the commit
    writes its manifest: DiskFullError, the old version still current, no partial folder left."""
    out = in_tmpfs(
        tmp_path,
        "8m",
        """
        d = MNT / "d.store"
        old = np.arange(4000, dtype="float32").reshape(1000, 4)
        wb.convert(old, d, progress=False)

        def rows():
            for i in range(4):
                yield {"x": np.full((1024, 64), i, "float32")}
            import time
            t0 = time.monotonic()  # read ahead on a thread: wait for the writer to catch up
            while len(list(d.glob("*.partial/*/x.npy"))) < 4 and time.monotonic() - t0 < 30:
                time.sleep(0.01)
            fd = os.open(MNT / "filler", os.O_WRONLY | os.O_CREAT)  # the shards are written
            try:
                while True:  # take every byte left
                    os.write(fd, b"\\0" * 4096)
            except OSError:
                os.close(fd)

        r = {}
        try:
            wb.convert(rows(), d, overwrite=True, progress=False, shard_bytes=256 << 10,
                       chunk_rows=1024)
            r["error"] = None
        except DiskFullError as e:
            r["error"] = str(e)
        r["free_after"] = free()
        ds = wb.open_dataset(d)
        r["old_ok"] = bool(np.array_equal(ds.read_chunk(0, len(ds))["x"], old))
        r["debris"], r["names"] = debris(d), sorted(os.listdir(d))
        print(json.dumps(r))
        """,
    )
    msg = out["error"]
    assert msg is not None, "the commit found room on a full disk?"
    assert str(tmp_path / "mnt" / "d.store") in msg and "Nothing was committed" in msg, msg
    assert "1,049,088 bytes (1.0 MiB) of finished shards and about 0 bytes" in msg, msg  # all 4
    assert out["free_after"] >= 1 << 20, out  # the finished shards were removed
    assert out["old_ok"] and out["debris"] == [], out
    assert len(out["names"]) == 2, out  # CURRENT and the old version


def test_a_disk_that_fills_up_under_dask_workers_raises_disk_full_in_the_client(tmp_path):
    """The shards are written by two Dask worker processes while another writer fills the disk
    (the room check up front passed): their ENOSPC reaches the caller as DiskFullError, not a
    worker's wrapped error, and the old version stays current with nothing half-written."""
    out = in_tmpfs(
        tmp_path,
        "12m",
        """
        import threading, time

        def fill(d, stop):
            while not list(d.glob("*.partial")) and not stop.is_set():
                time.sleep(0.005)
            fd = os.open(MNT / "filler", os.O_WRONLY | os.O_CREAT)
            for size in (1 << 20, 4096):  # fast, then to the last page
                try:
                    while True:
                        os.write(fd, b"\\0" * size)
                except OSError:
                    pass
            os.close(fd)

        def main():
            d = MNT / "d.store"
            old = np.arange(4000, dtype="float32").reshape(1000, 4)
            wb.convert(old, d, progress=False)
            src = Path(sys.argv[1]).parent / "big.npy"  # on the real disk: the workers read it
            np.save(src, np.ones((8192, 256), "float32"))  # 8 MiB: fits the 12 MiB disk
            client = wb.local_client(2, processes=True)
            stop = threading.Event()
            filler = threading.Thread(target=fill, args=(d, stop), daemon=True)
            filler.start()
            r = {}
            try:
                wb.convert(str(src), d, overwrite=True, progress=False, shard_bytes=1 << 20,
                           client=client)
                r["error"] = None
            except Exception as e:
                r["error"], r["type"] = str(e), type(e).__name__
            finally:
                stop.set()
                wb.close_client(client)
            ds = wb.open_dataset(d)
            r["old_ok"] = bool(np.array_equal(ds.read_chunk(0, len(ds))["x"], old))
            r["debris"] = debris(d)
            r["names"] = sorted(n for n in os.listdir(d))
            print(json.dumps(r))

        if __name__ == "__main__":  # the Dask workers are spawned: they import this file
            main()
        """,
    )
    assert out["type"] == "DiskFullError", out
    assert str(tmp_path / "mnt" / "d.store") in out["error"], out
    assert out["old_ok"] and out["debris"] == [], out
    assert len(out["names"]) == 2, out  # CURRENT and the old version
