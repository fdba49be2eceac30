"""What a Zarr chunk grid costs a loader, as rules over plain facts (pure): chunks smaller than a
batch (many store requests and decodes a batch), a compressed chunk decoded whole for each random
row (a full shuffle decodes many times the bytes it uses), a grid that cuts rows across their
width (a row read touches several chunks). ``wb.doctor`` words them as findings, ``wb.advise`` as
recommendations.

>>> g = Grid("x", rows=100_000, row_shape=(64,), chunks=(10_000, 16), row_bytes=256,
...          compressed=True, codecs="zstd(level=0)", source="data.zarr")
>>> [i.id for i in grid_issues(g, batch_size=256, order="full")]
['zarr-random-rows-decode-chunks', 'zarr-chunks-split-rows']
>>> [i.id for i in grid_issues(g, batch_size=65_536, order="sequential")]
['zarr-chunks-below-batch', 'zarr-chunks-split-rows']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .facts import touched
from .findings import loader_line

__all__: list[str] = []

TARGET_CHUNK_BYTES = 1 << 20  # a chunk worth one store request: about 1 MiB decoded
MIN_AMPLIFICATION = 4.0  # bytes decoded per byte used by a full-shuffle batch worth a word


@dataclass(frozen=True)
class Grid:
    """One array's chunking as a loader meets it: rows, the row's shape, the chunk shape (the
    read unit: a sharded array's inner chunks), whether chunks are compressed or filtered."""

    name: str
    rows: int
    row_shape: tuple[int, ...]
    chunks: tuple[int, ...]
    row_bytes: int
    compressed: bool
    codecs: str
    source: str  # how a fix line names the input


@dataclass(frozen=True)
class Issue:
    id: str
    evidence: str
    fix: str


def chunk_rows_for(g: Grid, batch_size: int) -> int:
    """Rows a chunk should hold: a power of two of at least one batch and about 1 MiB."""
    want = max(batch_size, TARGET_CHUNK_BYTES // max(1, g.row_bytes), 1)
    return 1 << (want - 1).bit_length()


def rechunked(g: Grid, batch_size: int) -> str:
    """The ``chunks=`` of a grid without these issues: whole rows, enough of them."""
    return f"chunks={(chunk_rows_for(g, batch_size), *g.row_shape)}"


def random_amplification(g: Grid, batch_size: int) -> float:
    """Bytes decoded per byte used by a batch of random rows: each distinct chunk it touches is
    decoded whole."""
    rows = max(1, min(g.chunks[0], g.rows))
    units = g.rows / rows
    b = max(1, min(batch_size, g.rows))
    return touched(units, b) * rows / b


def cuts_per_row(g: Grid) -> int:
    """Chunks one row spans across its width."""
    return math.prod(-(-w // max(1, c)) for w, c in zip(g.row_shape, g.chunks[1:]))


def grid_issues(g: Grid, batch_size: int, order: str) -> list[Issue]:
    """The grid's issues for batches of ``batch_size`` rows read in ``order``."""
    out = []
    convert = f'wb.convert("{g.source}", "data.store")'
    rows = max(1, min(g.chunks[0], g.rows))
    if rows < batch_size and g.rows > rows:
        per = -(-batch_size // rows)
        out.append(
            Issue(
                "zarr-chunks-below-batch",
                f"{g.name}: chunks of {rows:,} rows and batches of {batch_size:,}: every "
                f"batch reads and decodes at least {per:,} chunks, one store request each (a "
                f"remote store pays a round trip for each); rechunk with {rechunked(g, batch_size)}"
                ", or convert once",
                convert,
            )
        )
    amp = random_amplification(g, batch_size)
    if order == "full" and g.compressed and amp >= MIN_AMPLIFICATION:
        out.append(
            Issue(
                "zarr-random-rows-decode-chunks",
                f"{g.name}: chunks of {rows:,} rows through {g.codecs or 'a codec'}: each random "
                f"row decodes its whole chunk, so a full-shuffle batch of {batch_size:,} decodes "
                f"about {amp:,.0f}x the bytes it uses; block order reads whole chunks and still "
                "mixes rows across a window of them, or convert once to a memory-mapped store",
                loader_line("ds", batch_size, shuffle="block"),
            )
        )
    cuts = cuts_per_row(g)
    if cuts > 1:
        out.append(
            Issue(
                "zarr-chunks-split-rows",
                f"{g.name}: rows of shape {g.row_shape} are cut by chunks of {g.chunks}: each row "
                f"read touches {cuts:,} chunks, one request and one decode each; rechunk with "
                f"whole rows, {rechunked(g, batch_size)}, or convert once",
                convert,
            )
        )
    return out
