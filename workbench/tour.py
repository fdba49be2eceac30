"""The main job behind ``workbench demo`` / ``make demo``: generate the built-in demo data,
convert every input format, verify, load, and summarize.

>>> report = run_tour("tour", rows=2000, progress=False, echo=lambda line: None, load_seconds=0.1)
>>> [(c.name, c.rows, c.verified) for c in report.conversions]  # doctest: +NORMALIZE_WHITESPACE
[('CSV -> store', 2000, True), ('Parquet -> parquet', 2000, True),
 ('HDF5 -> hdf5', 2000, True), ('NPY -> store', 2000, True)]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import read_manifest
from .conversion import convert
from .demo import make_demo
from .integrity import verify
from .summary import describe
from .units import human_bytes

__all__: list[str] = []


@dataclass(frozen=True)
class Conversion:
    name: str
    source: str
    dest: str
    rows: int
    in_bytes: int
    out_bytes: int
    seconds: float
    verified: bool

    @property
    def mb_per_s(self) -> float:
        return self.in_bytes / 1e6 / self.seconds


@dataclass
class TourReport:
    conversions: list[Conversion] = field(default_factory=list)
    loading: list[dict[str, Any]] = field(default_factory=list)


def _plan(raw: Any, out: Path) -> list[tuple[str, Any, Path, dict[str, Any]]]:
    tabular = {"target": "label", "sparse": {"tokens": raw.sparse_dim}}
    npy = {"features": str(raw.npy), "label": str(raw.labels_npy)}
    return [
        ("CSV -> store", raw.csv, out / "demo.store", tabular),
        ("Parquet -> parquet", raw.parquet, out / "demo.parquet.ds", tabular),
        ("HDF5 -> hdf5", raw.hdf5, out / "demo.hdf5.ds", {"format": "hdf5", "target": "label"}),
        ("NPY -> store", npy, out / "npy.store", {"target": "label"}),
    ]


def run_tour(out: str | Path = "demo_data", *, rows: int = 20_000, progress: bool = True,
             echo: Callable[[str], None] = print, load_seconds: float = 3.0) -> TourReport:
    """Generate, convert, verify and load the demo data under ``out``; ``echo`` each step."""
    out = Path(out)
    report = TourReport()
    echo(f"== 1. demo data: {rows:,} rows (dense features, integer label, sparse tokens) ==")
    t0 = time.perf_counter()
    raw = make_demo(out / "raw", rows=rows)
    echo(f"wrote CSV, NPY, HDF5 and Parquet under {out / 'raw'} in {time.perf_counter() - t0:.1f} s")

    echo("\n== 2. convert each input format (out of core, atomic commit) ==")
    for name, src, dest, kw in _plan(raw, out):
        kw = {"format": "parquet", **kw} if dest.name.endswith(".parquet.ds") else kw
        in_bytes = (sum(Path(p).stat().st_size for p in src.values()) if isinstance(src, dict)
                    else Path(src).stat().st_size)
        t = time.perf_counter()
        m = convert(src, dest, overwrite=True, progress=progress, **kw)
        seconds = time.perf_counter() - t
        ok = verify(dest).ok
        report.conversions.append(Conversion(name, str(src), str(dest), m.num_rows, in_bytes,
                                             m.nbytes, seconds, ok))
    echo(f"{'conversion':<20}{'rows':>10}{'in':>11}{'out':>11}{'MB/s':>9}  verify")
    for c in report.conversions:
        echo(f"{c.name:<20}{c.rows:>10,}{human_bytes(c.in_bytes):>11}{human_bytes(c.out_bytes):>11}"
             f"{c.mb_per_s:>9.0f}  {'OK' if c.verified else 'FAILED'}")
    first = report.conversions[0]
    echo("\n" + describe(read_manifest(first.dest)[1], first.dest))

    echo("\n== 3. load: batches per second next to this machine's limits ==")
    report.loading = _load(Path(first.dest), load_seconds)
    echo(f"{'reader':<44}{'samples/s':>12}{'MB/s':>9}{'x limit':>9}")
    for r in report.loading:
        echo(f"{r['name']:<44}{r['samples_per_s']:>12,.0f}{r['mb_per_s']:>9,.0f}{r['ratio']:>9.2f}")
    echo(f"\ndone: datasets under {out}/; open one with workbench.open_dataset('{first.dest}')")
    return report


def _load(store: Path, seconds: float) -> list[dict[str, Any]]:
    import numpy as np

    from .datasets import open_dataset
    from .loading import loader
    from .throughput import measure, memcpy_mb_per_s, sequential_mb_per_s

    version, m = read_manifest(store)
    feats = next(f for f in m.shards[0].files if f.column == "features")
    arr = np.load(version / feats.path, mmap_mode="r", allow_pickle=False)
    ds = open_dataset(store, columns=["features", "label"])
    batch = 1024
    seq = sequential_mb_per_s(arr, batch, max_seconds=seconds)
    memcpy = memcpy_mb_per_s()
    rows = [{"name": "limit: zero-copy sequential memmap slices", "samples_per_s": seq.samples_per_s,
             "mb_per_s": seq.mb_per_s, "ratio": 1.0},
            {"name": "limit: memcpy", "samples_per_s": memcpy * 1e6 / ds.row_nbytes,
             "mb_per_s": memcpy, "ratio": 1.0}]
    for order, limit in (("sequential", seq.mb_per_s), ("block", memcpy), ("full", memcpy)):
        with loader(ds, batch_size=batch, shuffle=order) as dl:
            t = measure(_epochs(dl), max_seconds=seconds)
        rows.append({"name": f"workbench.loader shuffle={order!r}", "samples_per_s": t.samples_per_s,
                     "mb_per_s": t.mb_per_s, "ratio": t.mb_per_s / limit if limit else 0.0})
    return rows


def _epochs(dl: Any) -> Any:
    while True:
        yield from dl
