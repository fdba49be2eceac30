"""xarray DataArray / Dataset inputs over memory, Dask, Zarr and NetCDF (h5netcdf): both entry
points read the values xarray reads, blocks follow the encoding's chunks, worker processes reopen
the files, and inspect / preview show dimension names and coordinates as xarray has them."""

from __future__ import annotations

import numpy as np
import pytest

import workbench as wb
from workbench.errors import InvalidInputError

xr = pytest.importorskip("xarray")

ROWS = 240
T = np.random.default_rng(0).random((ROWS, 3), dtype="float32")
Y = np.arange(ROWS, dtype="int64")


def _ds() -> object:
    return xr.Dataset(
        {
            "t": (("time", "lat"), T),
            "y": ("time", Y),
            "tt": (("lat", "time"), T.T.copy()),  # the row dimension second: transposed
            "name": ("lat", np.array(["a", "b", "c"])),  # no row dimension: not a column
        },
        coords={"time": np.arange(ROWS) * 10, "lat": [10.0, 20.0, 30.0]},
    )


def _opened(kind, tmp_path):
    ds = _ds()
    if kind == "memory":
        return ds
    if kind == "dask":
        return ds.chunk({"time": 60})
    if kind == "zarr":
        ds.drop_vars("name").to_zarr(
            tmp_path / "x.zarr", mode="w", encoding={"t": {"chunks": (40, 3)}}, consolidated=False
        )
        return xr.open_zarr(tmp_path / "x.zarr", consolidated=False)
    pytest.importorskip("h5netcdf")
    ds.drop_vars("name").to_netcdf(
        tmp_path / "x.nc", engine="h5netcdf", encoding={"t": {"chunksizes": (30, 3)}}
    )
    return xr.open_dataset(tmp_path / "x.nc", engine="h5netcdf")


KINDS = ["memory", "dask", "zarr", "netcdf"]


@pytest.mark.parametrize("kind", KINDS)
def test_both_entry_points_read_what_xarray_reads(kind, tmp_path):
    obj = _opened(kind, tmp_path)
    ds = wb.open_dataset(obj)
    assert sorted(ds.columns) == ["t", "tt", "y"] and len(ds) == ROWS and ds.row_dim == "time"
    rows = np.random.default_rng(1).permutation(ROWS)[:100]
    got = ds.get_batch(rows)
    np.testing.assert_array_equal(got["t"].numpy(), obj["t"].values[rows])
    np.testing.assert_array_equal(got["tt"].numpy(), obj["tt"].transpose("time", "lat")[rows])
    np.testing.assert_array_equal(got["y"].numpy(), Y[rows])
    m = wb.convert(obj, tmp_path / "o.store", target="y", progress=False)
    out = wb.open_dataset(tmp_path / "o.store").get_batch(np.arange(ROWS))
    np.testing.assert_array_equal(out["t"].numpy(), T)
    assert m.target == "y" and m.num_rows == ROWS


@pytest.mark.parametrize("kind", KINDS)
def test_blocks_follow_the_storage_chunks_along_the_rows(kind, tmp_path):
    ds = wb.open_dataset(_opened(kind, tmp_path), columns=["t"])
    want = {"memory": ROWS, "dask": 60, "zarr": 40, "netcdf": 30}[kind]
    assert ds.block_rows == want and sum(ds.shard_rows) == ROWS


@pytest.mark.parametrize("kind", ["zarr", "netcdf"])
def test_worker_processes_reopen_the_files(kind, tmp_path):
    ds = wb.open_dataset(_opened(kind, tmp_path), columns=["t", "y"])
    ds.get_batch([0])  # the parent holds the file open (netCDF: in xarray's file cache)
    got = [
        b["y"].numpy().copy()
        for b in wb.loader(ds, batch_size=32, shuffle="full", num_workers=2, worker_type="process")
    ]
    np.testing.assert_array_equal(np.sort(np.concatenate(got)), Y)


