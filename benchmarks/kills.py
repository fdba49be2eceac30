"""A conversion SIGKILLed at 100 random instants per layout leaves the old dataset or the new one.

    .venv/bin/python benchmarks/kills.py --kills 100          # ~3 minutes on 2 cores

tests/test_commit.py kills 12 times per layout at random and once at every file-system write
boundary; this raises the random kills to ``--kills`` per layout, and after every kill checks the
destination opens as exactly the old rows or exactly the new ones (``wb.verify`` passes), that a
``resume=True`` conversion then finishes it, and that no staging folder is left once it has.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

import workbench as wb
from workbench.errors import DatasetNotFoundError

OLD = np.repeat(np.arange(3000, dtype="float32")[:, None], 4, axis=1)
NEW = OLD + 0.5
KW = dict(shard_bytes=16 * 400, chunk_rows=200, progress=False)


def state(dest: Path) -> str:
    try:
        x = wb.open_dataset(dest).get_batch(range(len(OLD)))["x"].numpy()
    except DatasetNotFoundError:
        return "none"
    wb.verify(dest)
    if np.array_equal(x, OLD):
        return "old"
    if np.array_equal(x, NEW):
        return "new"
    raise AssertionError(f"{dest}: a dataset opened with mixed or partial rows")


def convert_in_child(src: Path, dest: Path, layout: str, **kw: object) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            wb.convert(src, dest, format=layout, overwrite=True, **KW, **kw)
        finally:
            os._exit(0)
    return pid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    for layout in ("store", "hdf5", "parquet"):
        with tempfile.TemporaryDirectory() as tmp:
            src, dest = Path(tmp) / "new.npy", Path(tmp) / "d"
            np.save(src, NEW)
            wb.convert(OLD, dest, format=layout, **KW)
            t0 = time.perf_counter()
            os.waitpid(convert_in_child(src, Path(tmp) / "probe", layout), 0)
            full = time.perf_counter() - t0
            seen: Counter[str] = Counter()
            t0 = time.perf_counter()
            for _ in range(a.kills):
                pid = convert_in_child(src, dest, layout)
                time.sleep(rng.uniform(0, full * 1.2))
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                got = state(dest)
                seen[got] += 1
                if got == "old":  # a resumed conversion finishes what the killed one began
                    os.waitpid(convert_in_child(src, dest, layout, resume=True), 0)
                    assert state(dest) == "new", f"{layout}: resume did not finish"
                    left = [p.name for p in dest.iterdir() if p.name.endswith(".partial")]
                    assert not left, f"{layout}: staging left after resume: {left}"
                wb.convert(OLD, dest, format=layout, overwrite=True, **KW)
            print(
                f"{layout:8s} {a.kills} kills in {time.perf_counter() - t0:.0f} s: "
                f"{dict(seen)} (one conversion takes {full:.2f} s); every state old or new"
            )


if __name__ == "__main__":
    main()
