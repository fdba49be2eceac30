"""``as_dask``: a dense column of a store or hdf5 dataset as a lazy Dask array, from a path or
from the dataset ``open_dataset`` returned."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import workbench as wb
from workbench.datasets.daskarray import as_dask
from workbench.errors import InvalidInputError
from workbench.format.sparse import CSR

N = 600
X = np.random.default_rng(3).standard_normal((N, 3, 2)).astype(np.float32)
S = CSR.from_lists([[i % 7] for i in range(N)], 40)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daskarray")
    out = {}
    for fmt in ("store", "hdf5", "parquet"):
        out[fmt] = tmp / f"d.{fmt}"
        wb.convert(
            {"x": X, "s": S},
            out[fmt],
            format=fmt,
            shard_bytes=8000,
            hdf5_chunk_bytes=600,
            progress=False,
        )
    return out


@pytest.mark.parametrize("fmt", ["store", "hdf5"])
@pytest.mark.parametrize("given", ["path", "opened dataset"])
def test_a_dense_column_reads_back_lazily(converted, fmt, given):
    src = converted[fmt] if given == "path" else wb.open_dataset(converted[fmt], columns="x")
    arr = as_dask(src, "x", chunk_bytes=1000)
    assert arr.shape == X.shape and arr.numblocks[0] > 2
    np.testing.assert_array_equal(arr.compute(), X)
    np.testing.assert_array_equal(arr[250:260].compute(), X[250:260])
    assert len(pickle.dumps(arr)) < 50_000  # the graph holds file references, not data


def test_sparse_parquet_and_foreign_inputs_are_refused_by_name(converted, tmp_path):
    with pytest.raises(InvalidInputError, match="sparse"):
        as_dask(converted["store"], "s")
    with pytest.raises(InvalidInputError, match="parquet"):
        as_dask(converted["parquet"], "x")
    with pytest.raises(InvalidInputError, match="no column 'z'"):
        as_dask(converted["hdf5"], "z")
    with pytest.raises(InvalidInputError, match="foreign input"):
        as_dask(wb.open_dataset(X), "x")
