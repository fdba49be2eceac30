"""What one array's storage is, and what reading it in a given order costs: plain data and
arithmetic, shared by ``wb.inspect``, its text and HTML views and the CLI.

A *read unit* is the smallest piece the storage hands back: an OS page of a memory-mapped
``.npy``, an HDF5 chunk (decoded whole, whatever its filters), a Parquet row group, a Dask chunk.
A batch that needs ``B`` rows touches some units and decodes all of their bytes;
*amplification* is bytes decoded per byte used (1.0 is ideal).

The estimates are per batch over an epoch of data that does not fit the page cache (the cold,
larger-than-RAM case): sequential batches read each unit once, ``B / rows_per_unit`` units per
batch (a unit cut by a batch's edge serves the next batch from the page cache); a full-shuffle
batch draws its rows uniformly and hits ``K (1 - (1 - 1/K)^B)`` distinct units out of ``K``,
none of them reused by later batches; a block-order window of
``window × block_rows`` rows is read once and serves all of its batches, so each batch pays its
share of the window's units (plus one unit per block where blocks and units are not aligned).

>>> f = ArrayFacts("x", (1_000_000, 16), "float32", unit="page", unit_rows=64.0, unit_bytes=4096)
>>> {o: round(c.amplification, 1) for o, c in access_costs(f, 1024, block_rows=4096).items()}
{'sequential': 1.0, 'block': 1.0, 'full': 61.9}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__: list[str] = []

WINDOW = 8  # the block order's default window (Loader(window=8)): blocks mixed at once


@dataclass(frozen=True)
class ArrayFacts:
    """One array or column: shape, dtype, bytes in memory and on disk, and its read units.

    ``row_chunks`` / ``col_chunks`` are the storage's cuts along axes 0 and 1 (Dask's
    ``chunks`` convention: sizes, summing to the axis); ``storage`` holds the layout's own words
    (filters, codec, row-group bytes) as plain values.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    disk_bytes: int | None = None  # None: held in memory
    unit: str = "array"
    unit_rows: float = 0.0  # rows per read unit (below 1: a row spans several units)
    unit_bytes: int = 0  # decoded bytes of one read unit
    row_chunks: tuple[int, ...] = ()
    col_chunks: tuple[int, ...] = ()
    storage: dict[str, Any] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    stored_row_bytes: float = 0.0  # sparse / variable-length rows: mean bytes a row is stored in

    @property
    def rows(self) -> int:
        return int(self.shape[0]) if self.shape else 1

    @property
    def row_bytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * math.prod(self.shape[1:]))

    @property
    def logical_bytes(self) -> int:
        return self.rows * self.row_bytes

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(logical_bytes=self.logical_bytes, row_bytes=self.row_bytes)
        if len(self.row_chunks) > 64:  # JSON stays small for a million-chunk array
            out["row_chunks"] = summarize_chunks(self.row_chunks)
        return out


@dataclass(frozen=True)
class Cost:
    """One batch in one order: read units touched, bytes decoded, bytes used."""

    order: str
    units: float
    bytes_decoded: float
    bytes_used: int

    @property
    def amplification(self) -> float:
        return self.bytes_decoded / self.bytes_used if self.bytes_used else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "amplification": self.amplification}


def touched(units: float, draws: int) -> float:
    """Expected distinct units hit by ``draws`` uniform draws from ``units`` equal units."""
    if units <= 1:
        return min(1.0, units) if draws else 0.0
    return units * -math.expm1(draws * math.log1p(-1.0 / units))


def access_costs(
    f: ArrayFacts, batch_size: int, *, block_rows: int = 4096, window: int = WINDOW
) -> dict[str, Cost]:
    """The cost of one batch of ``batch_size`` rows in each order (see the module docstring)."""
    b = max(1, min(int(batch_size), f.rows))
    used = int(b * (f.stored_row_bytes or f.row_bytes))
    if f.unit_rows <= 0 or f.unit_bytes <= 0 or used == 0:  # in memory: nothing to read
        return {o: Cost(o, 0.0, float(used), used) for o in ("sequential", "block", "full")}
    total_units = f.rows / f.unit_rows
    win_rows = max(b, min(f.rows, window * block_rows))
    aligned = f.unit_rows >= 1 and block_rows % round(f.unit_rows) == 0 and f.unit_rows.is_integer()
    straddling = (
        0 if aligned else min(window, win_rows / block_rows + 1)
    )  # units cut by block edges
    window_units = win_rows / f.unit_rows + straddling
    block = min(window_units, math.ceil(total_units)) * b / win_rows
    if f.unit_rows >= 1:
        seq = min(total_units, b / f.unit_rows)
        full = touched(total_units, b)
    else:  # a row spans 1/unit_rows units: every random row crosses into one more
        seq = b / f.unit_rows
        full = b * (1.0 / f.unit_rows + 1)
    block = min(block, full)
    return {
        o: Cost(o, u, u * f.unit_bytes, used)
        for o, u in (("sequential", seq), ("block", block), ("full", full))
    }


def summarize_chunks(chunks: tuple[int, ...]) -> dict[str, Any]:
    """Many chunk sizes as a count, the common size and the last one."""
    values, counts = np.unique(np.asarray(chunks), return_counts=True)
    return {"count": len(chunks), "common": int(values[np.argmax(counts)]), "last": int(chunks[-1])}


def strip(pages: np.ndarray, bins: int = 64) -> list[float]:
    """A file's page map (True: resident) as the resident fraction of ``bins`` equal pieces."""
    n = len(pages)
    if n == 0:
        return []
    edges = np.linspace(0, n, min(bins, n) + 1).astype(np.int64)
    sums = np.add.reduceat(pages.astype(np.float64), edges[:-1])
    return [float(s / (hi - lo)) for s, lo, hi in zip(sums, edges[:-1], edges[1:])]


def regular_chunks(total: int, size: int) -> tuple[int, ...]:
    """``total`` cut into pieces of ``size`` (the last one shorter), Dask's convention."""
    if total <= 0:
        return ()
    size = max(1, int(size))
    full, rest = divmod(total, size)
    return (size,) * full + ((rest,) if rest else ())
