"""Newline-aligned byte ranges of a CSV file, a fixed number of rows each, so that several
processes can parse one file; the reasons a file cannot be split that way; and a range read as a
file (:class:`Window`).

A range starts at the beginning of a line and ends just past a newline (or at the end of the
file). Rows are counted the way pyarrow reads them: empty lines (``""`` or ``"\\r"``) hold no
row. Splitting stops where a cut could fall inside a row: at a newline inside a quoted field
(an odd number of quote characters before it) or at a bare ``\\r`` (pyarrow ends a row there).

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
>>> _ = open(path, "wb").write(b"a,b\\n1,2\\n3,4\\n\\n5,6\\n")
>>> start, line = header_end(path)
>>> plan = spans(path, start, line, rows=2)
>>> [tuple(s) for s in plan]
[(0, 2, 4, 12, 2), (2, 1, 12, 17, 4)]
"""

from __future__ import annotations

import io
import os
from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np

__all__: list[str] = []

BLOCK = 2 << 20  # bytes scanned at a time: bounded memory; cache-sized (2x faster than 8 MiB)
NL, CR, QUOTE = 10, 13, 34


class Span(NamedTuple):
    """Rows ``[first_row, first_row + rows)`` of the file: bytes ``[begin, end)``, whose first
    line is line ``first_line`` (1-based) of the file. ``rows`` is -1 when not counted."""

    first_row: int
    rows: int
    begin: int
    end: int
    first_line: int


class Tail(NamedTuple):
    """Where splitting stopped: ``span`` (to the end of the file) must be read by one reader."""

    span: Span
    line: int
    reason: str


def ascii_compatible(encoding: str) -> bool:
    """Newlines, CRs, commas and quotes are single, unambiguous bytes in ``encoding``.

    >>> ascii_compatible("utf8"), ascii_compatible("latin-1"), ascii_compatible("utf-16")
    (True, True, False)
    """
    try:
        return 'a\n\r",'.encode(encoding) == b'a\n\r",'
    except (LookupError, UnicodeError):
        return False


def header_end(path: str, quote: int = QUOTE) -> tuple[int, int] | None:
    """``(byte offset just past the header line, line number of the first data line)``, or None
    when the file starts with an empty line or its header never ends.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "h.csv")
    >>> _ = open(p, "wb").write(b'"a\\nb",c\\n1,2\\n')
    >>> header_end(p)
    (8, 3)
    """
    parity, base, lines = 0, 0, 0
    with open(path, "rb") as f:
        while True:
            buf = f.read(1 << 16)
            if not buf:
                return None
            if base == 0 and buf[:1] in (b"\n", b"\r"):
                return None  # a leading empty line: let pyarrow find the header
            a = np.frombuffer(buf, np.uint8)
            q = np.flatnonzero(a == quote)
            for p in np.flatnonzero(a == NL):
                lines += 1
                if (parity + np.searchsorted(q, p)) % 2 == 0:
                    return base + int(p) + 1, lines + 1
            parity = (parity + len(q)) % 2
            base += len(buf)


