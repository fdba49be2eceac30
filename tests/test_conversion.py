"""convert(): exact round trips, transforms, overwrite, resume, Dask, and bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from oracle import assert_columns_equal, read_dataset

import workbench as wb
from workbench.errors import (
    DatasetExistsError,
    DatasetNotFoundError,
    IncompatibleResumeError,
    InvalidInputError,
    TransformError,
    UnsafeInputError,
)
from workbench.format.catalog import read_manifest
from workbench.format.sparse import CSR

DTYPES = ["float32", "float64", "float16", "int8", "int32", "int64", "uint8", "uint16", "bool"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    dtype=st.sampled_from(DTYPES),
    row_shape=st.sampled_from([(), (1,), (3,), (2, 3)]),
    rows=st.integers(1, 300),
    shard_bytes=st.integers(1, 4096),
    chunk_rows=st.integers(1, 97),
    layout=st.sampled_from(["store", "hdf5", "parquet"]),
    data=st.data(),
)
def test_round_trip_is_exact(
    tmp_path_factory, dtype, row_shape, rows, shard_bytes, chunk_rows, layout, data
):
    x = data.draw(
        hnp.arrays(
            np.dtype(dtype),
            (rows, *row_shape),
            elements=hnp.from_dtype(np.dtype(dtype), allow_nan=False, allow_infinity=False),
        )
    )
    y = np.arange(rows, dtype=np.int64)
    dest = tmp_path_factory.mktemp("rt") / "d"
    m = wb.convert(
        {"x": x, "y": y},
        dest,
        format=layout,
        shard_bytes=shard_bytes,
        chunk_rows=chunk_rows,
        progress=False,
    )
    assert m.num_rows == rows
    assert all(s.rows > 0 for s in m.shards)
    assert_columns_equal(read_dataset(dest), {"x": x, "y": y})
    wb.verify(dest)


@pytest.mark.parametrize("values", [True, False])
def test_sparse_round_trip(tmp_path, layout, values):
    rng = np.random.default_rng(0)
    rows = [
        sorted(rng.choice(50, size=rng.integers(0, 6), replace=False).tolist()) for _ in range(500)
    ]
    vals = [rng.random(len(r)).astype("float32").tolist() for r in rows] if values else None
    csr = CSR.from_lists(rows, dim=50, values=vals, index_dtype="int32")
    x = rng.random((500, 4)).astype("float32")
    m = wb.convert(
        {"x": x, "tok": csr},
        tmp_path / "d",
        format=layout,
        shard_bytes=1500,
        chunk_rows=37,
        progress=False,
    )
    col = m.column("tok")
    assert col.sparse and col.shape == (50,) and col.has_values == values
    assert len(m.shards) > 3
    assert_columns_equal(read_dataset(tmp_path / "d"), {"x": x, "tok": csr})
    wb.verify(tmp_path / "d")


def test_store_shards_open_with_plain_numpy(tmp_path):
    x = np.arange(40_000, dtype="float32").reshape(-1, 4)
    wb.convert(x, tmp_path / "d", shard_bytes=32_000, progress=False)
    version, m = read_manifest(tmp_path / "d")
    first = np.load(version / m.shards[0].files[0].path, mmap_mode="r", allow_pickle=False)
    assert isinstance(first, np.memmap) and first.shape == (m.shards[0].rows, 4)
    np.testing.assert_array_equal(first, x[: m.shards[0].rows])


def test_shards_are_sized_by_bytes(tmp_path):
    x = np.zeros((10_000, 25), "float32")  # 100 bytes per row
    m = wb.convert(x, tmp_path / "d", shard_bytes=100_000, progress=False)
    assert [s.rows for s in m.shards] == [1000] * 10


def test_transform_runs_once_per_chunk_at_conversion(tmp_path):
    calls = []

    def add_norm(chunk):
        """Append the row norm."""
        calls.append(len(chunk["x"]))
        x = chunk["x"]
        return {"x": x, "norm": np.linalg.norm(x, axis=1).astype("float32")}

    x = np.random.default_rng(1).random((1000, 3)).astype("float32")
    m = wb.convert(x, tmp_path / "d", transform=add_norm, chunk_rows=100, progress=False)
    got = read_dataset(tmp_path / "d")
    np.testing.assert_allclose(got["norm"], np.linalg.norm(x, axis=1), rtol=1e-6)
    assert sum(calls[1:]) == 1000  # calls[0] is the schema probe on the first chunk
    assert m.transform["name"].endswith("add_norm") and m.transform["doc"] == "Append the row norm."


@pytest.mark.parametrize(
    "bad, msg",
    [
        (lambda c: {"x": c["x"].astype("float64") if c["x"][0, 0] >= 500 else c["x"]}, "float64"),
        (lambda c: {"x": c["x"][:, :2] if c["x"][0, 0] >= 500 else c["x"]}, "per row"),
        (lambda c: {"x": c["x"][:-1]}, "one output row per input row"),
        (lambda c: {"x": c["x"] / (c["x"] - c["x"])}, "NaN"),
        (lambda c: 1 / 0 if c["x"][0, 0] >= 500 else c, "ZeroDivisionError"),
    ],
)
def test_bad_transform_is_named_and_nothing_is_committed(tmp_path, bad, msg):
    x = np.repeat(np.arange(1000, dtype="float32")[:, None], 3, axis=1)
    with pytest.raises(TransformError, match=msg) as e:
        wb.convert(x, tmp_path / "d", transform=bad, chunk_rows=100, progress=False)
    assert "rows" in str(e.value) or "row" in str(e.value)
    with pytest.raises(DatasetNotFoundError):
        read_manifest(tmp_path / "d")
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_existing_dataset_needs_overwrite_and_is_replaced_atomically(tmp_path):
    wb.convert(np.zeros((10, 2), "float32"), tmp_path / "d", progress=False)
    with pytest.raises(DatasetExistsError, match="overwrite=True"):
        wb.convert(np.ones((10, 2), "float32"), tmp_path / "d", progress=False)
    wb.convert(np.ones((7, 2), "float32"), tmp_path / "d", overwrite=True, progress=False)
    assert read_dataset(tmp_path / "d")["x"].shape == (7, 2)
    assert [p.name for p in (tmp_path / "d").iterdir() if p.name.startswith("v-")].__len__() == 1


class _Interrupt(BaseException):
    """Stands in for a kill that Python code can see (KeyboardInterrupt-like)."""


def _interrupting(after_rows):
    def t(chunk):
        if chunk["x"][0, 0] >= after_rows:
            raise _Interrupt
        return chunk

    return t


@pytest.mark.parametrize("layout_", ["store", "parquet"])
def test_resume_equals_clean_run_and_reuses_finished_shards(tmp_path, layout_):
    x = np.repeat(np.arange(5000, dtype="float32")[:, None], 4, axis=1)
    npy = tmp_path / "x.npy"
    np.save(npy, x)
    kw = dict(format=layout_, shard_bytes=16 * 500, chunk_rows=100, progress=False)
    clean = wb.convert(npy, tmp_path / "clean", **kw)
    with pytest.raises(_Interrupt):
        wb.convert(npy, tmp_path / "d", transform=_interrupting(3000), **kw)
    partial = next((tmp_path / "d").glob("v-*.partial"))
    kept = sorted(partial.rglob("00000*"))
    assert kept, "finished shards must survive an interruption"
    inode = {p: p.stat().st_ino for p in kept}
    with pytest.raises(DatasetNotFoundError):
        read_manifest(tmp_path / "d")
    # a different transform is a different conversion: refused
    with pytest.raises(IncompatibleResumeError, match="transform"):
        wb.convert(npy, tmp_path / "d", resume=True, **kw)
    resumed = wb.convert(npy, tmp_path / "d", transform=_interrupting(10**9), resume=True, **kw)
    assert [s.files for s in resumed.shards] == [s.files for s in clean.shards]
    version, _ = read_manifest(tmp_path / "d")
    for p, ino in inode.items():
        assert (version / p.relative_to(partial)).stat().st_ino == ino
    assert_columns_equal(read_dataset(tmp_path / "d"), {"x": x})


def test_resume_refuses_a_changed_source(tmp_path):
    npy = tmp_path / "x.npy"
    x = np.repeat(np.arange(3000, dtype="float32")[:, None], 4, axis=1)
    np.save(npy, x)
    kw = dict(shard_bytes=16 * 500, chunk_rows=100, progress=False, transform=_interrupting(2000))
    with pytest.raises(_Interrupt):
        wb.convert(npy, tmp_path / "d", **kw)
    np.save(npy, x + 0.5)
    with pytest.raises(IncompatibleResumeError, match="source changed"):
        wb.convert(npy, tmp_path / "d", resume=True, **kw)


def test_generator_source_streams_and_cannot_resume(tmp_path):
    def rows():
        for i in range(2500):
            yield {"x": np.full(3, i, "float32"), "y": i % 7}

    m = wb.convert(rows(), tmp_path / "d", target="y", shard_bytes=2000, progress=False)
    got = read_dataset(tmp_path / "d")
    np.testing.assert_array_equal(got["x"][:, 0], np.arange(2500))
    np.testing.assert_array_equal(got["y"], np.arange(2500) % 7)
    assert m.source["fingerprint"] is None
    with pytest.raises(IncompatibleResumeError, match="one-shot"):
        wb.convert(rows(), tmp_path / "e", resume=True, progress=False)


@pytest.fixture(scope="module")
def dask_client():
    client = wb.local_client(2)
    yield client
    from workbench.cluster import close_client

    close_client(client)


@pytest.mark.parametrize("splittable", [True, False])
def test_dask_conversion_equals_in_process(tmp_path, dask_client, splittable):
    x = np.random.default_rng(3).random((6000, 8)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    src = (lambda: str(tmp_path / "x.npy")) if splittable else (lambda: iter(list(x)))

    def double(chunk):
        return {"x": chunk["x"] * 2}

    kw = dict(shard_bytes=32 * 400, chunk_rows=250, transform=double, progress=False)
    local = wb.convert(src(), tmp_path / "local", **kw)
    remote = wb.convert(src(), tmp_path / "dask", client=dask_client, **kw)
    assert len(remote.shards) == 15
    assert [s.files for s in remote.shards] == [s.files for s in local.shards]
    assert_columns_equal(read_dataset(tmp_path / "dask"), {"x": x * 2})


def test_dask_task_errors_surface_and_commit_nothing(tmp_path, dask_client):
    x = np.zeros((3000, 2), "float32")

    def boom(chunk):
        raise ValueError("bad row")

    with pytest.raises(TransformError, match="bad row"):
        wb.convert(
            x, tmp_path / "d", transform=boom, client=dask_client, shard_bytes=800, progress=False
        )
    with pytest.raises(DatasetNotFoundError):
        read_manifest(tmp_path / "d")


@pytest.mark.parametrize(
    "source, err, fragment",
    [
        (lambda p: p / "missing.csv", FileNotFoundError, "missing.csv"),
        (lambda p: np.empty((0, 3), "float32"), InvalidInputError, "zero rows"),
        (lambda p: np.array([[1, "a"]], dtype=object), UnsafeInputError, "object"),
        (lambda p: np.array([[1.0, np.nan]], dtype="float32"), InvalidInputError, "NaN"),
        (lambda p: {"a": np.zeros(3), "b": np.zeros(4)}, InvalidInputError, "b"),
        (lambda p: iter([{"x": [0.0, 1.0]}, {"x": [0.0, 1.0, 2.0]}]), InvalidInputError, "x"),
    ],
)
def test_bad_inputs_name_the_problem_and_commit_nothing(tmp_path, source, err, fragment):
    with pytest.raises(err, match=fragment):
        wb.convert(source(tmp_path), tmp_path / "d", progress=False)
    with pytest.raises(DatasetNotFoundError):
        read_manifest(tmp_path / "d")


def test_bad_options_are_refused(tmp_path):
    with pytest.raises(InvalidInputError, match="format"):
        wb.convert(np.zeros((2, 2)), tmp_path / "d", format="zarr")
    with pytest.raises(InvalidInputError, match="nan"):
        wb.convert(np.zeros((2, 2)), tmp_path / "d", nan="drop")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not a workbench dataset"):
        wb.convert(np.zeros((2, 2)), tmp_path / "full", progress=False)
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_nan_allow_keeps_values(tmp_path):
    x = np.array([[1.0, np.nan], [np.inf, 2.0]], "float32")
    wb.convert(x, tmp_path / "d", nan="allow", progress=False)
    np.testing.assert_array_equal(read_dataset(tmp_path / "d")["x"], x)


def test_manifest_records_source_and_version(tmp_path):
    npy = tmp_path / "x.npy"
    np.save(npy, np.zeros((5, 2), "float32"))
    m = wb.convert(npy, tmp_path / "d", progress=False)
    assert str(npy) in m.source["description"] and m.source["fingerprint"]
    assert m.workbench_version == wb.__version__
    text = (read_manifest(tmp_path / "d")[0] / "manifest.json").read_text()
    assert "pickle" not in text and Path(npy).name in text


_PEAK_CHILD = """
import sys, workbench as wb
# small chunks so both inputs are many chunks long: memory must then depend on the chunk only
wb.convert(sys.argv[1], sys.argv[2], target="label", sparse={"tokens": 1000}, format=sys.argv[3],
           chunk_rows=4096, shard_bytes=8 << 20, progress=False)
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across fork+exec from the (big) test process
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
"""


@pytest.mark.parametrize("layout_", ["store", "parquet"])
def test_peak_memory_is_flat_when_the_input_grows_4x(tmp_path, layout_):
    import subprocess
    import sys

    from workbench.demo.data import make_demo

    peaks, sizes = [], []
    for rows in (100_000, 400_000):
        raw = make_demo(tmp_path / f"raw{rows}", rows=rows, formats=("csv",))
        sizes.append(raw.csv.stat().st_size)
        os.sync()  # dirty page cache of the fresh CSV otherwise shows up in the child's peak
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_CHILD, str(raw.csv), str(tmp_path / f"d{rows}"), layout_],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        peaks.append(int(out.stdout.split()[-1]) * 1024)
    grew_input = sizes[1] - sizes[0]
    grew_peak = peaks[1] - peaks[0]
    assert grew_input > 50e6
    # The input grows by ~60 MB; a reader that held the file would grow by more than that.
    assert grew_peak < 0.25 * grew_input, (peaks, sizes)


def test_durable_conversion_round_trips(tmp_path, layout):
    x = np.arange(300, dtype="float32").reshape(100, 3)
    wb.convert(x, tmp_path / "d", format=layout, durable=True, shard_bytes=400, progress=False)
    assert_columns_equal(read_dataset(tmp_path / "d"), {"x": x})
    assert wb.verify(tmp_path / "d").ok


# ---- CSV on a cluster: each worker parses its own byte range ----------------------------------

CSV_KW = dict(
    target="label",
    sparse={"tokens": 64},
    drop=["note"],
    shard_bytes=150 * 1000,
    chunk_rows=300,
    progress=False,
)


def _csv(
    path: Path,
    n: int,
    *,
    newline_from: int | None = None,
    bad: tuple[int, str] | None = None,
    crlf: bool = False,
) -> dict:
    """A CSV of ``n`` rows (quoted commas and quotes, blank lines here and there); rows from
    ``newline_from`` on hold quoted newlines; ``bad=(row, line)`` replaces a row. Returns the
    file line number of each row and the expected columns."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 3)).astype("float32")
    label = rng.integers(0, 5, n)
    lines, line_of, at = ["f0,f1,f2,label,tokens,note"], [], 2  # at: the next line's number
    for i in range(n):
        if i % 701 == 350:
            lines.append("")  # an empty line holds no row
            at += 1
        note = f'"a, ""b"" {i}"' if newline_from is None or i < newline_from else f'"x\ny {i}"'
        feats = ",".join(repr(float(v)) for v in x[i, :3])
        row = f"{feats},{label[i]},{i % 64} {(i * 7) % 64},{note}"
        if bad is not None and bad[0] == i:
            row = bad[1]
        line_of.append(at)
        lines.append(row)
        at += 1 + row.count("\n")
    path.write_bytes(("\r\n" if crlf else "\n").join(lines).encode() + b"\n")
    return {"line_of": line_of, "features": x, "label": label}


