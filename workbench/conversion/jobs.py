"""The shard jobs a conversion still has to run: journaled shards that can be kept on a resume,
then one :class:`~.shards.ShardJob` per missing shard, as a row range (splittable sources), a byte
range (a CSV file on a cluster) or the shard's chunks streamed from the source.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PerformanceWarning
from ..format.chunks import chunk_rows, slice_chunk
from ..format.files import file_digest
from ..format.manifest import Column, Shard
from ..inputs import Source
from . import commit as _commit
from .shards import ShardJob

__all__: list[str] = []

Transform = Callable[[dict[str, Any]], dict[str, Any]]


def reusable(staging: _commit.Staging) -> dict[int, Shard]:
    """Journaled shards whose files still have their recorded size and digest."""
    good = {}
    for i, shard in sorted(staging.done.items()):
        ok = True
        for f in shard.files:
            p = staging.folder / f.path
            if not p.is_file() or file_digest(p) != (f.bytes, f.xxh3):
                ok = False
                break
        if ok:
            good[i] = shard
    staging.done = dict(good)
    return good


def shard_jobs(
    src: Source,
    stream: Iterator[tuple[int, dict[str, Any]]] | None,
    first: tuple[int, dict[str, Any]],
    done: dict[int, Shard],
    cols: tuple[Column, ...],
    layout: str,
    folder: Path,
    opts: dict[str, Any],
    shard_rows: int,
    rows_per_chunk: int,
    transform: Transform | None,
    nan: str,
    where: str,
    parallel: bool = False,
) -> Iterator[ShardJob]:
    """One job per shard still to write: a row range (splittable sources), a byte range (a CSV
    file on a cluster: each worker parses its own part) or the shard's chunks."""
    common = dict(
        layout=layout,
        folder=folder,
        columns=cols,
        options=opts,
        transform=transform,
        nan=nan,
        where=where,
        chunk_rows=rows_per_chunk,
    )
    plan = src.split(shard_rows) if parallel and hasattr(src, "split") else None
    if plan is not None:
        yield from _span_jobs(src, plan, done, shard_rows, rows_per_chunk, common)
        return
    if src.splittable and src.num_rows is not None:
        for i, a in enumerate(range(0, src.num_rows, shard_rows)):
            if i not in done:
                yield ShardJob(
                    index=i, source=src, start=a, stop=min(a + shard_rows, src.num_rows), **common
                )
        return
    # Streams: the first missing shard starts after the contiguous prefix of reusable shards.
    skip = 0
    while skip in done:
        skip += 1
    for extra in [i for i in done if i >= skip]:
        del done[extra]
    start = skip * shard_rows
    stream = (
        src.chunks(rows_per_chunk, start=start) if stream is None else _chain_first(first, stream)
    )
    rows = RowStream(stream)
    index = skip
    while rows.more():
        # chunks stream lazily into the writer: memory is one chunk, not one shard
        yield ShardJob(
            index=index, chunks=rows.take(shard_rows), start=index * shard_rows, **common
        )
        index += 1


def _span_jobs(
    src: Any,
    plan: Any,
    done: dict[int, Shard],
    shard_rows: int,
    rows_per_chunk: int,
    common: dict[str, Any],
) -> Iterator[ShardJob]:
    """A job per byte range of ``shard_rows`` rows, planned as the file is scanned, so workers
    start before the scan ends; where the split stops (``Tail``), one reader streams the rest."""
    index, tail = 0, None
    while True:
        try:
            span = next(plan)
        except StopIteration as stop:
            tail = stop.value
            break
        if index not in done:
            yield ShardJob(index=index, source=src, span=span, start=span.first_row, **common)
        index += 1
    if tail is None:
        return
    warnings.warn(
        f"{src.path}: line {tail.line}: {tail.reason}, so byte ranges could cut a row in two; rows "
        f"from {tail.span.first_row} on are read by one reader and not split between workers "
        "(slower, same result)",
        PerformanceWarning,
        stacklevel=4,
    )
    rows = RowStream(src.span_chunks(tail.span, rows_per_chunk))
    start = tail.span.first_row
    while rows.more():
        chunks = rows.take(shard_rows)
        if index in done:
            for _ in chunks:  # resumed: this shard is on disk; skip its rows
                pass
        else:
            yield ShardJob(index=index, chunks=chunks, start=start, **common)
        index, start = index + 1, start + shard_rows


class RowStream:
    """Cuts a stream of chunks into consecutive runs of exactly ``n`` rows (the last may be
    short)."""

    def __init__(self, stream: Iterator[tuple[int, dict[str, Any]]]) -> None:
        self.stream, self.left = stream, None

    def more(self) -> bool:
        while self.left is None or chunk_rows(self.left) == 0:
            nxt = next(self.stream, None)
            if nxt is None:
                return False
            self.left = nxt[1]
        return True

    def take(self, n: int) -> Iterator[dict[str, Any]]:
        while n > 0 and self.more():
            chunk = self.left
            k = min(n, chunk_rows(chunk))
            self.left = slice_chunk(chunk, k, chunk_rows(chunk)) if k < chunk_rows(chunk) else None
            n -= k
            yield slice_chunk(chunk, 0, k) if self.left is not None else chunk


def _chain_first(
    first: tuple[int, dict[str, Any]], rest: Iterator[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    yield first
    yield from rest


def whole_blocks(rows: int, offsets: np.ndarray | None) -> int:
    """``rows`` a shard, rounded down to whole blocks of the source's regular block grid (a
    Zarr or HDF5 chunk, a Dask block), so that no block is decoded by two shards' jobs; as it is
    where there is no grid, the grid is irregular or one block is larger.

    >>> grid = np.array([0, 100, 200, 300, 350])
    >>> whole_blocks(166, grid), whole_blocks(50, grid), whole_blocks(166, None)
    (100, 50, 166)
    """
    if offsets is None or len(offsets) < 3:
        return rows
    steps = np.diff(offsets[:-1])  # the last block may be short
    step = int(steps[0])
    if step <= 0 or step > rows or not (steps == step).all():
        return rows
    return rows // step * step
