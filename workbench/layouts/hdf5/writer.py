"""The "hdf5" layout: one chunked HDF5 file per shard, fletcher32 on every dataset.

Chunk rows are sized to ``options["chunk_bytes"]`` so a chunk is one efficient read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import DiskFullError
from ...format.chunks import Chunk
from ...format.files import free_bytes
from ...format.manifest import Column, FileEntry
from ..base import csr_parts, shard_file_entry

__all__: list[str] = []

DEFAULT_HDF5_CHUNK_BYTES = 1 << 20  # one chunk: one efficient read, about one block-shuffle unit
RESERVE = 1 << 20  # bytes always left free for HDF5's metadata, on top of a chunk per dataset


def chunk_rows_for(row_bytes: int, chunk_bytes: int) -> int:
    return max(1, chunk_bytes // max(1, row_bytes))


class HDF5Writer:
    def __init__(
        self, version_dir: Path, index: int, columns: tuple[Column, ...], options: dict[str, Any]
    ) -> None:
        import h5py

        self.root, self.columns = version_dir, columns
        self.durable = bool(options.get("durable"))
        self.rel = f"{index:05d}.h5"
        self.chunk_bytes = int(options.get("chunk_bytes", DEFAULT_HDF5_CHUNK_BYTES))
        self.max_rows = int(options.get("shard_rows", 1 << 62))
        self.f = h5py.File(version_dir / self.rel, "w")
        self.nnz: dict[str, int] = {}
        self.datasets = 0
        try:
            self._create_all(columns)
        except BaseException:  # a full disk already: close the file before it is removed
            self.discard()
            raise

    def _create_all(self, columns: tuple[Column, ...]) -> None:
        for c in columns:
            if c.sparse:
                g = self.f.create_group(c.name)
                g.attrs["dim"] = c.shape[0]
                self.nnz[c.name] = 0
                self._create(g, "indptr", np.dtype("int64"), ())
                g["indptr"].resize((1,))
                g["indptr"][0] = 0
                self._create(g, "indices", np.dtype(c.index_dtype), ())
                if c.has_values:
                    self._create(g, "values", np.dtype(c.dtype), ())
            else:
                self._create(self.f, c.name, np.dtype(c.dtype), c.shape)

    def _create(self, parent: Any, name: str, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        row_bytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        rows = min(chunk_rows_for(row_bytes, self.chunk_bytes), self.max_rows)
        # track_times=False keeps shards byte-identical across runs (resume == clean run)
        self.datasets += 1
        parent.create_dataset(
            name,
            shape=(0, *shape),
            maxshape=(None, *shape),
            dtype=dtype,
            chunks=(rows, *shape),
            fletcher32=True,
            track_times=False,
        )

    def _append(self, dset: Any, arr: np.ndarray) -> None:
        self._room(arr.nbytes)
        n = dset.shape[0]
        dset.resize((n + len(arr), *dset.shape[1:]))
        dset[n:] = arr

    def write(self, chunk: Chunk) -> None:
        for c in self.columns:
            if c.sparse:
                g = self.f[c.name]
                parts = csr_parts(c, chunk[c.name], self.nnz[c.name])
                if len(parts["indptr"]):
                    self.nnz[c.name] = int(parts["indptr"][-1])
                for part, arr in parts.items():
                    self._append(g[part], arr)
            else:
                self._append(self.f[c.name], np.asarray(chunk[c.name], dtype=c.dtype))

    def _room(self, nbytes: int) -> None:
        """Refuse a write that would leave less than the chunk caches' and metadata's room: HDF5
        cannot recover from a full disk (h5py 3.16 crashes closing such a file), so it never
        meets one."""
        free = free_bytes(self.root)
        reserve = (self.datasets + 1) * self.chunk_bytes + RESERVE
        if nbytes + reserve > free:
            raise DiskFullError(
                f"{self.root / self.rel}: {nbytes:,} more bytes plus {reserve:,} kept for HDF5's "
                f"caches do not fit in the {free:,} bytes free; free space or write elsewhere"
            )

    def discard(self) -> None:
        """Close the file after a failure (a full disk: its last flush may fail); errors
        ignored, the file is about to be removed."""
        try:
            self.f.close()
        except (OSError, RuntimeError):
            pass

    def close(self) -> tuple[FileEntry, ...]:
        self.f.close()
        return (shard_file_entry(self.root, self.rel, self.durable),)
