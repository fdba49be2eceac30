"""The "store" layout: one standard ``.npy`` file per column per shard, appended in a stream.

The header is written last (its length is reserved up front), so rows stream to disk without
knowing the shard's final row count, and ``np.load(f, mmap_mode="r")`` opens every file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ...errors import InvalidInputError
from ...format.chunks import Chunk
from ...format.files import fsync_path
from ...format.manifest import Column, FileEntry
from ..base import csr_parts, entry

__all__: list[str] = []

_MAGIC = b"\x93NUMPY\x01\x00"


def npy_header(dtype: np.dtype, shape: tuple[int, ...], total: int | None = None) -> bytes:
    """A version-1.0 ``.npy`` header, padded with spaces to ``total`` bytes (default:
    64-aligned)."""
    d = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (
        np.lib.format.dtype_to_descr(dtype),
        tuple(int(s) for s in shape),
    )
    if total is None:
        total = -(-(len(_MAGIC) + 2 + len(d) + 1) // 64) * 64
    pad = total - len(_MAGIC) - 2 - len(d) - 1
    if pad < 0:
        raise InvalidInputError(
            f"shape {tuple(shape)}: too large for a .npy header of {total} bytes; "
            "split the array into smaller columns"
        )
    body = (d + " " * pad + "\n").encode("latin1")
    return _MAGIC + len(body).to_bytes(2, "little") + body


class NpyAppender:
    """Appends rows of one array to a ``.npy`` file; ``finish`` writes the true header."""

    def __init__(self, path: Path, dtype: np.dtype, row_shape: tuple[int, ...]) -> None:
        self.dtype, self.row_shape, self.rows = np.dtype(dtype), row_shape, 0
        # room for the largest row count a file could ever hold
        self.header_len = len(npy_header(self.dtype, (10**19, *row_shape)))
        self.f: BinaryIO = open(path, "wb")
        try:
            self.f.write(b"\0" * self.header_len)
        except BaseException:
            self.discard()
            raise

    def append(self, arr: np.ndarray) -> None:
        a = np.ascontiguousarray(arr, dtype=self.dtype)
        self.f.write(memoryview(a).cast("B"))
        self.rows += len(a)

    def finish(self, durable: bool) -> None:
        self.f.seek(0)
        self.f.write(npy_header(self.dtype, (self.rows, *self.row_shape), self.header_len))
        if durable:
            fsync_path(self.f)
        self.f.close()

    def discard(self) -> None:
        """Close without a header (the file is about to be removed); errors ignored."""
        try:
            self.f.close()
        except OSError:  # the buffer's last flush on a full disk: the descriptor still closes
            pass


class StoreWriter:
    def __init__(
        self, version_dir: Path, index: int, columns: tuple[Column, ...], options: dict[str, Any]
    ) -> None:
        self.root, self.columns, self.durable = version_dir, columns, bool(options.get("durable"))
        self.prefix = f"{index:05d}"
        (version_dir / self.prefix).mkdir(parents=True, exist_ok=True)
        self.files: dict[tuple[str, str], tuple[str, NpyAppender]] = {}
        self.nnz: dict[str, int] = {}
        try:
            self._open_all(columns)
        except BaseException:  # one of them did not fit: close those already open
            self.discard()
            raise

    def _open_all(self, columns: tuple[Column, ...]) -> None:
        for c in columns:
            if c.sparse:
                self.nnz[c.name] = 0
                parts = [("indptr", "int64"), ("indices", c.index_dtype)]
                if c.has_values:
                    parts.append(("values", c.dtype))
                for part, dt in parts:
                    self._open(c.name, part, f"{c.name}.{part}.npy", np.dtype(dt), ())
                self.files[(c.name, "indptr")][1].append(np.zeros(1, np.int64))
            else:
                self._open(c.name, "data", f"{c.name}.npy", np.dtype(c.dtype), c.shape)

    def _open(
        self, col: str, part: str, name: str, dtype: np.dtype, shape: tuple[int, ...]
    ) -> None:
        rel = f"{self.prefix}/{name}"
        self.files[(col, part)] = (rel, NpyAppender(self.root / rel, dtype, shape))

    def write(self, chunk: Chunk) -> None:
        for c in self.columns:
            if c.sparse:
                parts = csr_parts(c, chunk[c.name], self.nnz[c.name])
                self.nnz[c.name] = (
                    int(parts["indptr"][-1]) if len(parts["indptr"]) else self.nnz[c.name]
                )
                for part, arr in parts.items():
                    self.files[(c.name, part)][1].append(arr)
            else:
                self.files[(c.name, "data")][1].append(chunk[c.name])

    def discard(self) -> None:
        """Close every file after a failure, finishing none of them."""
        for _, app in self.files.values():
            app.discard()

    def close(self) -> tuple[FileEntry, ...]:
        out = []
        for (col, part), (rel, app) in self.files.items():
            app.finish(self.durable)
            out.append(entry(self.root, rel, col, part))
        return tuple(out)
