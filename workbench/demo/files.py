"""The demo's file writers, one per format, each appending chunks under a ``.partial`` name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__: list[str] = []


def partial(final: Path) -> Path:
    return final.with_name(final.name + ".partial")


# DemoFiles field -> file name, per format
FILES = {
    "csv": {"csv": "demo.csv"},
    "npy": {
        "npy": "features.npy",
        "labels_npy": "labels.npy",
        "tokens_indptr_npy": "tokens.indptr.npy",
        "tokens_indices_npy": "tokens.indices.npy",
    },
    "hdf5": {"hdf5": "demo.h5"},
    "parquet": {"parquet": "demo.parquet"},
}


class Writer:
    """Appends chunks to one format's files, under their ``.partial`` names."""

    def append(self, c: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        raise NotImplementedError


def _arrow_columns(c: dict[str, np.ndarray]) -> list:
    import pyarrow as pa

    x = c["features"]
    cols = [pa.array(np.ascontiguousarray(x[:, j])) for j in range(x.shape[1])]
    offsets = pa.array(c["indptr"].astype(np.int32))  # chunk-local offsets, always small
    tokens = pa.ListArray.from_arrays(offsets, pa.array(c["indices"]))
    return cols + [pa.array(c["label"]), tokens]


class _CsvWriter(Writer):
    def __init__(self, paths: dict[str, Path], rows: int, names: tuple[str, ...], dim: int) -> None:
        import pyarrow as pa
        import pyarrow.csv as pcsv

        self.f = open(partial(paths["csv"]), "wb")
        # Arrow would quote the header names, so write it here; values need no quotes.
        self.f.write((",".join(names + ("label", "tokens")) + "\n").encode())
        self.schema = pa.schema(
            [(n, pa.float32()) for n in names] + [("label", pa.int64()), ("tokens", pa.string())]
        )
        opts = pcsv.WriteOptions(include_header=False, quoting_style="none")
        self.w = pcsv.CSVWriter(self.f, self.schema, write_options=opts)

    def append(self, c: dict[str, np.ndarray]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        cols = _arrow_columns(c)
        # Arrow prints each float32 in its shortest round-tripping form, and fast
        cols[-1] = pc.binary_join(cols[-1].cast(pa.list_(pa.string())), " ")
        self.w.write_table(pa.Table.from_arrays(cols, schema=self.schema))

    def close(self) -> None:
        self.w.close()
        self.f.close()


class _NpyWriter(Writer):
    """Streams each array's bytes after a reserved header, with the store format's appender:
    plain appends, unlike a memmap, keep the written pages out of this process's RSS."""

    def __init__(self, paths: dict[str, Path], rows: int, names: tuple[str, ...], dim: int) -> None:
        from ..layouts.store.writer import NpyAppender

        specs = {
            "npy": ("<f4", (len(names),)),
            "labels_npy": ("<i8", ()),
            "tokens_indptr_npy": ("<i8", ()),
            "tokens_indices_npy": ("<i4", ()),
        }
        self.files = {
            k: NpyAppender(partial(paths[k]), np.dtype(d), shape) for k, (d, shape) in specs.items()
        }
        self.files["tokens_indptr_npy"].append(np.zeros(1, "<i8"))
        self.nnz = 0

    def append(self, c: dict[str, np.ndarray]) -> None:
        f = self.files
        f["npy"].append(c["features"])
        f["labels_npy"].append(c["label"])
        f["tokens_indptr_npy"].append(c["indptr"][1:] + self.nnz)
        f["tokens_indices_npy"].append(c["indices"])
        self.nnz += len(c["indices"])

    def close(self) -> None:
        for f in self.files.values():
            if not f.f.closed:
                f.finish(durable=False)


class _Hdf5Writer(Writer):
    def __init__(self, paths: dict[str, Path], rows: int, names: tuple[str, ...], dim: int) -> None:
        import h5py

        self.f = h5py.File(partial(paths["hdf5"]), "w")
        k, g = len(names), self.f.create_group("tokens")
        g.attrs["dim"] = dim
        # track_times=False keeps the bytes identical between runs
        make = dict(track_times=False)
        self.x = self.f.create_dataset(
            "features", (rows, k), np.float32, chunks=(min(rows, 1024), k), **make
        )
        self.y = self.f.create_dataset(
            "label", (rows,), np.int64, chunks=(min(rows, 65_536),), **make
        )
        self.ptr = g.create_dataset(
            "indptr", (rows + 1,), np.int64, chunks=(min(rows + 1, 65_536),), **make
        )
        self.ind = g.create_dataset(
            "indices", (0,), np.int32, maxshape=(None,), chunks=(65_536,), **make
        )
        self.ptr[0] = 0
        self.row = self.nnz = 0

    def append(self, c: dict[str, np.ndarray]) -> None:
        n, m, r = len(c["label"]), len(c["indices"]), self.row
        self.x[r : r + n] = c["features"]
        self.y[r : r + n] = c["label"]
        self.ptr[r + 1 : r + n + 1] = c["indptr"][1:] + self.nnz
        self.ind.resize((self.nnz + m,))
        self.ind[self.nnz : self.nnz + m] = c["indices"]
        self.row += n
        self.nnz += m

    def close(self) -> None:
        self.f.close()


class _ParquetWriter(Writer):
    def __init__(self, paths: dict[str, Path], rows: int, names: tuple[str, ...], dim: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.schema = pa.schema(
            [(n, pa.float32()) for n in names]
            + [("label", pa.int64()), ("tokens", pa.list_(pa.int32()))]
        )
        self.w = pq.ParquetWriter(partial(paths["parquet"]), self.schema)

    def append(self, c: dict[str, np.ndarray]) -> None:
        import pyarrow as pa

        table = pa.Table.from_arrays(_arrow_columns(c), schema=self.schema)
        self.w.write_table(table, row_group_size=len(c["label"]))  # one row group per chunk

    def close(self) -> None:
        self.w.close()


WRITERS: dict[str, type[Writer]] = {
    "csv": _CsvWriter,
    "npy": _NpyWriter,
    "hdf5": _Hdf5Writer,
    "parquet": _ParquetWriter,
}
