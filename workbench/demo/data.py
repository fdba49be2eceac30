"""Built-in synthetic demo data: one tabular dataset written as CSV, NPY, HDF5 and Parquet.

Rows hold ``features`` dense float32 columns (a few informative ones shifted by a per-class
centroid, one correlated copy, the rest noise; every column with its own scale and offset), an
int64 ``label`` and a sparse ``tokens`` column of sorted, unique nonzero indices whose counts
vary around ``nnz`` and whose values lean towards a per-class range. A small model learns it.

Everything is generated and appended ``chunk_rows`` at a time, so memory is bounded by the chunk
size (tens of MiB at the default) and ``rows`` may exceed RAM. At 16 features and nnz=8 a row
takes about 112 bytes as NPY, so a set larger than this machine's 24 GiB of RAM is::

    make_demo("big_demo", rows=250_000_000, formats=("npy",))   # ~28 GB on disk, ~60 MiB RAM

which takes roughly 10 minutes on 2 cores (about 0.45M rows/s for NPY alone; CSV is the slowest
format, all four together run at about 0.1M rows/s). Check free disk space first.

The values depend only on the arguments that shape the data (``rows``, ``features``,
``classes``, ``sparse_dim``, ``nnz``, ``seed``), not on ``chunk_rows``; the file bytes are
identical for identical arguments.

>>> files = make_demo("demo_data", rows=20_000, formats=("npy", "parquet"))
>>> files.npy, files.parquet
(PosixPath('demo_data/features.npy'), PosixPath('demo_data/demo.parquet'))
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from .files import FILES, WRITERS, Writer, partial
from .synthetic import generate

__all__ = ["DemoFiles", "make_demo"]

FORMATS = ("csv", "npy", "hdf5", "parquet")


@dataclass(frozen=True)
class DemoFiles:
    """Where :func:`make_demo` wrote each format (None for formats not asked) and what it holds.

    Parameters
    ----------
    out_dir : pathlib.Path
        The folder written into.
    rows, features, classes, sparse_dim : int
        As :func:`make_demo` was given them.
    nnz_total : int
        Nonzero tokens over all rows.
    csv, npy, hdf5, parquet : pathlib.Path or None
        ``demo.csv``, ``features.npy``, ``demo.h5``, ``demo.parquet``.
    labels_npy, tokens_indptr_npy, tokens_indices_npy : pathlib.Path or None
        The other ``.npy`` files, beside ``features.npy``: the labels and the tokens as CSR.
    feature_names : tuple of str
        The dense columns' names (``f0``, ``f1``, ...).
    """

    out_dir: Path
    rows: int
    features: int
    classes: int
    sparse_dim: int
    nnz_total: int
    csv: Path | None = None
    npy: Path | None = None  # features.npy; the other .npy files sit beside it
    labels_npy: Path | None = None
    tokens_indptr_npy: Path | None = None
    tokens_indices_npy: Path | None = None
    hdf5: Path | None = None
    parquet: Path | None = None
    feature_names: tuple[str, ...] = field(default=())

    @property
    def paths(self) -> list[Path]:
        """Every file written, in a fixed order."""
        found = (
            self.csv,
            self.npy,
            self.labels_npy,
            self.tokens_indptr_npy,
            self.tokens_indices_npy,
            self.hdf5,
            self.parquet,
        )
        return [p for p in found if p is not None]

    @property
    def nbytes(self) -> int:
        """Bytes on disk over all files written."""
        return sum(p.stat().st_size for p in self.paths)

    @property
    def data_nbytes(self) -> int:
        """Bytes of the data itself in memory form: float32 features, int64 labels, CSR tokens."""
        return self.rows * (4 * self.features + 8) + 8 * (self.rows + 1) + 4 * self.nnz_total


def _check(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidInputError(
            f"make_demo: {name}={value!r} is not an integer >= {low}; pass one."
        )


def make_demo(
    out_dir: str | os.PathLike[str],
    rows: int = 20_000,
    features: int = 16,
    classes: int = 4,
    sparse_dim: int = 1000,
    nnz: int = 8,
    formats: Sequence[str] = FORMATS,
    seed: int = 0,
    chunk_rows: int = 65_536,
    progress: Callable[[int, int], None] | None = None,
) -> DemoFiles:
    """Write the demo dataset into ``out_dir`` in each of ``formats``, ``chunk_rows`` at a time.

    Files: ``demo.csv``; ``features.npy``, ``labels.npy``, ``tokens.indptr.npy``,
    ``tokens.indices.npy``; ``demo.h5``; ``demo.parquet``. Each is written under a ``.partial``
    name and renamed when complete, so an interrupted run leaves no file that looks finished.

    Parameters
    ----------
    out_dir : str or PathLike
        The folder to write into (created if missing).
    rows : int, default 20_000
        Rows to write; may exceed RAM.
    features : int, default 16
        Dense float32 columns.
    classes : int, default 4
        Distinct labels (at least 2).
    sparse_dim : int, default 1000
        Width of the sparse ``tokens`` column (below 2**31).
    nnz : int, default 8
        Mean nonzero tokens a row.
    formats : sequence of str, default all
        A non-empty subset of ``("csv", "npy", "hdf5", "parquet")``.
    seed : int, default 0
        Seeds every value.
    chunk_rows : int, default 65_536
        Rows generated and appended at a time (bounds memory; the values do not depend on it).
    progress : callable, optional
        ``progress(rows_done, rows_total)``, called after every chunk.

    Returns
    -------
    DemoFiles
        The paths written and the data's shape.

    Raises
    ------
    InvalidInputError
        An argument that is not an integer in range, or an unknown or empty ``formats``.

    Examples
    --------
    >>> files = make_demo("demo_data", rows=1000, formats=("hdf5",))
    >>> files.hdf5, files.csv, files.rows
    (PosixPath('demo_data/demo.h5'), None, 1000)
    """
    for name, value, low in (
        ("rows", rows, 1),
        ("features", features, 1),
        ("classes", classes, 2),
        ("sparse_dim", sparse_dim, 1),
        ("nnz", nnz, 0),
        ("chunk_rows", chunk_rows, 1),
        ("seed", seed, 0),
    ):
        _check(name, value, low)
    if sparse_dim > np.iinfo(np.int32).max:
        raise InvalidInputError(
            f"make_demo: sparse_dim={sparse_dim} does not fit the int32 "
            "token indices; pass sparse_dim < 2**31."
        )
    formats = tuple(formats)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InvalidInputError(
            f"make_demo: formats={formats!r} must be a non-empty subset of "
            f"{FORMATS}; drop {unknown or 'nothing'} and name at least one."
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = tuple(f"f{j}" for j in range(features))
    formats = tuple(dict.fromkeys(formats))
    paths = {key: out / name for fmt in formats for key, name in FILES[fmt].items()}
    writers: list[Writer] = []
    finished = False
    try:
        for fmt in formats:
            writers.append(WRITERS[fmt](paths, rows, names, sparse_dim))
        done = nnz_total = 0
        for chunk in generate(rows, chunk_rows, seed, features, classes, sparse_dim, nnz):
            for w in writers:
                w.append(chunk)
            done += len(chunk["label"])
            nnz_total += len(chunk["indices"])
            if progress is not None:
                progress(done, rows)
        for w in writers:
            w.close()
        finished = True
    finally:
        if not finished:  # never leave half-written files behind, even on KeyboardInterrupt
            for w in writers:
                w.close()
            for final in paths.values():
                partial(final).unlink(missing_ok=True)
    for final in paths.values():
        os.replace(partial(final), final)
    return DemoFiles(
        out, rows, features, classes, sparse_dim, nnz_total, feature_names=names, **paths
    )
