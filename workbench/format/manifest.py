"""The on-disk schema of a dataset: frozen dataclasses and their JSON form.

A dataset directory looks like::

    dest/
      CURRENT                 one line: the committed version's folder name
      v-<id>/manifest.json    this schema
      v-<id>/00000/x.npy      (layout "store") one standard .npy per column per shard
      v-<id>/00000.h5         (layout "hdf5")  one chunked HDF5 file per shard
      v-<id>/00000.parquet    (layout "parquet") one Parquet file per shard

This module never touches the filesystem.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import ColumnNotFoundError, CorruptDatasetError

__all__ = ["Column", "Manifest"]

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
CURRENT_NAME = "CURRENT"
LAYOUTS = ("store", "hdf5", "parquet")
# Parts of a file entry: a dense column's data, or one array of a CSR column, or a whole shard file.
PARTS = ("data", "indptr", "indices", "values", "shard")


@dataclass(frozen=True)
class Column:
    """One column: ``dtype`` and per-row ``shape`` (sparse: values dtype and ``(dim,)``).

    Parameters
    ----------
    name : str
        The column's name.
    dtype : str
        The NumPy dtype of its values.
    shape : tuple of int, default ()
        One row's shape (a scalar column: ``()``).
    sparse : bool, default False
        Stored as CSR rows.
    index_dtype : str, default "int64"
        A sparse column's index dtype.
    has_values : bool, default True
        A sparse column stores values (False: implicit ones).
    names : tuple of str, optional
        The source columns packed into this one.
    """

    name: str
    dtype: str
    shape: tuple[int, ...] = ()
    sparse: bool = False
    index_dtype: str = "int64"
    has_values: bool = True
    names: tuple[str, ...] | None = None  # source column names packed into this column

    @property
    def row_bytes(self) -> int:
        """Bytes of one dense row (sparse columns: of one dense-expanded row)."""
        return int(np.dtype(self.dtype).itemsize * int(np.prod(self.shape, dtype=np.int64)))


@dataclass(frozen=True)
class FileEntry:
    """One file of a shard, relative to the version folder, with its size and xxh3-64 digest."""

    path: str
    bytes: int
    xxh3: str
    column: str | None = None
    part: str = "data"


@dataclass(frozen=True)
class Shard:
    """A contiguous run of ``rows`` rows stored in ``files``."""

    rows: int
    files: tuple[FileEntry, ...]


@dataclass(frozen=True)
class Manifest:
    """Everything needed to read and verify one committed dataset version.

    Parameters
    ----------
    layout : {"store", "hdf5", "parquet"}
        How the shards are stored.
    columns : tuple of Column
        The columns, in order.
    shards : tuple of Shard
        Consecutive runs of rows, each with its files' sizes and xxh3 digests.
    source : dict
        The source's ``description`` and ``fingerprint`` (None for a one-shot iterable).
    transform : dict, optional
        The transform's ``name``, ``source_sha256`` and ``doc`` line.
    target : str, optional
        The label column.
    options : dict
        The conversion's layout options (``shard_rows``, ``chunk_rows``, ...).
    created : str
        When it was committed (ISO 8601, UTC).
    workbench_version : str
        The workbench that wrote it.
    format_version : int
        The manifest schema's version.
    """

    layout: str
    columns: tuple[Column, ...]
    shards: tuple[Shard, ...]
    source: dict[str, Any] = field(default_factory=dict)
    transform: dict[str, Any] | None = None
    target: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    workbench_version: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def num_rows(self) -> int:
        return sum(s.rows for s in self.shards)

    @property
    def nbytes(self) -> int:
        return sum(f.bytes for s in self.shards for f in s.files)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise ColumnNotFoundError(
            f"no column {name!r}; the columns are "
            f"{[c.name for c in self.columns]}: pass one of those"
        )

    def __repr__(self) -> str:
        head = (
            f"Manifest(layout={self.layout!r}, rows={self.num_rows:,}, shards={len(self.shards)}, "
            f"bytes={self.nbytes:,})"
        )
        width = max(len(c.name) for c in self.columns) if self.columns else 0
        lines = [head]
        for c in self.columns:
            kind = f"csr {c.dtype} width {c.shape[0]}" if c.sparse else f"{c.dtype} {list(c.shape)}"
            lines.append(
                f"  {c.name:<{width}}  {kind}" + ("  (target)" if c.name == self.target else "")
            )
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str = "manifest") -> Manifest:
        """Parse and validate; any inconsistency raises :class:`CorruptDatasetError`."""
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise TypeError("top level is not an object")
            if raw.get("format_version") != FORMAT_VERSION:
                raise ValueError(
                    f"format_version {raw.get('format_version')!r}, this workbench reads "
                    f"{FORMAT_VERSION}"
                )
            columns = tuple(
                Column(
                    **{
                        **c,
                        "shape": tuple(c["shape"]),
                        "names": None if c.get("names") is None else tuple(c["names"]),
                    }
                )
                for c in raw["columns"]
            )
            shards = tuple(
                Shard(rows=int(s["rows"]), files=tuple(FileEntry(**f) for f in s["files"]))
                for s in raw["shards"]
            )
            m = cls(**{**raw, "columns": columns, "shards": shards})
            _validate(m)
            return m
        except CorruptDatasetError:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise CorruptDatasetError(
                f"{where}: unreadable manifest ({type(e).__name__}: {e}); the dataset must be "
                "converted again or restored from a copy"
            ) from None


def _validate(m: Manifest) -> None:
    if m.layout not in LAYOUTS:
        raise ValueError(f"unknown layout {m.layout!r}")
    names = [c.name for c in m.columns]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"column names must be unique and non-empty, got {names}")
    for c in m.columns:
        np.dtype(c.dtype)
        if c.dtype == "object" or np.dtype(c.dtype).hasobject:
            raise ValueError(f"column {c.name!r} has object dtype")
        if c.sparse and len(c.shape) != 1:
            raise ValueError(f"sparse column {c.name!r} needs shape (dim,)")
    for s in m.shards:
        if s.rows < 0:
            raise ValueError("negative shard row count")
        for f in s.files:
            if (
                f.part not in PARTS
                or f.bytes < 0
                or ".." in f.path.split("/")
                or f.path.startswith("/")
            ):
                raise ValueError(f"bad file entry {f.path!r}")