def spans(
    path: str, begin: int, first_line: int, rows: int, quote: int = QUOTE, block: int = BLOCK
) -> Generator[Span, None, Tail | None]:
    """Yield consecutive spans of ``rows`` rows from byte ``begin`` (a line start) to the end of
    the file, lazily as the file is scanned; return a :class:`Tail` if splitting had to stop.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "q.csv")
    >>> _ = open(p, "wb").write(b'a,b\\n1,2\\n3,"x\\ny"\\n5,6\\n')
    >>> plan = spans(p, 4, 2, rows=1)
    >>> next(plan)
    Span(first_row=0, rows=1, begin=4, end=8, first_line=2)
    >>> next(plan, None) is None    # the quoted newline of line 3 stops the split there
    True
    """
    size = os.path.getsize(path)
    cur_begin, cur_row, cur_line, have = begin, 0, first_line, 0
    line_start, start_byte = begin, -1  # the line being scanned, and its first byte once seen
    parity, line = 0, first_line  # quotes seen mod 2; line number at the block's start
    room = bytearray(block)  # one buffer, refilled: no allocation per block
    with open(path, "rb", buffering=0) as f:
        f.seek(begin)
        base = begin
        while base < size:
            got = f.readinto(room)
            if not got:
                break
            a = np.frombuffer(room, np.uint8, got)
            pos = np.flatnonzero(a == NL)
            stop: tuple[int, str] | None = None
            if room.find(quote.to_bytes(1, "little"), 0, got) >= 0:
                q = np.flatnonzero(a == quote)
                odd = np.flatnonzero((parity + np.searchsorted(q, pos)) % 2 == 1)
                if len(odd):
                    stop = (int(pos[odd[0]]), "a quoted field holds a newline")
                parity = (parity + len(q)) % 2
            if room.find(b"\r", 0, got) >= 0:
                cr = np.flatnonzero(a == CR)
                nxt = np.append(a, np.uint8(NL if base + got >= size else _peek(f)))[cr + 1]
                bare = cr[nxt != NL]
                if len(bare) and (stop is None or bare[0] < stop[0]):
                    stop = (int(bare[0]), "a line ends with a bare carriage return")
            if stop is not None:
                pos = pos[pos < stop[0]]
            # rows end at newlines whose line is not empty ("" or "\r")
            starts = np.empty_like(pos)
            starts[1:] = pos[:-1] + 1
            if len(pos):
                starts[0] = line_start - base
            lens = pos - starts
            first_byte = a[np.clip(starts, 0, len(a) - 1)]
            if len(pos) and starts[0] < 0:
                first_byte[0] = start_byte
            blank = (lens == 0) | ((lens == 1) & (first_byte == CR))
            ends = np.flatnonzero(~blank)  # indices into pos
            k = 0
            while len(ends) - k >= rows - have:
                i = int(ends[k + rows - have - 1])
                end = base + int(pos[i]) + 1
                yield Span(cur_row, rows, cur_begin, end, cur_line)
                cur_begin, cur_row, cur_line = end, cur_row + rows, line + i + 1
                k += rows - have
                have = 0
            have += len(ends) - k
            if stop is not None:
                bad_line = line + int(np.count_nonzero(pos < stop[0]))
                return Tail(Span(cur_row, -1, cur_begin, size, cur_line), bad_line, stop[1])
            line += len(pos)
            if len(pos):
                line_start = base + int(pos[-1]) + 1
                start_byte = int(a[pos[-1] + 1]) if pos[-1] + 1 < len(a) else -1
            elif start_byte < 0 and len(a):
                start_byte = int(a[0])
            base += got
    # the last line may lack its newline
    last = size - line_start
    if last > 1 or (last == 1 and start_byte != CR):
        have += 1
    if have:
        yield Span(cur_row, have, cur_begin, size, cur_line)
    return None


def line_of_row(path: str, span: Span, k: int) -> int:
    """The file's line number of the ``k``-th (1-based) non-empty line of ``span`` (for errors).

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "e.csv")
    >>> _ = open(p, "wb").write(b"a\\n1\\n\\n2\\n")
    >>> line_of_row(p, Span(0, 2, 2, 8, 2), 2)
    4
    """
    line = span.first_line
    with open(path, "rb") as f:
        f.seek(span.begin)
        for raw in f:
            if raw.rstrip(b"\r\n"):
                k -= 1
                if k == 0:
                    return line
            line += 1
    return line


def _peek(f: object) -> int:
    """The next byte of ``f`` without consuming it (a CR at a block's end needs it)."""
    here = f.tell()  # type: ignore[attr-defined]
    b = f.read(1)  # type: ignore[attr-defined]
    f.seek(here)  # type: ignore[attr-defined]
    return b[0] if b else NL


class Window(io.RawIOBase):
    """Bytes ``[begin, end)`` of a file as a file object (pyarrow reads it block by block)."""

    def __init__(self, path: str, begin: int, end: int) -> None:
        super().__init__()
        self._f = open(path, "rb")
        self._f.seek(begin)
        self._left = end - begin

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self._f.readinto(memoryview(b)[: max(0, min(len(b), self._left))])
        self._left -= n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()
