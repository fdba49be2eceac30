"""CSV/TSV files (optionally gzipped), streamed block by block with ``pyarrow.csv``.

>>> from workbench.inputs import open_source
>>> src = open_source("train.csv.gz", target="label", sparse={"tokens": 1000})
>>> first, chunk = next(src.chunks(4096))
>>> chunk["tokens"].indices[:4]   # CSR from "494 518 580 678"
array([494, 518, 580, 678])
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from ..errors import InvalidInputError
from ..format.chunks import Chunk, rebatch
from ..format.chunks import chunk_rows as n_rows
from . import csvsplit
from .base import Source, file_fingerprint
from .csvsplit import Span, Tail, Window
from .readahead import read_ahead
from .tabular import TablePacker

__all__: list[str] = []


def _csv_delimiter(path: str) -> str:
    return "\t" if path.endswith((".tsv", ".tsv.gz")) else ","


PEEK_BYTES = 1 << 20
READAHEAD_BLOCKS = 32  # what pyarrow 14-26 queue ahead of the consumer (measured)
MIN_BLOCK, MAX_BLOCK = 128 << 10, 16 << 20


class CsvSource(Source):
    """A CSV/TSV file (optionally ``.gz``), streamed block by block with ``pyarrow.csv``."""

    def __init__(
        self,
        path: str,
        *,
        columns=None,
        drop=None,
        target=None,
        sparse=None,
        nan="error",
        dtype=None,
        encoding="utf8",
    ):
        super().__init__()
        self.path = self.where = path
        self.nan, self.encoding = nan, encoding
        self.description = f"CSV file {path}"
        # newlines_in_values: a quoted field may hold a newline (free with use_threads=False)
        self._parse = pacsv.ParseOptions(delimiter=_csv_delimiter(path), newlines_in_values=True)
        sparse_types = {s: pa.string() for s in (sparse or {})}
        # Peek at the first MiB: column names and inferred types; all blocks are then read with
        # these types fixed (numeric columns as float64, so "1" early and "1.5" later both work).
        peek = pacsv.ConvertOptions(column_types=sparse_types)
        with self._file() as f:
            head = f.read(PEEK_BYTES)
        if len(head) == PEEK_BYTES and b"\n" in head:
            try:  # a bounded buffer: pyarrow cannot read ahead past it
                first, schema = self._peek(io.BytesIO(head[: head.rindex(b"\n") + 1]), peek)
            except (pa.ArrowInvalid, UnicodeError):  # e.g. the cut fell inside a quoted field
                head = b""
        if len(head) != PEEK_BYTES or b"\n" not in head:
            with self._arrow_errors(None), self._file() as f:
                first, schema = self._peek(f, peek)
        if head and not path.endswith(".gz"):
            lines = head.count(b"\n") - 1  # minus the header
            self.estimated_rows = max(1, int(os.path.getsize(path) * lines / len(head)))
        if first is None or first.num_rows == 0:
            raise InvalidInputError(f"{path}: the CSV has a header but no rows; give it data rows")
        self._header = schema.names
        hint = " (re-encode the file as UTF-8, or pass encoding='latin-1' or the file's encoding)"
        self._packer = TablePacker(path, schema, columns, drop, target, sparse, dtype, hint)
        self.feature_names = self._packer.feature_names
        types = {c: pa.float64() for c in self._packer.features}
        if target is not None:
            tt = schema.field(target).type
            types[target] = pa.float64() if pa.types.is_null(tt) else tt
        self._convert = pacsv.ConvertOptions(
            include_columns=self._packer.inputs, column_types={**types, **sparse_types}
        )

    def _peek(
        self, f: IO[bytes], convert: pacsv.ConvertOptions
    ) -> tuple[pa.RecordBatch | None, pa.Schema]:
        reader = pacsv.open_csv(
            f,
            read_options=self._read_opts(PEEK_BYTES, 0),
            parse_options=self._parse,
            convert_options=convert,
        )
        try:
            first = reader.read_next_batch()
        except StopIteration:
            first = None
        schema = reader.schema
        reader.close()
        return first, schema

    def _file(self) -> IO[bytes]:
        # A Python file object, not the path: from a path pyarrow's async reader can run far ahead
        # of the consumer; from a Python file it keeps a fixed queue of READAHEAD_BLOCKS blocks.
        return gzip.open(self.path, "rb") if self.path.endswith(".gz") else open(self.path, "rb")  # type: ignore[arg-type,return-value]

    def _read_opts(self, block_size: int, skip: int) -> pacsv.ReadOptions:
        # use_threads=False makes pyarrow report the line number of a parse error
        return pacsv.ReadOptions(
            block_size=block_size,
            use_threads=False,
            skip_rows_after_names=skip,
            encoding=self.encoding,
        )

    def fingerprint(self) -> str | None:
        return file_fingerprint([self.path])  # type: ignore[list-item]

    @contextmanager
    def _arrow_errors(self, rows_done: int | None, span: Span | None = None) -> Iterator[None]:
        """Turn pyarrow's parse/convert errors into InvalidInputError naming the file and column;
        pyarrow's 'Row #k' (the k-th non-empty line of the file or ``span``) becomes a line
        number."""
        try:
            yield
        except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError) as e:
            msg, todo = str(e), "fix the file"
            m = re.match(r"In CSV column #(\d+): ", msg)
            if m and int(m.group(1)) < len(getattr(self, "_header", ())):
                name = self._header[int(m.group(1))]
                msg = f"column {name!r}: " + msg[m.end() :]
                todo = f"fix that value, or drop the column (drop=[{name!r}]) if it is not numeric"
            row = re.search(r"Row #(\d+)", msg)
            if row and not self.path.endswith(".gz"):
                whole = Span(0, -1, 0, os.path.getsize(self.path), 1)  # 'Row #' counts the header
                line = csvsplit.line_of_row(self.path, span or whole, int(row.group(1)))
                msg = msg.replace(row.group(0), f"line {line}")
                todo = todo.replace("fix the file", "fix or remove that line")
            elif row:
                msg += " ('Row #' counts the file's non-empty lines)"
                todo = todo.replace("fix the file", "fix or remove that line")
            elif rows_done is not None:
                msg += f" (in the block that starts at data row {rows_done})"
            raise InvalidInputError(f"{self.path}: {msg}; {todo}") from None

    def _block_size(self, chunk_rows: int) -> int:
        with self._file() as f:
            sample = f.read(1 << 16)
        lines = sample.split(b"\n")
        per_row = len(sample) / max(1, len(lines) - 1)
        longest = max(len(s) for s in lines)
        # pyarrow keeps ~READAHEAD_BLOCKS blocks queued: size them so the queue is ~2 chunks
        block = per_row * chunk_rows * 2 / READAHEAD_BLOCKS
        return int(min(MAX_BLOCK, max(MIN_BLOCK, 4 * longest, block)))

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        def pieces() -> Iterator[Chunk]:
            with self._file() as f:
                with self._arrow_errors(start):
                    reader = pacsv.open_csv(
                        f,
                        read_options=self._read_opts(self._block_size(chunk_rows), start),
                        parse_options=self._parse,
                        convert_options=self._convert,
                    )
                # parse on the read-ahead thread, pack here: the two overlap on 2 cores
                for done, batch in read_ahead(lambda: self._parsed(reader, start)):
                    yield self._packer.pack(batch, done)

        return rebatch(pieces(), chunk_rows, start)

    def split(self, rows: int) -> Generator[Span, None, Tail | None] | None:
        """Newline-aligned byte ranges of ``rows`` rows each, for parallel readers (see
        :mod:`.csvsplit`); None when the file cannot be split (gzip, a non-ASCII-compatible
        encoding, a leading empty line)."""
        if self.path.endswith(".gz") or not csvsplit.ascii_compatible(self.encoding):
            return None
        head = csvsplit.header_end(self.path, ord(self._parse.quote_char or '"'))
        if head is None:
            return None
        return csvsplit.spans(self.path, head[0], head[1], rows, ord(self._parse.quote_char or '"'))

    def span_chunks(self, span: Span, chunk_rows: int) -> Iterator[tuple[int, Chunk]]:
        """Rows of one byte range, parsed on their own (the header's names given), validated and
        checked against the row count the split planned."""

        def pieces() -> Iterator[Chunk]:
            opts = pacsv.ReadOptions(
                block_size=self._block_size(chunk_rows),
                use_threads=False,
                column_names=self._header,
                encoding=self.encoding,
            )
            with Window(self.path, span.begin, span.end) as f:
                with self._arrow_errors(span.first_row, span):
                    reader = pacsv.open_csv(
                        f,
                        read_options=opts,
                        parse_options=self._parse,
                        convert_options=self._convert,
                    )
                for done, batch in read_ahead(lambda: self._parsed(reader, span.first_row, span)):
                    yield self._packer.pack(batch, done)

        rows = span.first_row
        for first, chunk in rebatch(pieces(), chunk_rows, span.first_row):
            self._check(first, chunk)
            rows = first + n_rows(chunk)
            yield first, chunk
        if span.rows >= 0 and rows - span.first_row != span.rows:
            raise InvalidInputError(
                f"{self.path}: lines from {span.first_line} (bytes {span.begin}..{span.end}) held "
                f"{rows - span.first_row} rows where the split counted {span.rows} (a stray quote "
                "character?); convert without workers=/client=, or fix the quoting"
            )

    def _parsed(
        self, reader: Any, done: int, span: Span | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        while True:
            with self._arrow_errors(done, span):
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
            if batch.num_rows:
                yield done, batch
                done += batch.num_rows
