"""``convert`` and ``open_dataset`` accept exactly the same inputs: one kind table decides for both.

Every kind converts; the random-access kinds also open, with the same row count; the stream-only
kinds (CSV, iterables) are refused by ``open_dataset`` with an error that says to convert; what
neither reads is refused by both with the same error type.
"""

from __future__ import annotations

import gzip
import inspect
import os

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

import workbench as wb
from workbench.errors import InvalidInputError
from workbench.format.sparse import CSR
from workbench.inputs.kinds import KINDS, RANDOM_ACCESS, STREAM_ONLY, kind_of, resolve

N = 60


def _write(path, text):
    path.write_text(text)
    return str(path)


def _h5(path):
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(N * 2, dtype="float32").reshape(N, 2)
        f["y"] = np.arange(N)
    return str(path)


def _parquet_folder(t):
    for part in ("a=1", "a=2"):
        (t / "pq" / part).mkdir(parents=True)
        pq.write_table(
            pa.table({"x": np.arange(N // 2, dtype="float64")}), t / "pq" / part / "p.parquet"
        )
    return str(t / "pq")


def _memmap(t):
    np.save(t / "m.npy", np.arange(N * 3, dtype="float32").reshape(N, 3))
    return np.load(t / "m.npy", mmap_mode="r")


def _dataset(t):
    wb.convert({"x": np.ones((N, 2), "float32")}, t / "ds.store", progress=False)
    return str(t / "ds.store")


def _zarr(t, fmt=3, name="a.zarr"):
    zarr = pytest.importorskip("zarr")
    g = zarr.open_group(str(t / name), mode="w", zarr_format=fmt)
    g.create_array("x", shape=(N, 2), chunks=(16, 2), dtype="float32")[:] = np.ones((N, 2))
    g.create_array("y", shape=(N,), chunks=(25,), dtype="int64")[:] = np.arange(N)
    return g


def _zarr_zip(t):
    zarr = pytest.importorskip("zarr")
    store = zarr.storage.ZipStore(str(t / "z.zarr.zip"), mode="w")
    zarr.create_array(store, shape=(N, 3), chunks=(20, 3), dtype="float32")[:] = 1
    store.close()
    return str(t / "z.zarr.zip")


def _xarray(t, array=False):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset(
        {"t": (("time", "lat"), np.ones((N, 3), "float32")), "y": ("time", np.arange(N))},
        coords={"time": np.arange(N) * 10, "lat": [1.0, 2.0, 3.0]},
    )
    return ds["t"] if array else ds


def _csv_gz(t):
    with gzip.open(t / "d.tsv.gz", "wt") as f:
        f.write("a\tb\n" + "".join(f"{i}\t{i * 2}\n" for i in range(N)))
    return str(t / "d.tsv.gz")


INPUTS = {
    # id: (builder(tmp) -> input, kind)
    "csv": (
        lambda t: _write(t / "d.csv", "a,b\n" + "".join(f"{i},{i}\n" for i in range(N))),
        "csv",
    ),
    "tsv.gz": (_csv_gz, "csv"),
    "parquet-file": (
        lambda t: pq.write_table(pa.table({"x": np.arange(N)}), t / "p.pq") or str(t / "p.pq"),
        "parquet",
    ),
    "parquet-folder": (_parquet_folder, "parquet"),
    "npy": (lambda t: np.save(t / "a.npy", np.zeros((N, 4), "float32")) or str(t / "a.npy"), "npy"),
    "h5": (lambda t: _h5(t / "f.h5"), "hdf5"),
    "nc": (lambda t: _h5(t / "f.nc"), "hdf5"),
    "hdf-no-suffix": (lambda t: _h5(t / "hdfdata"), "hdf5"),
    "workbench-dataset": (_dataset, "dataset"),
    "zarr-v3-group-folder": (lambda t: _zarr(t) and str(t / "a.zarr"), "zarr"),
    "zarr-v2-group-folder": (lambda t: _zarr(t, 2) and str(t / "a.zarr"), "zarr"),
    "zarr-array-no-suffix": (lambda t: _zarr(t, 3, "plain") and str(t / "plain" / "x"), "zarr"),
    "zarr-zip": (_zarr_zip, "zarr"),
    "zarr-group-object": (lambda t: _zarr(t, 2), "zarr"),
    "zarr-array-object": (lambda t: _zarr(t)["x"], "zarr"),
    "xarray-dataset": (_xarray, "xarray"),
    "xarray-dataarray": (lambda t: _xarray(t, array=True), "xarray"),
    "xarray-over-zarr": (
        lambda t: (
            _xarray(t).to_zarr(str(t / "x.zarr"), mode="w", consolidated=False)
            and pytest.importorskip("xarray").open_zarr(str(t / "x.zarr"), consolidated=False)
        ),
        "xarray",
    ),
    "ndarray": (lambda t: np.zeros((N, 3), "float32"), "array"),
    "memmap": (_memmap, "array"),
    "tensor": (lambda t: torch.zeros(N, 2), "tensor"),
    "dask": (lambda t: pytest.importorskip("dask.array").ones((N, 2), chunks=(25, 2)), "dask"),
    "csr": (lambda t: CSR.from_lists([[i % 5] for i in range(N)], dim=5), "sparse"),
    "scipy": (
        lambda t: pytest.importorskip("scipy.sparse").random(
            N, 8, density=0.2, format="csr", dtype="float32"
        ),
        "sparse",
    ),
    "arrow": (lambda t: pa.table({"a": np.arange(N), "b": np.ones(N)}), "table"),
    "pandas": (
        lambda t: pytest.importorskip("pandas").DataFrame({"a": np.arange(N), "b": np.ones(N)}),
        "table",
    ),
    "dict": (lambda t: {"x": np.zeros((N, 2)), "y": np.arange(N)}, "dict"),
    "dict-of-npy-paths": (
        lambda t: np.save(t / "c.npy", np.arange(N)) or {"c": str(t / "c.npy")},
        "dict",
    ),
    "rows": (lambda t: [{"x": float(i), "y": i} for i in range(N)], "iterable"),
    "generator": (lambda t: (np.full((N // 3, 2), i, "float32") for i in range(3)), "iterable"),
}
NEITHER = {
    "xlsx": lambda t: _write(t / "sheet.xlsx", "PK not a table"),
    "object": lambda t: object(),
    "dask-dataframe": lambda t: pytest.importorskip("dask.dataframe").from_dict(
        {"a": np.arange(N)}, npartitions=2
    ),
    "empty-folder": lambda t: (t / "empty").mkdir(exist_ok=True) or str(t / "empty"),
}


def test_the_kind_table_is_one_partition():
    assert set(RANDOM_ACCESS) | set(STREAM_ONLY) == set(KINDS)
    assert not set(RANDOM_ACCESS) & set(STREAM_ONLY)
    assert {kind for _, kind in INPUTS.values()} == set(KINDS), "every kind needs an input here"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_each_kind_names_openers_that_resolve_and_take_its_options(name):
    kind = KINDS[name]
    assert kind.name == name
    assert kind.suffixes or kind.magic or kind.folder or kind.test, "kind_of could never return it"
    source = inspect.signature(resolve(kind.source)).parameters
    takes = {"key"} if kind.accepts_key else set()
    for option in (*kind.source_options, *takes):
        assert option in source, f"{kind.source} lacks {option}="
    if kind.dataset is None:
        assert not kind.accepts_sparse_dims and not kind.accepts_key and name in STREAM_ONLY
    else:
        dataset = inspect.signature(resolve(kind.dataset)).parameters
        assert ("key" in dataset) == kind.accepts_key, kind.dataset
        assert ("sparse_dims" in dataset) == kind.accepts_sparse_dims, kind.dataset
    for ref in (kind.source, kind.dataset, kind.inspect):
        assert ref is None or callable(resolve(ref)), ref


def test_every_kind_kind_of_returns_has_an_entry(tmp_path):
    for name, (builder, kind) in INPUTS.items():
        (tmp_path / name).mkdir()
        found = kind_of(builder(tmp_path / name))
        assert found == kind and found in KINDS, name


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_convert_and_open_dataset_agree(name, tmp_path):
    builder, kind = INPUTS[name]
    made = iter(range(3))

    def build():  # each call its own folder: generators are one-shot, files stay untouched
        folder = tmp_path / f"input{next(made)}"
        folder.mkdir()
        return builder(folder)

    assert kind_of(build()) == kind
    m = wb.convert(build(), tmp_path / "out.store", progress=False)
    assert m.num_rows == N
    if kind in RANDOM_ACCESS:
        ds = wb.open_dataset(build())
        assert len(ds) == N
        assert len(ds.get_batch([0, N - 1])[ds.columns[0]]) == 2
    else:
        with pytest.raises(InvalidInputError, match=r"convert it first: wb\.convert"):
            wb.open_dataset(build())


@pytest.mark.parametrize("name", sorted(NEITHER))
def test_what_neither_reads_is_refused_by_both_alike(name, tmp_path):
    errors = []
    for call in (lambda x: wb.convert(x, tmp_path / "o.store", progress=False), wb.open_dataset):
        with pytest.raises((InvalidInputError, FileNotFoundError)) as info:
            call(NEITHER[name](tmp_path))
        errors.append(info.value)
    assert isinstance(errors[0], FileNotFoundError) == isinstance(errors[1], FileNotFoundError)
    assert not (tmp_path / "o.store").exists() or not os.listdir(tmp_path / "o.store")


def test_a_missing_path_is_not_found_for_both(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        wb.convert(tmp_path / "nope.h5", tmp_path / "o.store", progress=False)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        wb.open_dataset(tmp_path / "nope.h5")


@pytest.mark.parametrize("key", [None, "train", "x", ["x", "labels/y"]])
def test_an_hdf5_key_means_the_same_to_both(tmp_path, key):
    path = tmp_path / "k.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(40, dtype="float32").reshape(20, 2)
        f["labels/y"] = np.arange(20)
        f["train/x"] = np.ones((8, 2), "float32")
        f["train/y"] = np.arange(8)
        f["notes"] = np.float64(1.0)  # a scalar: metadata, never a column
    if key is None:  # the top level holds x (20 rows) and the groups: only x is a column
        want = {"x": 20}
    elif key == "train":
        want = {"x": 8, "y": 8}
    elif key == "x":
        want = {"x": 20}
    else:
        want = {"x": 20, "y": 20}
    m = wb.convert(str(path), tmp_path / "o.store", key=key, progress=False)
    ds = wb.open_dataset(path, key=key)
    assert sorted(c.name for c in m.columns) == sorted(ds.columns) == sorted(want)
    assert m.num_rows == len(ds) == next(iter(want.values()))
    for name in want:
        np.testing.assert_array_equal(
            ds.get_batch(list(range(len(ds))))[name].numpy(),
            wb.open_dataset(tmp_path / "o.store").get_batch(list(range(len(ds))))[name].numpy(),
        )


def test_a_workbench_dataset_converts_to_another_layout(tmp_path):
    rows = [[i % 9, (i * 7) % 9] for i in range(300)]
    src = {
        "x": np.random.default_rng(0).standard_normal((300, 4)).astype("float32"),
        "tok": CSR.from_lists(rows, dim=9),
        "y": np.arange(300),
    }
    wb.convert(src, tmp_path / "a.store", target="y", shard_bytes=4000, progress=False)
    m = wb.convert(
        tmp_path / "a.store",
        tmp_path / "b.parquet",
        format="parquet",
        drop=["x"],
        target="y",
        progress=False,
    )
    assert m.layout == "parquet" and [c.name for c in m.columns] == ["tok", "y"] and m.target == "y"
    assert "workbench dataset" in m.source["description"]
    got = wb.open_dataset(tmp_path / "b.parquet").get_batch(list(range(300)))
    np.testing.assert_array_equal(got["tok"].numpy(), src["tok"].to_dense())
    np.testing.assert_array_equal(got["y"].numpy(), src["y"])
    with pytest.raises(InvalidInputError, match="sparse= does not apply"):
        wb.convert(tmp_path / "a.store", tmp_path / "c.store", sparse={"tok": 9}, progress=False)


INSPECTED = sorted(name for name, (_, kind) in INPUTS.items() if KINDS[kind].inspect is not None)


def test_every_inspect_reference_resolves_to_a_path_or_obj_key_reader():
    refs = {name: k.inspect for name, k in KINDS.items() if k.inspect is not None}
    assert {"dataset", "npy", "hdf5", "parquet", "zarr", "xarray"} <= set(refs)
    for name, ref in refs.items():
        assert list(inspect.signature(resolve(ref)).parameters)[1:] == ["key"], (name, ref)


@pytest.mark.parametrize("name", INSPECTED)
def test_wb_inspect_reads_each_kind_with_an_inspector(name, tmp_path):
    builder, kind = INPUTS[name]
    ins = wb.inspect(builder(tmp_path))
    assert isinstance(ins, wb.Inspection) and ins.arrays, name
    assert ins.kind in ({"array", "memmap"} if kind == "array" else {kind}), name


@pytest.mark.parametrize("name", sorted(set(INPUTS) - set(INSPECTED)))
def test_wb_inspect_refuses_each_kind_without_one(name, tmp_path):
    with pytest.raises(InvalidInputError, match="inspect (reads no|cannot read)"):
        wb.inspect(INPUTS[name][0](tmp_path))


def test_a_folder_of_only_a_crashed_conversion_is_refused_by_inspect(tmp_path):
    (tmp_path / "crashed" / "v-1.partial").mkdir(parents=True)
    assert kind_of(tmp_path / "crashed") == "dataset"
    with pytest.raises(InvalidInputError, match="crashed: inspect reads no dataset files"):
        wb.inspect(tmp_path / "crashed")
