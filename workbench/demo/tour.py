"""The main job behind ``workbench demo`` / ``make demo``: generate the built-in demo data,
convert every input format, verify, load, and summarize.

>>> report = run_tour("tour", rows=2000, progress=False, echo=lambda line: None, load_seconds=0.05,
...                   load_mib=2)
>>> [(c.name, c.rows, c.verified) for c in report.conversions]  # doctest: +NORMALIZE_WHITESPACE
[('CSV -> store', 2000, True), ('Parquet -> parquet', 2000, True),
 ('HDF5 -> hdf5', 2000, True), ('NPY -> store', 2000, True)]
>>> report.loading.rows, all(report.loading.ratio(o) > 0 for o in ("sequential", "block", "full"))
(2048, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..conversion.pipeline import convert
from ..format.catalog import read_manifest
from ..format.integrity import verify
from ..format.summary import describe
from ..units import human_bytes
from .data import make_demo

if TYPE_CHECKING:
    from ..bench.limits import OrderComparison

__all__: list[str] = []

LOAD_FEATURES = 256  # float32 columns of the load section's rows: 1 KiB, as the benchmark's


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
    loading: OrderComparison | None = None


def _plan(raw: Any, out: Path) -> list[tuple[str, Any, Path, dict[str, Any]]]:
    tabular = {"target": "label", "sparse": {"tokens": raw.sparse_dim}}
    npy = {"features": str(raw.npy), "label": str(raw.labels_npy)}
    return [
        ("CSV -> store", raw.csv, out / "demo.store", tabular),
        ("Parquet -> parquet", raw.parquet, out / "demo.parquet.ds", tabular),
        ("HDF5 -> hdf5", raw.hdf5, out / "demo.hdf5.ds", {"format": "hdf5", "target": "label"}),
        ("NPY -> store", npy, out / "npy.store", {"target": "label"}),
    ]


def run_tour(
    out: str | Path = "demo_data",
    *,
    rows: int = 20_000,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    load_seconds: float = 0.5,
    load_mib: float = 256,
) -> TourReport:
    """Generate, convert, verify and load the demo data under ``out``; ``echo`` each step.

    The load section runs on its own data, ``load_mib`` MiB of 1 KiB rows (a size where the
    limits mean something), each reader ``load_seconds`` per round (see ``compare_orders``).
    """
    out = Path(out)
    report = TourReport()
    echo(f"== 1. demo data: {rows:,} rows (dense features, integer label, sparse tokens) ==")
    t0 = time.perf_counter()
    raw = make_demo(out / "raw", rows=rows)
    echo(
        f"wrote CSV, NPY, HDF5 and Parquet under {out / 'raw'} in {time.perf_counter() - t0:.1f} s"
    )

    echo("\n== 2. convert each input format (out of core, atomic commit) ==")
    for name, src, dest, kw in _plan(raw, out):
        kw = {"format": "parquet", **kw} if dest.name.endswith(".parquet.ds") else kw
        in_bytes = (
            sum(Path(p).stat().st_size for p in src.values())
            if isinstance(src, dict)
            else Path(src).stat().st_size
        )
        t = time.perf_counter()
        m = convert(src, dest, overwrite=True, progress=progress, **kw)
        seconds = time.perf_counter() - t
        ok = verify(dest).ok
        report.conversions.append(
            Conversion(name, str(src), str(dest), m.num_rows, in_bytes, m.nbytes, seconds, ok)
        )
    echo(f"{'conversion':<20}{'rows':>10}{'in':>11}{'out':>11}{'MB/s':>9}  verify")
    for c in report.conversions:
        echo(
            f"{c.name:<20}{c.rows:>10,}{human_bytes(c.in_bytes):>11}{human_bytes(c.out_bytes):>11}"
            f"{c.mb_per_s:>9.0f}  {'OK' if c.verified else 'FAILED'}"
        )
    first = report.conversions[0]
    echo("\n" + describe(read_manifest(first.dest)[1], first.dest))

    echo("\n== 3. load: each order against its own limit and the seeds' Datasets, one run ==")
    from ..bench.limits import compare_orders  # torch: imported when the load section starts

    store, h5 = _load_data(out, load_mib, echo)
    report.loading = compare_orders(store, hdf5=h5, seconds=load_seconds)
    echo(report.loading.text())
    echo(f"\ndone: datasets under {out}/; open one with workbench.open_dataset('{first.dest}')")
    return report


def _load_data(out: Path, mib: float, echo: Callable[[str], None]) -> tuple[Path, Path]:
    """1 KiB rows (256 float32 features + an int64 label), ``mib`` MiB of features: the seed's
    HDF5 file and a one-shard store converted from it, so every reader reads the same values."""
    rows = max(2048, int(mib * (1 << 20)) // (LOAD_FEATURES * 4))
    t = time.perf_counter()
    raw = make_demo(out / "load", rows=rows, features=LOAD_FEATURES, nnz=0, formats=("hdf5",))
    assert raw.hdf5 is not None
    store = out / "load.store"
    convert(
        raw.hdf5,
        store,
        target="label",
        columns=["features", "label"],
        overwrite=True,
        progress=False,
        shard_bytes=2 * rows * (LOAD_FEATURES * 4 + 8),
    )  # one shard
    echo(
        f"wrote {rows:,} rows of {LOAD_FEATURES} float32 + an int64 label in "
        f"{time.perf_counter() - t:.1f} s:\n  {raw.hdf5} (for the seed's HDF5Dataset) and {store}"
    )
    return store, raw.hdf5