@pytest.mark.parametrize("crlf", [False, True])
def test_csv_on_two_workers_is_split_by_byte_range_and_equals_in_process(
    tmp_path, dask_client, crlf
):
    import warnings

    from workbench.conversion.jobs import shard_jobs
    from workbench.errors import PerformanceWarning
    from workbench.inputs import open_source

    csv = tmp_path / "in.csv"
    want = _csv(csv, 40_000, crlf=crlf)
    local = wb.convert(csv, tmp_path / "local", **CSV_KW)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)  # no fallback to one reader
        remote = wb.convert(csv, tmp_path / "dask", client=dask_client, **CSV_KW)
    assert len(remote.shards) >= 6
    assert [s.files for s in remote.shards] == [s.files for s in local.shards]  # same bytes
    got = read_dataset(tmp_path / "dask")
    assert_columns_equal(got, read_dataset(tmp_path / "local"))
    np.testing.assert_array_equal(got["features"], want["features"])
    np.testing.assert_array_equal(got["label"], want["label"])
    # the jobs the cluster ran carry byte ranges that tile the data, not rows read here
    src = open_source(str(csv), target="label", sparse={"tokens": 64}, drop=["note"])
    first = next(src.chunks(300))
    rows = local.options["shard_rows"]
    jobs = list(
        shard_jobs(
            src,
            None,
            first,
            {},
            local.columns,
            "store",
            tmp_path,
            {},
            rows,
            300,
            None,
            "error",
            str(csv),
            parallel=True,
        )
    )
    assert all(j.span is not None and not j.chunks for j in jobs) and len(jobs) == len(local.shards)
    assert jobs[0].span.begin == len(
        b"f0,f1,f2,label,tokens,note\r\n" if crlf else b"f0,f1,f2,label,tokens,note\n"
    )
    assert [j.span.end for j in jobs[:-1]] == [j.span.begin for j in jobs[1:]]
    assert jobs[-1].span.end == csv.stat().st_size
    assert [j.span.first_row for j in jobs] == list(range(0, 40_000, rows))


