"""Before/after of ``benchmarks/loaders.py`` between two commits, interleaved in rounds.

    .venv/bin/python benchmarks/ab.py --base dea86c3 --rounds 5 -- --gib 0.25 --seconds 1 \\
        --skip-peers --skip-hf --only ours

The base commit is checked out once as a git worktree under ``bench_data/ab-<rev>`` (its compiled
gather copied from this tree when ``_take.c`` is unchanged, built otherwise). Each round runs the
base tree's and this tree's (or ``--after``'s) ``loaders.py`` in fresh processes, alternating
which goes first, so the machine's drift lands on both. Each tree writes its own copy of the data.
Per table row the
report gives the median of the per-round ratios after/before and their quartiles; a row whose
lower quartile is under 0.95 and whose upper quartile is under 1.0 reads as slower.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAKE = Path("workbench/datasets")
ROW = re.compile(
    r"^\| (?P<name>[^|]+) \| (?P<order>[^|]+) \| (?P<workers>[^|]+) \| (?P<batch>\d+) "
    r"\| (?P<sps>[\d,]+) \|"
)


def base_tree(rev: str) -> Path:
    """A worktree of ``rev`` with its compiled gather in place."""
    sha = subprocess.check_output(["git", "rev-parse", "--short", rev], cwd=ROOT, text=True).strip()
    tree = ROOT / "bench_data" / f"ab-{sha}"
    if not tree.exists():
        subprocess.check_call(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT)
    if not list((tree / TAKE).glob("_take*.so")):
        same = (tree / TAKE / "_take.c").read_bytes() == (ROOT / TAKE / "_take.c").read_bytes()
        built = list((ROOT / TAKE).glob("_take*.so"))
        if same and built:
            shutil.copy2(built[0], tree / TAKE)
        else:
            subprocess.check_call([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=tree)
    return tree


def run(tree: Path, args: list[str]) -> dict[tuple[str, ...], float]:
    """One run of ``tree``'s loaders.py: samples/s per table row."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / "loaders.py"), *args],
        cwd=tree,
        env=env,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    rows: dict[tuple[str, ...], float] = {}
    for line in out.splitlines():
        m = ROW.match(line)
        if m:
            key = tuple(m[k].strip() for k in ("name", "order", "workers", "batch"))
            rows[key] = float(m["sps"].replace(",", ""))
    return rows


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="the commit to compare against")
    ap.add_argument("--after", default="", help="a commit to measure instead of this tree")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("loaders_args", nargs=argparse.REMAINDER, help="after --: loaders.py's options")
    a = ap.parse_args(argv)
    extra = [x for x in a.loaders_args if x != "--"]
    trees = {"before": base_tree(a.base), "after": base_tree(a.after) if a.after else ROOT}
    got: dict[str, list[dict[tuple[str, ...], float]]] = {"before": [], "after": []}
    for i in range(a.rounds):
        for side in ("before", "after") if i % 2 == 0 else ("after", "before"):
            got[side].append(run(trees[side], extra))
            print(f"round {i + 1}/{a.rounds}: {side} done", flush=True)
    keys = [k for k in got["after"][0] if all(k in r for r in got["before"] + got["after"])]
    print(
        f"\n`benchmarks/ab.py --base {a.base} --rounds {a.rounds} -- {' '.join(extra)}`: "
        f"{os.cpu_count()} cores\n"
    )
    # each tree reads its own copy of the data: the memcpy limit's own ratio in the same round
    # says how much of a row's ratio is the copy, not the code
    ref = next((k for k in keys if k[0].startswith("limit: memcpy")), None)
    raw = ROOT / "bench_data" / f"ab-{a.base}-{a.after or 'tree'}.json"
    raw.write_text(
        json.dumps(
            {
                side: [{" | ".join(k): v for k, v in r.items()} for r in runs]
                for side, runs in got.items()
            },
            indent=1,
        )
    )
    print(
        "| contender | order | workers | batch | before samples/s | after samples/s "
        "| after ÷ before, median | quartiles | ÷ memcpy's ratio, median |"
    )
    print("|" + "---|" * 9)
    for k in keys:
        before = [r[k] for r in got["before"]]
        after = [r[k] for r in got["after"]]
        ratios = [x / y for x, y in zip(after, before) if y]
        lo, med, hi = quartiles(ratios)
        norm = ""
        if ref is not None:
            lim = [r[ref] / b[ref] for r, b in zip(got["after"], got["before"])]
            norm = f"{statistics.median(x / y for x, y in zip(ratios, lim)):.2f}"
        print(
            f"| {' | '.join(k)} | {statistics.median(before):,.0f} "
            f"| {statistics.median(after):,.0f}"
            f" | {med:.2f} | {lo:.2f}-{hi:.2f} | {norm} |"
        )
    print(f"\nper-round figures: {raw}")


if __name__ == "__main__":
    main()
