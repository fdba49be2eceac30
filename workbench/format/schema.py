"""Infer a dataset's columns from its first chunk, and hold every later chunk to them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InvalidInputError, TransformError, UnsafeInputError
from .chunks import chunk_rows
from .manifest import Column
from .sparse import CSR

__all__: list[str] = []

_BAD_NAME = re.compile(r"[/\\\x00]|^\.|\.(indptr|indices|values)$")


def infer_columns(
    chunk: dict[str, Any], where: str, names: dict[str, tuple[str, ...]] | None = None
) -> tuple[Column, ...]:
    if not isinstance(chunk, dict) or not chunk:
        raise InvalidInputError(
            f"{where}: expected a dict of column name -> array, got {type(chunk).__name__}; "
            "return a dict from the transform"
        )
    cols = []
    for name, v in chunk.items():
        if not isinstance(name, str) or not name or _BAD_NAME.search(name):
            raise InvalidInputError(
                f"{where}: column name {name!r} cannot be stored (no '/', '\\', leading '.', or "
                "'.indptr/.indices/.values' suffix); rename it"
            )
        if isinstance(v, CSR):
            vdt = "float32" if v.values is None else v.values.dtype.name
            cols.append(
                Column(
                    name,
                    vdt,
                    (int(v.dim),),
                    sparse=True,
                    index_dtype=v.indices.dtype.name,
                    has_values=v.values is not None,
                )
            )
            continue
        a = np.asarray(v)
        if a.dtype.hasobject:
            raise UnsafeInputError(
                f"{where}: column {name!r} has object dtype; convert it to a numeric "
                "array first (workbench never stores Python objects)"
            )
        if a.dtype.kind not in "biuf":
            raise InvalidInputError(
                f"{where}: column {name!r} has dtype {a.dtype}, not numeric; drop it "
                "or encode it as numbers"
            )
        if a.ndim == 0:
            raise InvalidInputError(
                f"{where}: column {name!r} is a scalar, expected one value per row; "
                "give an array of rows"
            )
        cols.append(
            Column(
                name,
                a.dtype.name,
                tuple(int(s) for s in a.shape[1:]),
                names=(names or {}).get(name),
            )
        )
    return tuple(cols)


def check_chunk(
    chunk: Any, columns: tuple[Column, ...], first_row: int, where: str, transformed: bool, nan: str
) -> int:
    """Raise unless ``chunk`` matches ``columns``; returns its row count."""
    err = TransformError if transformed else InvalidInputError
    what = "transform output" if transformed else "chunk"
    if not isinstance(chunk, dict):
        raise err(
            f"{where}: {what} for rows from {first_row} is a {type(chunk).__name__}, expected a "
            "dict of column -> array; return one from the transform"
        )
    want = [c.name for c in columns]
    if sorted(chunk) != sorted(want):
        raise err(
            f"{where}: {what} for rows from {first_row} has columns {sorted(chunk)}, "
            f"expected {sorted(want)}; every chunk must have the same columns"
        )
    n = None
    for c in columns:
        v = chunk[c.name]
        if c.sparse:
            if not isinstance(v, CSR) or v.dim != c.shape[0] or (v.values is None) == c.has_values:
                raise err(
                    f"{where}: {what} column {c.name!r} at rows from {first_row}: expected sparse "
                    f"rows of width {c.shape[0]}, got {type(v).__name__}; "
                    "keep the first chunk's kind"
                )
            rows = len(v)
        else:
            a = np.asarray(v) if not isinstance(v, np.ndarray) else v
            if a.dtype.name != c.dtype or a.shape[1:] != c.shape:
                raise err(
                    f"{where}: {what} column {c.name!r} at rows from {first_row}: got "
                    f"{a.dtype}{list(a.shape[1:])} per row, expected {c.dtype}{list(c.shape)} "
                    "(the first chunk's); make every chunk agree"
                )
            if nan == "error" and transformed and a.dtype.kind == "f" and not np.isfinite(a).all():
                bad = int(np.argwhere(~np.isfinite(a.reshape(len(a), -1)))[0][0])
                raise err(
                    f"{where}: transform output column {c.name!r} has NaN/inf at row "
                    f"{first_row + bad}; fix the transform or pass nan='allow'"
                )
            rows = len(a)
        if n is not None and rows != n:
            raise err(
                f"{where}: {what} at rows from {first_row}: column {c.name!r} has {rows} rows, "
                f"others have {n}; give every column the same rows"
            )
        n = rows
    return int(n or 0)


def est_row_bytes(columns: tuple[Column, ...], chunk: dict[str, Any]) -> int:
    """Bytes per row on disk, with sparse columns at the first chunk's mean nonzeros per row."""
    total = 0
    n = max(1, chunk_rows(chunk))
    for c in columns:
        if c.sparse:
            v = chunk[c.name]
            per = np.dtype(c.index_dtype).itemsize + (
                np.dtype(c.dtype).itemsize if c.has_values else 0
            )
            total += 8 + int(np.ceil(v.nnz / n * per))
        else:
            total += c.row_bytes
    return max(1, total)


def select(
    where: str,
    names: Sequence[str],
    columns: str | Sequence[str] | None,
    drop: Sequence[str] | None = None,
    keep: Sequence[str] = (),
) -> list[str]:
    """Apply ``columns=`` (in the order asked; one name allowed) then ``drop=``; ``keep`` (target,
    sparse columns) survive ``columns=``. The one selection rule of convert and open_dataset."""
    if isinstance(columns, str):
        columns = [columns]
    for opt, given in (("columns", columns), ("drop", drop), ("target/sparse", keep)):
        missing = [c for c in (given or ()) if c not in names]
        if missing:
            raise InvalidInputError(
                f"{where}: {opt}= names {missing}, which are not columns; the columns available "
                f"are {list(names)}"
            )
    chosen = list(names) if columns is None else list(dict.fromkeys([*columns, *keep]))
    dropped = set(drop or ())
    chosen = [c for c in chosen if c not in dropped]
    if not chosen:
        raise InvalidInputError(f"{where}: no columns left after columns=/drop=; keep at least one")
    return chosen


def check_columns(
    available: tuple[Column, ...], columns: str | Sequence[str] | None, where: str
) -> tuple[Column, ...]:
    """The :class:`Column` of each selected name, in the order asked."""
    by_name = {c.name: c for c in available}
    return tuple(by_name[n] for n in select(where, list(by_name), columns))