def test_csv_with_quoted_newlines_falls_back_to_one_reader_and_says_so(tmp_path, dask_client):
    from workbench.errors import PerformanceWarning

    csv = tmp_path / "notes.csv"
    want = _csv(csv, 40_000, newline_from=30_000)
    local = wb.convert(csv, tmp_path / "local", **CSV_KW)  # one reader copes with them too
    line = want["line_of"][30_000]
    rows = local.options["shard_rows"]
    with pytest.warns(
        PerformanceWarning,
        match=rf"notes\.csv: line {line}: a quoted field holds a "
        rf"newline.* rows from {30_000 // rows * rows} on are read by one reader",
    ):
        remote = wb.convert(csv, tmp_path / "dask", client=dask_client, **CSV_KW)
    assert [s.files for s in remote.shards] == [s.files for s in local.shards]
    got = read_dataset(tmp_path / "dask")
    np.testing.assert_array_equal(got["features"], want["features"])
    np.testing.assert_array_equal(got["label"], want["label"])


@pytest.mark.parametrize(
    "bad, match",
    [
        ('1.0,2.0,3.0,1,5 6,"n",extra', r"bad\.csv: .*line {line}: Expected 6 columns, got 7"),
        ('1.0,oops,3.0,1,5 6,"n"', r"bad\.csv: column 'f1': line {line}: .*'oops'"),
    ],
)
def test_malformed_csv_row_in_the_second_half_names_file_and_line_and_commits_nothing(
    tmp_path, dask_client, bad, match
):
    csv = tmp_path / "bad.csv"
    want = _csv(csv, 40_000, bad=(30_000, bad))  # past the first MiB, which is read at open
    dest = tmp_path / "d"
    with pytest.raises(InvalidInputError, match=match.format(line=want["line_of"][30_000])):
        wb.convert(csv, dest, client=dask_client, **CSV_KW)
    with pytest.raises(DatasetNotFoundError):
        wb.open_dataset(dest)
    assert not dest.exists() or not list(dest.iterdir())  # no shard written after the abort


def test_a_cluster_conversion_that_makes_one_shard_says_to_pass_smaller_shards(
    tmp_path, dask_client
):
    from workbench.errors import PerformanceWarning

    x = np.zeros((1000, 4), "float32")
    with pytest.warns(PerformanceWarning, match="unit of parallel work.*smaller shard_bytes"):
        wb.convert(x, tmp_path / "one", client=dask_client, progress=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        m = wb.convert(x, tmp_path / "many", client=dask_client, shard_bytes=4000, progress=False)
    assert len(m.shards) == 4
