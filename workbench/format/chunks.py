"""A chunk: ``dict[column, ndarray | CSR]`` of equal row counts; the helpers that cut and join them.

>>> from workbench.format.chunks import rebatch
>>> [(first, len(c["x"])) for first, c in rebatch([{"x": np.arange(5)}, {"x": np.arange(4)}], 4, 0)]
[(0, 4), (4, 4), (8, 1)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Union

import numpy as np

from .sparse import CSR, concat

__all__: list[str] = []

Chunk = dict[str, Union[np.ndarray, CSR]]


def chunk_rows(chunk: Chunk) -> int:
    """Rows in ``chunk`` (every column has the same count)."""
    return len(next(iter(chunk.values())))


def row_ranges(stop: int, rows: int, start: int = 0) -> Iterator[tuple[int, int]]:
    """``[start, stop)`` cut into ``(a, b)`` ranges of ``rows`` rows, in order, the last one
    shorter: the one chunk cutter.

    >>> list(row_ranges(10, 4)), list(row_ranges(10, 4, start=5))
    ([(0, 4), (4, 8), (8, 10)], [(5, 9), (9, 10)])
    """
    for a in range(start, stop, rows):
        yield a, min(a + rows, stop)


def slice_chunk(chunk: Chunk, a: int, b: int) -> Chunk:
    """Rows ``[a, b)`` of every column, as views."""
    return {k: (v.slice(a, b) if isinstance(v, CSR) else v[a:b]) for k, v in chunk.items()}


def concat_chunks(parts: Sequence[Chunk]) -> Chunk:
    """Stack chunks of the same columns row-wise (the one chunk itself when there is one)."""
    if len(parts) == 1:
        return parts[0]
    out: Chunk = {}
    for k, v in parts[0].items():
        if isinstance(v, CSR):
            out[k] = concat([p[k] for p in parts])  # type: ignore[misc]
        else:
            out[k] = np.concatenate([p[k] for p in parts])  # type: ignore[misc]
    return out


def rebatch(pieces: Iterable[Chunk], rows: int, first: int) -> Iterator[tuple[int, Chunk]]:
    """Regroup chunks of any sizes into ``(first_row, chunk)`` of ``rows`` rows (the last smaller).

    Holds at most one output chunk plus one input piece, so memory stays bounded.
    """
    buf: list[Chunk] = []
    have = 0
    for piece in pieces:
        n = chunk_rows(piece)
        pos = 0
        while n - pos >= rows - have:
            take = rows - have
            buf.append(slice_chunk(piece, pos, pos + take))
            yield first, concat_chunks(buf)
            first += rows
            pos += take
            buf, have = [], 0
        if pos < n:
            buf.append(slice_chunk(piece, pos, n))
            have += n - pos
    if buf:
        yield first, concat_chunks(buf)
