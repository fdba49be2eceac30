"""Write shards: one job per shard, run in-process or (through ``cluster``) as Dask tasks.

A job is self-contained (it pickles: a splittable source plus a row range, a CSV source plus a
byte range, or the shard's raw chunks), so the same function runs on a ``distributed`` worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TransformError, WorkbenchError
from ..format.chunks import chunk_rows
from ..format.manifest import Column, Shard
from ..format.schema import check_chunk
from ..layouts import writer_class

__all__: list[str] = []


def apply_transform(
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None,
    chunk: dict[str, Any],
    first_row: int,
    where: str,
) -> dict[str, Any]:
    """Run the user's transform on one chunk; any exception becomes a TransformError naming rows."""
    if transform is None:
        return chunk
    n = chunk_rows(chunk)
    try:
        return transform(chunk)
    except WorkbenchError:
        raise
    except Exception as e:
        raise TransformError(
            f"{where}: transform raised on rows {first_row}..{first_row + n - 1}: "
            f"{type(e).__name__}: {e}; fix the transform (run it on those rows to debug)"
        ) from e


@dataclass
class ShardJob:
    index: int
    layout: str
    folder: Path
    columns: tuple[Column, ...]
    options: dict[str, Any]
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None
    nan: str
    where: str
    chunk_rows: int
    start: int
    stop: int | None = None
    source: Any = None
    chunks: Iterable[dict[str, Any]] = field(default_factory=list)
    span: Any = None  # a CSV byte range (inputs.csvsplit.Span) the worker parses itself

    def raw_chunks(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if self.span is not None:
            yield from self.source.span_chunks(self.span, self.chunk_rows)
        elif self.source is not None:
            assert self.stop is not None
            for a in range(self.start, self.stop, self.chunk_rows):
                yield a, self.source.read(a, min(a + self.chunk_rows, self.stop))
        else:
            row = self.start
            for c in self.chunks:
                yield row, c
                row += chunk_rows(c)


def write_shard(job: ShardJob) -> tuple[int, Shard]:
    """Transform, validate and write one shard; returns ``(index, Shard)`` with its file digests."""
    writer = writer_class(job.layout)(job.folder, job.index, job.columns, job.options)
    try:
        return job.index, Shard(rows=_write(job, writer), files=writer.close())
    except BaseException:  # a full disk, a bad chunk: close the files (an open one keeps its
        discard = getattr(writer, "discard", None)  # blocks after the folder is removed)
        if discard is not None:
            discard()
        raise


def _write(job: ShardJob, writer: Any) -> int:
    rows = 0
    for row, raw in job.raw_chunks():
        n_in = chunk_rows(raw)
        chunk = apply_transform(job.transform, raw, row, job.where)
        n = check_chunk(chunk, job.columns, row, job.where, job.transform is not None, job.nan)
        if n != n_in:
            raise TransformError(
                f"{job.where}: transform turned {n_in} rows (from row {row}) into {n}; "
                "a transform must return one output row per input row"
            )
        writer.write(chunk)
        rows += n
    return rows


def run_jobs(
    jobs: Iterable[ShardJob], *, client: Any = None, workers: int | None = None
) -> Iterator[tuple[int, Shard]]:
    """Yield finished shards, in-process, or as tasks on a Dask cluster (``client``, or a local
    one of ``workers`` processes) through :mod:`workbench.cluster`."""
    if client is None and not workers:
        for job in jobs:
            yield write_shard(job)
        return
    from ..cluster import run_shard_jobs

    yield from run_shard_jobs(jobs, write_shard, client=client, workers=workers)
