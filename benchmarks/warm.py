"""wb.warm against one POSIX_FADV_WILLNEED over the whole file, on a real disk.

    .venv/bin/python benchmarks/warm.py --gib 1          # writes bench_data/warm-1.bin once

Each round evicts the file, then either gives the one advice (and waits --settle seconds, as a
caller that trusts it would) or calls ``wb.warm``; the resident fraction is read with mincore.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import workbench as wb

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gib", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0, help="seconds the one advice is given")
    a = ap.parse_args()
    path = ROOT / "bench_data" / f"warm-{a.gib:g}.bin"
    size = int(a.gib * (1 << 30))
    if not path.exists() or path.stat().st_size != size:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
    once, ours, secs = [], [], []
    for _ in range(a.rounds):
        wb.evict(path)
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        os.close(fd)
        time.sleep(a.settle)
        once.append(wb.residency(path).fraction)
        wb.evict(path)
        got = wb.warm(path)
        ours.append(wb.residency(path).fraction)
        secs.append(got.seconds)
    print(f"{path} ({size / 2**30:.2f} GiB), {a.rounds} rounds, medians:")
    print(f"  one WILLNEED, {a.settle:g} s later: {statistics.median(once):.1%} resident")
    print(f"  wb.warm: {statistics.median(ours):.1%} resident, {statistics.median(secs):.2f} s")


if __name__ == "__main__":
    main()
