"""An independent reader of committed datasets: the oracle for round-trip tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.format.catalog import read_manifest
from workbench.format.sparse import CSR, concat


def read_dataset(path: str | Path) -> dict[str, Any]:
    """Every column of a committed dataset, read with plain numpy / h5py / pyarrow."""
    version, m = read_manifest(path)
    parts: dict[str, list[Any]] = {c.name: [] for c in m.columns}
    for shard in m.shards:
        for c in m.columns:
            parts[c.name].append(_read_shard_column(version, m.layout, shard, c))
    return {
        c.name: (concat(parts[c.name]) if c.sparse else np.concatenate(parts[c.name]))
        for c in m.columns
    }


def _read_shard_column(version: Path, layout: str, shard: Any, c: Any) -> Any:
    if layout == "store":
        files = {f.part: version / f.path for f in shard.files if f.column == c.name}
        if not c.sparse:
            return np.load(files["data"], allow_pickle=False)
        vals = np.load(files["values"], allow_pickle=False) if c.has_values else None
        return CSR(
            np.load(files["indptr"], allow_pickle=False),
            np.load(files["indices"], allow_pickle=False),
            vals,
            c.shape[0],
        )
    (f,) = shard.files
    if layout == "hdf5":
        import h5py

        with h5py.File(version / f.path, "r") as h:
            if not c.sparse:
                return h[c.name][:]
            g = h[c.name]
            return CSR(
                g["indptr"][:],
                g["indices"][:],
                g["values"][:] if c.has_values else None,
                int(g.attrs["dim"]),
            )
    import pyarrow.parquet as pq

    t = pq.read_table(version / f.path)
    col = t.column(c.name).combine_chunks()
    if c.sparse:
        vals = None
        if c.has_values:
            vals = (
                t.column(c.name + ".values").combine_chunks().values.to_numpy(zero_copy_only=False)
            )
        return CSR(
            col.offsets.to_numpy().astype(np.int64),
            col.values.to_numpy(zero_copy_only=False),
            vals,
            c.shape[0],
        )
    if c.shape:
        return col.values.to_numpy(zero_copy_only=False).reshape(len(col), *c.shape)
    return col.to_numpy(zero_copy_only=False)


def assert_columns_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert sorted(got) == sorted(want)
    for k, w in want.items():
        g = got[k]
        if isinstance(w, CSR):
            assert isinstance(g, CSR)
            np.testing.assert_array_equal(g.to_dense(), w.to_dense())
        else:
            w = np.asarray(w)
            assert g.dtype == w.dtype, (k, g.dtype, w.dtype)
            np.testing.assert_array_equal(g, w)
