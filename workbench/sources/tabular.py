"""Tables (CSV, Parquet, Arrow, pandas) packed into workbench columns.

Packing rule: every numeric column that is not the target and not declared sparse goes into one
dense ``"features"`` column of shape ``(k,)``; ``fixed_size_list`` columns stay their own dense
``(k,)`` columns; the target stays a scalar column; ``sparse=`` columns become CSR.

>>> src = open_source("train.csv", target="label", sparse={"tokens": 1000})
>>> src.feature_names["features"]        # ('age', 'height', ...)
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import xxhash

from ..errors import InvalidInputError, SourceNotFoundError
from ..sparse import CSR
from .base import Chunk, Source, concat_chunks, file_fingerprint, rebatch, select, slice_chunk

FEATURES = "features"


def _is_number(t: pa.DataType) -> bool:
    return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_null(t) or pa.types.is_decimal(t))


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _column(batch: pa.RecordBatch | pa.Table, name: str) -> pa.Array:
    col = batch.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


class TablePacker:
    """Decides, from an Arrow schema and the options, which output column each input column feeds."""

    def __init__(self, where: str, schema: pa.Schema, columns: Sequence[str] | None,
                 drop: Sequence[str] | None, target: str | None, sparse: dict[str, int] | None,
                 dtype: np.dtype | None, text_hint: str = ""):
        names = [n for n in schema.names if not re.fullmatch(r"__index_level_\d+__", n)]
        self.where, self.target = where, target
        sparse = dict(sparse or {})
        if target is not None and target not in names:
            raise InvalidInputError(
                f"{where}: target={target!r} is not a column; the columns are {names}; "
                "pass one of them as target="
            )
        chosen = select(where, names, columns, drop, [*([target] if target else []), *sparse])
        self.features: list[str] = []
        self.lists: list[tuple[str, int, np.dtype]] = []
        self.sparse: dict[str, tuple[int, str | None]] = {}
        self.feature_dtype = np.dtype(dtype or "float32")
        self.target_dtype: np.dtype | None = None
        companions = {f"{s}.values" for s in sparse if f"{s}.values" in names}
        for name in chosen:
            t = schema.field(name).type
            if name in sparse:
                if not (_is_list(t) or pa.types.is_string(t) or pa.types.is_large_string(t)):
                    raise InvalidInputError(
                        f"{where}: sparse column {name!r} has type {t}; it must hold lists of "
                        "nonzero indices (or, in a CSV, space-separated indices like \"3 17 42\")"
                    )
                vals = f"{name}.values" if f"{name}.values" in companions else None
                self.sparse[name] = (int(sparse[name]), vals)
            elif name in companions:
                continue
            elif name == target:
                if not _is_number(t):
                    raise self._not_numeric(name, t, text_hint)
                kind = pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t)
                self.target_dtype = np.dtype("float32" if kind else "int64")
            elif _is_list(t):
                raise InvalidInputError(
                    f"{where}: column {name!r} holds variable-length lists ({t}); if they are "
                    f"nonzero indices pass sparse={{{name!r}: dim}}, else drop it (drop=[{name!r}])"
                )
            elif pa.types.is_fixed_size_list(t) and _is_number(t.value_type):
                vt = np.dtype(t.value_type.to_pandas_dtype())
                self.lists.append((name, t.list_size, np.dtype(dtype) if dtype and vt.kind == "f" else vt))
            elif _is_number(t):
                self.features.append(name)
            else:
                raise self._not_numeric(name, t, text_hint)
        outs = [*([FEATURES] if self.features else []), *[n for n, _, _ in self.lists],
                *self.sparse, *([target] if target else [])]
        if len(set(outs)) != len(outs):
            raise InvalidInputError(
                f"{where}: a column is named {FEATURES!r}, which is where numeric columns are "
                "packed; rename it or drop it"
            )
        self.inputs = list(chosen)
        self.feature_names = {FEATURES: tuple(self.features)} if self.features else {}

    def _not_numeric(self, name: str, t: pa.DataType, text_hint: str) -> InvalidInputError:
        if pa.types.is_binary(t) or pa.types.is_large_binary(t):
            what = f"holds bytes that are not valid UTF-8 text{text_hint}"
        else:
            what = f"is not numeric ({t})"
        return InvalidInputError(
            f"{self.where}: column {name!r} {what}; drop it (drop=[{name!r}]) or encode it to "
            "numbers first"
        )

    def pack(self, batch: pa.RecordBatch | pa.Table, first: int) -> Chunk:
        n = batch.num_rows
        out: Chunk = {}
        if self.features:
            feats = np.empty((n, len(self.features)), dtype=self.feature_dtype)
            for j, name in enumerate(self.features):
                feats[:, j] = _numbers(_column(batch, name))
            out[FEATURES] = feats
        for name, k, dt in self.lists:
            col = _column(batch, name)
            if col.null_count:
                raise self._null(name, col, first, "a missing list")
            out[name] = col.flatten().to_numpy(zero_copy_only=False).reshape(n, k).astype(dt, copy=False)
        for name, (dim, vals) in self.sparse.items():
            out[name] = self._sparse(batch, name, dim, vals, first)
        if self.target is not None:
            col = _column(batch, self.target)
            if col.null_count and self.target_dtype.kind == "i":  # type: ignore[union-attr]
                raise self._null(self.target, col, first, "an empty (missing) integer label; fill or drop those rows")
            out[self.target] = _numbers(col).astype(self.target_dtype, copy=False)
        return out

    def _null(self, name: str, col: pa.Array, first: int, what: str) -> InvalidInputError:
        row = first + int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
        return InvalidInputError(f"{self.where}: row {row}, column {name!r}: {what}")

    def _sparse(self, batch: pa.RecordBatch | pa.Table, name: str, dim: int, vals: str | None,
                first: int) -> CSR:
        col = _column(batch, name)
        if not _is_list(col.type):  # CSV text: "3 17 42"
            col = pc.utf8_split_whitespace(col.fill_null(""))
            flat = pc.list_flatten(col)
            keep = pc.greater(pc.utf8_length(flat), 0).to_numpy(zero_copy_only=False)
            parent = pc.list_parent_indices(col).to_numpy()[keep]
            tokens = flat.filter(pa.array(keep))
            lengths = np.bincount(parent, minlength=len(col))
            try:
                indices = tokens.cast(pa.int64()).to_numpy()
            except (pa.ArrowInvalid, ValueError):
                bad = next(i for i, s in enumerate(tokens.to_pylist()) if not re.fullmatch(r"[+-]?\d+", s))
                raise InvalidInputError(
                    f"{self.where}: row {first + int(parent[bad])}, column {name!r}: "
                    f"{tokens[bad].as_py()!r} is not an integer index; write nonzero indices as "
                    "space-separated integers like \"3 17 42\""
                ) from None
        else:
            if not (pa.types.is_integer(col.type.value_type) or pa.types.is_null(col.type.value_type)):
                raise InvalidInputError(
                    f"{self.where}: sparse column {name!r} holds {col.type}; it must hold lists of "
                    "integer indices"
                )
            lengths = pc.list_value_length(col).fill_null(0).to_numpy(zero_copy_only=False)
            indices = col.flatten().to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        values = None
        if vals is not None:
            vcol = _column(batch, vals)
            vlen = pc.list_value_length(vcol).fill_null(0).to_numpy(zero_copy_only=False)
            if not np.array_equal(vlen, lengths):
                row = first + int(np.argmax(vlen != lengths))
                raise InvalidInputError(
                    f"{self.where}: row {row}: {vals!r} has a different length than {name!r}; "
                    "give one value per index"
                )
            vdt = self.feature_dtype if self.feature_dtype.kind == "f" else np.dtype("float32")
            values = vcol.flatten().to_numpy(zero_copy_only=False).astype(vdt, copy=False)
        return CSR(indptr, indices, values, dim)


def _numbers(col: pa.Array) -> np.ndarray:
    """Arrow numbers to numpy; missing values become NaN (and are then caught by the NaN check)."""
    t = col.type
    if pa.types.is_null(t):
        return np.full(len(col), np.nan)
    if pa.types.is_boolean(t):
        col = col.cast(pa.uint8())
    elif pa.types.is_decimal(t):
        col = col.cast(pa.float64())
    return col.to_numpy(zero_copy_only=False)


def _csv_delimiter(path: str) -> str:
    return "\t" if path.endswith((".tsv", ".tsv.gz")) else ","


class CsvSource(Source):
    """A CSV/TSV file (optionally ``.gz``), streamed block by block with ``pyarrow.csv.open_csv``."""

    def __init__(self, path: str, *, columns=None, drop=None, target=None, sparse=None,
                 nan="error", dtype=None, encoding="utf8"):
        super().__init__()
        self.path = self.where = path
        self.nan, self.encoding = nan, encoding
        self.description = f"CSV file {path}"
        self._parse = pacsv.ParseOptions(delimiter=_csv_delimiter(path))
        sparse_types = {s: pa.string() for s in (sparse or {})}
        # Peek at one block: column names and inferred types; later blocks are read with these fixed.
        with self._arrow_errors(None):
            reader = pacsv.open_csv(
                path, read_options=self._read_opts(1 << 20, 0), parse_options=self._parse,
                convert_options=pacsv.ConvertOptions(column_types=sparse_types))
            try:
                first = reader.read_next_batch()
            except StopIteration:
                first = None
            schema = reader.schema
            reader.close()
        if first is None or first.num_rows == 0:
            raise InvalidInputError(f"{path}: the CSV has a header but no rows; give it data rows")
        self._header = schema.names
        hint = (" (re-encode the file as UTF-8, or pass encoding='latin-1' or the file's encoding)")
        self._packer = TablePacker(path, schema, columns, drop, target, sparse, dtype, hint)
        self.feature_names = self._packer.feature_names
        types = {c: pa.float64() for c in self._packer.features}
        if target is not None:
            tt = schema.field(target).type
            types[target] = pa.float64() if pa.types.is_null(tt) else tt
        self._convert = pacsv.ConvertOptions(
            include_columns=self._packer.inputs, column_types={**types, **sparse_types})

    def _read_opts(self, block_size: int, skip: int) -> pacsv.ReadOptions:
        # use_threads=False makes pyarrow report the line number of a parse error
        return pacsv.ReadOptions(block_size=block_size, use_threads=False,
                                 skip_rows_after_names=skip, encoding=self.encoding)

    def fingerprint(self) -> str | None:
        return file_fingerprint([self.path])  # type: ignore[list-item]

    def _arrow_errors(self, rows_done: int | None):
        src = self

        class _Ctx:
            def __enter__(self):
                return self

            def __exit__(self, et, e, tb):
                if e is None or not isinstance(e, (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeError)):
                    return False
                msg = str(e)
                m = re.match(r"In CSV column #(\d+): ", msg)
                if m and int(m.group(1)) < len(getattr(src, "_header", ())):
                    msg = f"column {src._header[int(m.group(1))]!r}: " + msg[m.end():]
                where = "" if rows_done is None else f" (after data row {rows_done})"
                raise InvalidInputError(
                    f"{src.path}{where}: {msg} ('Row #' is the line number in the file); fix that "
                    "line, or drop the column if it is not numeric"
                ) from None

        return _Ctx()

    def _block_size(self, chunk_rows: int) -> int:
        opener = gzip.open if self.path.endswith(".gz") else open  # type: ignore[union-attr]
        with opener(self.path, "rb") as f:
            sample = f.read(1 << 16)
        lines = sample.split(b"\n")
        per_row = len(sample) / max(1, len(lines) - 1)
        longest = max(len(s) for s in lines)
        return int(min(256 << 20, max(1 << 20, 4 * longest, 1.2 * per_row * chunk_rows)))

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        def pieces() -> Iterator[Chunk]:
            done = start
            with self._arrow_errors(done):
                reader = pacsv.open_csv(
                    self.path, read_options=self._read_opts(self._block_size(chunk_rows), start),
                    parse_options=self._parse, convert_options=self._convert)
            while True:
                with self._arrow_errors(done):
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        return
                if batch.num_rows:
                    yield self._packer.pack(batch, done)
                    done += batch.num_rows

        return rebatch(pieces(), chunk_rows, start)


def _parquet_files(path: str) -> list[str]:
    if os.path.isfile(path):
        return [path]
    files = sorted(str(p) for p in Path(path).rglob("*.parquet") if p.is_file())
    if not files:
        raise SourceNotFoundError(f"{path}: the folder holds no .parquet files; point at a file or "
                                  "a folder of .parquet files")
    return files


class ParquetSource(Source):
    """A Parquet file or folder of them, read row group by row group (random access via metadata)."""

    splittable = True

    def __init__(self, path: str, *, columns=None, drop=None, target=None, sparse=None,
                 nan="error", dtype=None):
        super().__init__()
        self.path = self.where = path
        self.nan = nan
        self.files = _parquet_files(path)
        rows, schema = [], None
        for i, f in enumerate(self.files):
            with self._errors(f):
                pf = pq.ParquetFile(f)
                s = pf.schema_arrow
                rows += [(i, g, pf.metadata.row_group(g).num_rows) for g in range(pf.num_row_groups)]
            if schema is None:
                schema = s
            elif not s.equals(schema):
                raise InvalidInputError(
                    f"{f}: its schema differs from {self.files[0]} ({s} vs {schema}); give every "
                    "file of the folder the same columns and types"
                )
        self._groups = [(i, g) for i, g, _ in rows]
        self._offsets = np.concatenate([[0], np.cumsum([r for _, _, r in rows])]).astype(np.int64)
        self.num_rows = int(self._offsets[-1])
        if self.num_rows == 0:
            raise InvalidInputError(f"{path}: the Parquet data has no rows; give it data")
        kind = "file" if len(self.files) == 1 and self.files[0] == path else f"folder ({len(self.files)} files)"
        self.description = f"Parquet {kind} {path}"
        self._packer = TablePacker(path, schema, columns, drop, target, sparse, dtype)  # type: ignore[arg-type]
        self.feature_names = self._packer.feature_names

    def _errors(self, f: str):
        class _Ctx:
            def __enter__(self):
                return self

            def __exit__(self, et, e, tb):
                if e is None or isinstance(e, InvalidInputError) or not isinstance(e, (OSError, pa.ArrowException)):
                    return False
                raise InvalidInputError(
                    f"{f}: cannot read Parquet data ({type(e).__name__}: {e}); the file is damaged or "
                    "not Parquet: re-create it"
                ) from None

        return _Ctx()

    def _open(self, i: int) -> pq.ParquetFile:
        return pq.ParquetFile(self.files[i], page_checksum_verification=True)

    def fingerprint(self) -> str | None:
        return file_fingerprint(self.files)

    def _group_at(self, row: int) -> int:
        return int(np.searchsorted(self._offsets, row, side="right")) - 1

    def _read(self, start: int, stop: int) -> Chunk:
        parts = []
        if stop == start:
            return slice_chunk(self._read_group(self._group_at(0)), 0, 0)
        for gi in range(self._group_at(start), self._group_at(stop - 1) + 1):
            chunk = self._read_group(gi)
            lo = int(self._offsets[gi])
            parts.append(slice_chunk(chunk, max(start - lo, 0), min(stop, int(self._offsets[gi + 1])) - lo))
        return concat_chunks(parts)

    def _read_group(self, gi: int) -> Chunk:
        i, g = self._groups[gi]
        with self._errors(self.files[i]):
            table = self._open(i).read_row_group(g, columns=self._packer.inputs)
        return self._packer.pack(table, int(self._offsets[gi]))

    def _chunks(self, chunk_rows: int, start: int) -> Iterator[tuple[int, Chunk]]:
        def pieces() -> Iterator[Chunk]:
            if start >= self.num_rows:
                return
            g0 = self._group_at(start)
            row = int(self._offsets[g0])
            for i in range(self._groups[g0][0], len(self.files)):
                groups = [g for fi, g in self._groups[g0:] if fi == i]
                if not groups:
                    continue
                with self._errors(self.files[i]):
                    it = self._open(i).iter_batches(batch_size=chunk_rows, row_groups=groups,
                                                    columns=self._packer.inputs)
                    for batch in it:
                        n = batch.num_rows
                        if row + n > start:
                            skip = max(0, start - row)
                            yield self._packer.pack(batch.slice(skip), row + skip)
                        row += n

        return rebatch(pieces(), chunk_rows, start)


class ArrowTableSource(Source):
    """An in-memory ``pyarrow.Table`` or pandas DataFrame (the same packing as CSV/Parquet)."""

    def __init__(self, table: pa.Table, *, description: str, columns=None, drop=None, target=None,
                 sparse=None, nan="error", dtype=None):
        super().__init__()
        self.where, self.nan, self.description = "in-memory table", nan, description
        self._table = table
        self.num_rows = table.num_rows
        if self.num_rows == 0:
            raise InvalidInputError("in-memory table: it has no rows; give it data")
        self._packer = TablePacker(self.where, table.schema, columns, drop, target, sparse, dtype)
        self.feature_names = self._packer.feature_names

    def fingerprint(self) -> str | None:
        h = xxhash.xxh3_64(str(self._table.schema).encode())
        for col in self._table.columns:
            for arr in col.chunks:
                h.update(f"{arr.offset}|{len(arr)}".encode())
                for buf in arr.buffers():
                    if buf is not None:
                        h.update(memoryview(buf))
        return h.hexdigest()

    def _read(self, start: int, stop: int) -> Chunk:
        return self._packer.pack(self._table.slice(start, stop - start), start)