@pytest.mark.parametrize("chunks", [None, {}], ids=["lazy", "dask"])
def test_an_http_zarr_store_is_opened_again_in_forked_workers(tmp_path, chunks):
    from test_remote import Server

    _opened("zarr", tmp_path)  # writes x.zarr
    server = Server(tmp_path)
    try:
        obj = xr.open_zarr(f"{server.url}/x.zarr", consolidated=False, chunks=chunks)
        ds = wb.open_dataset(obj, columns=["t", "y"])
        ds.get_batch([0])  # the parent's fsspec loop is running: it cannot cross fork
        got = [
            b["y"].numpy().copy()
            for b in wb.loader(ds, batch_size=48, shuffle="full", num_workers=2,
                               worker_type="process", timeout=60)
        ]  # fmt: skip
        np.testing.assert_array_equal(np.sort(np.concatenate(got)), Y)
    finally:
        server.stop()


def test_a_dataarray_is_one_column_along_its_first_dimension():
    a = xr.DataArray(T, dims=("time", "lat"), name="temp", coords={"time": np.arange(ROWS)})
    ds = wb.open_dataset(a)
    assert ds.columns == ("temp",) and ds.dims == {"temp": ("time", "lat")}
    np.testing.assert_array_equal(ds.get_batch([3])["temp"].numpy(), T[3:4])
    assert wb.open_dataset(a.rename(None)).columns == ("x",)


@pytest.mark.parametrize("kind", ["zarr", "netcdf", "dask"])
def test_inspect_shows_dims_coordinates_and_the_encodings_chunks(kind, tmp_path):
    obj = _opened(kind, tmp_path)
    ins = wb.inspect(obj)
    assert ins.kind == "xarray" and "along 'time'" in ins.title
    facts = {a.name: a for a in ins.arrays}
    assert facts["t"].storage["dims"] == obj["t"].dims
    assert facts["tt"].storage["dims"] == ("time", "lat")  # as the rows read it
    assert facts["t"].shape == obj["t"].shape and facts["t"].logical_bytes == obj["t"].nbytes
    enc = obj["t"].encoding
    if kind == "zarr":
        assert facts["t"].storage["zarr chunks"] == enc["chunks"] == (40, 3)
        assert facts["t"].unit == "zarr chunk" and facts["t"].unit_rows == 40
    elif kind == "netcdf":
        assert facts["t"].storage["hdf5 chunks"] == enc["chunksizes"] == (30, 3)
        assert facts["t"].unit == "hdf5 chunk" and facts["t"].unit_rows == 30
    else:
        assert facts["t"].storage["dask chunks"] == (60, 3) and facts["t"].unit == "dask chunk"
    for name, c in obj.coords.items():
        assert any(n.startswith(f"coordinate {name} ({name})") for n in ins.notes)
    assert any(
        n.endswith(f"{obj['time'].values[0]} .. {obj['time'].values[-1]}") for n in ins.notes
    )


def test_preview_shows_the_row_coordinates_beside_the_columns(tmp_path):
    obj = _opened("zarr", tmp_path)
    p = wb.preview(obj, n=4, random=True, seed=2)
    assert p.kinds["time"] == "coordinate" and p.dims["t"] == ("time", "lat")
    np.testing.assert_array_equal(np.stack(p.columns["time"]), obj["time"].values[p.indices])
    np.testing.assert_array_equal(np.stack(p.columns["t"]), T[p.indices])
    assert p.source.startswith("xarray Dataset (time: 240, lat: 3)")
    assert "time=" in str(p)
    s = wb.stats(obj, progress=False)
    np.testing.assert_allclose(s.columns["t"]["mean"], T.mean(axis=0), rtol=1e-5)


def test_a_non_numeric_variable_is_refused_by_name():
    ds = xr.Dataset({"s": ("time", np.array(["a"] * 5)), "v": ("time", np.arange(5.0))})
    with pytest.raises(InvalidInputError, match="variable 's' is not numeric"):
        wb.open_dataset(ds)
    assert wb.open_dataset(ds, columns=["v"]).columns == ("v",)
