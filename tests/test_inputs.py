"""workbench.inputs: every input kind read back exactly, resumable with start=, refused clearly."""

from __future__ import annotations

import gzip
import pickle

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
import torch

from workbench.errors import InvalidInputError, SourceNotFoundError, UnsafeInputError
from workbench.format.chunks import concat_chunks
from workbench.format.sparse import CSR
from workbench.inputs import open_source
from workbench.inputs.base import Source
from workbench.inputs.iterables import detect
from workbench.inputs.tabular import FEATURES

RNG = np.random.default_rng(0)


def collect(src: Source, chunk_rows: int, start: int = 0) -> dict:
    """Concatenate every chunk, checking first_row continuity and chunk-size bounds."""
    parts, expect = [], start
    for first, chunk in src.chunks(chunk_rows, start=start):
        assert first == expect
        n = {len(v) for v in chunk.values()}
        assert len(n) == 1
        expect += n.pop()
        parts.append(chunk)
    sizes = [len(next(iter(p.values()))) for p in parts]
    assert all(s == chunk_rows for s in sizes[:-1]) and 0 < sizes[-1] <= chunk_rows
    return concat_chunks(parts)


def assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for k, w in want.items():
        g = got[k]
        if isinstance(w, CSR):
            assert isinstance(g, CSR) and g.dim == w.dim
            g, w = g.compact(), w.compact()
            np.testing.assert_array_equal(g.indptr, w.indptr)
            np.testing.assert_array_equal(g.indices, w.indices)
            if w.values is None:
                assert g.values is None
            else:
                np.testing.assert_array_equal(g.values, w.values)
        else:
            assert g.dtype == w.dtype, k
            np.testing.assert_array_equal(g, w)


def sl(chunk: dict, a: int, b: int) -> dict:
    return {
        k: (v.slice(a, b).compact() if isinstance(v, CSR) else v[a:b]) for k, v in chunk.items()
    }


def check_source(src: Source, want: dict, n: int) -> None:
    """The full contract for a source whose content is ``want`` (n rows)."""
    for rows in (7, n + 5):
        assert_same(collect(src, rows), want)
    assert_same(collect(src, 4, start=13), sl(want, 13, n))
    assert list(src.chunks(4, start=n)) == []
    if src.splittable:
        assert_same(src.read(5, 23), sl(want, 5, 23))
        assert_same(src.read(0, n), want)
        clone = pickle.loads(pickle.dumps(src))
        assert len(pickle.dumps(src)) < 20_000
        assert_same(clone.read(3, 9), sl(want, 3, 9))


# ---- tabular ------------------------------------------------------------------------------------

N = 50


def table_data(n: int = N):
    a = RNG.integers(-100, 100, n)
    b = RNG.normal(size=n).round(3)
    label = RNG.integers(0, 3, n)
    tokens = [sorted(RNG.choice(20, RNG.integers(0, 4), replace=False).tolist()) for _ in range(n)]
    want = {
        FEATURES: np.stack([a, b], 1).astype("float32"),
        "label": label.astype("int64"),
        "tokens": CSR.from_lists(tokens, 20),
    }
    return a, b, label, tokens, want


@pytest.mark.parametrize("name", ["d.csv", "d.csv.gz", "d.tsv"])
def test_csv_round_trip(tmp_path, name):
    a, b, label, tokens, want = table_data()
    sep = "\t" if ".tsv" in name else ","
    text = f"a{sep}b{sep}label{sep}tokens\n" + "".join(
        f"{x}{sep}{y}{sep}{z}{sep}{' '.join(map(str, t))}\n"
        for x, y, z, t in zip(a, b, label, tokens)
    )
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    src = open_source(str(path), target="label", sparse={"tokens": 20})
    assert src.feature_names == {FEATURES: ("a", "b")}
    assert src.path == str(path) and src.num_rows is None and not src.splittable
    assert "CSV" in src.description
    check_source(src, want, N)
    only_b = collect(open_source(path, columns=["b"], target="label"), 16)
    np.testing.assert_array_equal(only_b[FEATURES][:, 0], want[FEATURES][:, 1])
    dropped = open_source(path, drop=["tokens", "label"], dtype="float64")
    assert_same(collect(dropped, 9), {FEATURES: np.stack([a, b], 1).astype("float64")})


def test_csv_many_blocks_types_fixed_from_first_block(tmp_path):
    n = 150_000  # ~2.5 MB: several pyarrow blocks
    a = np.arange(n, dtype=np.float64)
    a[-1] = 0.5  # an int-looking column that turns float after the first block
    b = RNG.integers(0, 1000, n)
    path = tmp_path / "big.csv"
    pacsv.write_csv(pa.table({"a": a, "b": b}), path)
    text = path.read_text().replace('"', "")
    path.write_text(text.replace(".0\n", "\n"))
    src = open_source(path, target="b")
    got = collect(src, 40_000)
    np.testing.assert_array_equal(got[FEATURES][:, 0], a.astype("float32"))
    np.testing.assert_array_equal(got["b"], b)
    tail = collect(src, 40_000, start=n - 10)
    np.testing.assert_array_equal(tail["b"], b[-10:])


def test_csv_is_streamed_with_bounded_memory(tmp_path):
    import tracemalloc

    import psutil

    n = 1_000_000
    table = pa.table({f"c{i}": RNG.integers(0, 10_000, n) for i in range(8)})
    path = tmp_path / "big.csv"
    pacsv.write_csv(table, path)
    want = int(table["c0"].to_numpy().sum())
    del table
    size = path.stat().st_size
    assert size > 35e6
    src = open_source(path)
    proc = psutil.Process()
    arrow0 = pa.total_allocated_bytes()
    peak_rss = peak_arrow = rows = total = 0
    tracemalloc.start()  # sees NumPy buffers; Arrow's own pool is sampled separately
    try:
        for first, chunk in src.chunks(10_000):
            if first == 0:  # pyarrow's thread pools and allocator arenas cost a fixed ~50 MB once
                rss0 = proc.memory_info().rss
            rows += len(chunk[FEATURES])
            total += int(chunk[FEATURES][:, 0].astype(np.int64).sum())
            peak_rss = max(peak_rss, proc.memory_info().rss - rss0)
            peak_arrow = max(peak_arrow, pa.total_allocated_bytes() - arrow0)
        peak_numpy = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == n and total == want
    assert peak_arrow < size / 4, peak_arrow
    assert peak_numpy < size / 4, peak_numpy
    assert peak_rss < size, peak_rss  # loose: the allocator may keep freed blocks a while


def write_parquet(path, n, start=0, row_group_size=8):
    _, _, label, tokens, _ = table_data(n)
    emb = RNG.normal(size=(n, 3)).astype("float32")
    vals = [RNG.random(len(t)).astype("float32") for t in tokens]
    t = pa.table(
        {
            "a": np.arange(start, start + n),
            "b": RNG.normal(size=n),
            "flag": RNG.random(n) > 0.5,
            "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), 3),
            "tokens": pa.array(tokens, pa.list_(pa.int32())),
            "tokens.values": pa.array([v.tolist() for v in vals], pa.list_(pa.float32())),
            "label": label,
        }
    )
    pq.write_table(t, path, row_group_size=row_group_size, write_page_checksum=True)
    ip = np.concatenate([[0], np.cumsum([len(x) for x in tokens])])
    return {
        FEATURES: np.stack([t["a"].to_numpy(), t["b"].to_numpy(), t["flag"].to_numpy()], 1).astype(
            "float32"
        ),
        "emb": emb,
        "label": label.astype("int64"),
        "tokens": CSR(
            ip,
            np.array([i for x in tokens for i in x], "int64"),
            np.concatenate(vals).astype("float32"),
            20,
        ),
    }


def test_parquet_file_and_folder(tmp_path):
    want = write_parquet(tmp_path / "one.parquet", N)
    src = open_source(tmp_path / "one.parquet", target="label", sparse={"tokens": 20})
    assert src.splittable and src.num_rows == N
    assert list(src.block_offsets) == [*range(0, N, 8), N]  # row groups, for aligned splits
    assert src.feature_names == {FEATURES: ("a", "b", "flag")}
    check_source(src, want, N)

    folder = tmp_path / "parts"
    folder.mkdir()
    w1 = write_parquet(folder / "p0.parquet", 23, row_group_size=5)
    w2 = write_parquet(folder / "p1.parquet", 27, start=23, row_group_size=6)
    src = open_source(folder, target="label", sparse={"tokens": 20})
    assert "2 files" in src.description
    check_source(src, concat_chunks([w1, w2]), 50)


def test_arrow_table_and_pandas():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": np.arange(30), "b": np.linspace(0, 1, 30), "y": np.arange(30) % 2})
    want = {FEATURES: df[["a", "b"]].to_numpy("float32"), "y": df["y"].to_numpy("int64")}
    check_source(open_source(df, target="y"), want, 30)
    check_source(open_source(pa.Table.from_pandas(df), target="y"), want, 30)


# ---- arrays -------------------------------------------------------------------------------------


def test_npy_and_memmap(tmp_path):
    x = RNG.normal(size=(40, 3, 2)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    src = open_source(tmp_path / "x.npy")
    assert src.splittable and src.num_rows == 40 and src.path == str(tmp_path / "x.npy")
    check_source(src, {"x": x}, 40)
    np.save(tmp_path / "f.npy", np.asfortranarray(x))
    check_source(open_source(tmp_path / "f.npy"), {"x": x}, 40)
    view = np.load(tmp_path / "x.npy", mmap_mode="r")[10:]
    src = open_source(view)
    assert src.splittable  # re-opened from the file in another process, not pickled whole
    check_source(src, {"x": x[10:]}, 30)


def test_numpy_torch_sparse_dask():
    x = RNG.normal(size=(40, 4))
    src = open_source(x, dtype="float32")
    assert not src.splittable and src.fingerprint() == open_source(x.copy()).fingerprint()
    check_source(src, {"x": x.astype("float32")}, 40)
    check_source(open_source(torch.from_numpy(x)), {"x": x}, 40)
    m = sp.random(40, 30, density=0.2, format="csr", random_state=0, dtype=np.float32)
    check_source(open_source(m), {"x": CSR.from_scipy(m)}, 40)
    lists = CSR.from_lists([[1, 2]] * 40, 5)
    check_source(open_source(lists), {"x": lists}, 40)

    da = pytest.importorskip("dask.array")
    arr = da.from_array(x, chunks=(6, 4))
    src = open_source(arr)
    assert not src.splittable and src.fingerprint() == open_source(arr).fingerprint()
    check_source(src, {"x": x}, 40)


def test_dask_computes_each_block_once():
    da = pytest.importorskip("dask.array")
    x = np.arange(100.0)
    calls = []

    def spy(block):
        calls.append(len(block))
        return block

    arr = da.from_array(x, chunks=9).map_blocks(spy, dtype=x.dtype)
    src = open_source(arr)
    calls.clear()  # dask may probe the function on a tiny block when building the graph
    np.testing.assert_array_equal(collect(src, 20)["x"], x)
    assert sorted(calls) == sorted(arr.chunks[0])


def test_dict_of_mixed_columns(tmp_path):
    x = RNG.normal(size=(40, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    y = np.arange(40)
    m = sp.random(40, 10, density=0.3, format="csr", random_state=1)
    src = open_source(
        {
            "x": str(tmp_path / "x.npy"),
            "y": torch.from_numpy(y),
            "s": m,
            "t": [[i % 7] for i in range(40)],
        },
        target="y",
        sparse={"t": 7},
    )
    want = {
        "x": x,
        "y": y,
        "s": CSR.from_scipy(m),
        "t": CSR.from_lists([[i % 7] for i in range(40)], 7),
    }
    check_source(src, want, 40)
    assert "x" in src.description and src.fingerprint() is not None
    assert set(collect(open_source({"x": x, "y": y}, drop=["y"]), 8)) == {"x"}


def test_hdf5(tmp_path):
    path = tmp_path / "d.h5"
    x = RNG.normal(size=(40, 5)).astype("float32")
    y = np.arange(40)
    s = CSR.from_lists([[i % 9, 9] for i in range(40)], 10)
    with h5py.File(path, "w") as f:
        f["x"] = x
        f["grp/y"] = y
        g = f.create_group("s")
        g["indptr"], g["indices"] = s.indptr, s.indices
        g.attrs["dim"] = 10
        f["scalar"] = 3.0
    src = open_source(path)
    assert src.splittable and "HDF5" in src.description
    check_source(src, {"x": x, "s": s}, 40)
    check_source(open_source(path, key=["x", "grp/y"], target="y"), {"x": x, "y": y}, 40)
    check_source(open_source(path, key="grp/y"), {"y": y}, 40)


# ---- iterables ----------------------------------------------------------------------------------


def test_iterable_rows_and_batches():
    x = RNG.normal(size=(40, 3))
    y = np.arange(40)
    toks = [[i % 5, 5 + i % 3] for i in range(40)]
    want = {"x": x, "y": y, "t": CSR.from_lists(toks, 8)}
    rows = [{"x": x[i], "y": int(y[i]), "t": toks[i]} for i in range(40)]
    check_source(open_source(rows, target="y", sparse={"t": 8}), want, 40)
    gen = open_source((r for r in rows), target="y", sparse={"t": 8})
    assert gen.fingerprint() is None and not gen.splittable and gen.num_rows is None
    assert_same(collect(gen, 6), want)
    with pytest.raises(InvalidInputError, match="already read"):
        list(gen.chunks(6))

    batches = [{"x": x[i : i + 9], "y": torch.from_numpy(y[i : i + 9])} for i in range(0, 40, 9)]
    check_source(open_source(batches), {"x": x, "y": y}, 40)
    check_source(open_source([x[:25], x[25:]]), {"x": x}, 40)
    check_source(open_source(list(y)), {"x": y}, 40)
    check_source(open_source([tuple(r) for r in x]), {"x": x}, 40)
    check_source(
        open_source([x[i : i + 1] for i in range(40)], iterable="rows"), {"x": x[:, None]}, 40
    )
    sparse_rows = open_source(
        ({"s": sp.csr_matrix(x[i : i + 1] > 0)} for i in range(40)), sparse={"s": 3}
    )
    got = collect(sparse_rows, 7)["s"]
    np.testing.assert_array_equal(got.to_dense(), (x > 0).astype("float32"))


def test_detect_rule():
    assert detect({"x": np.ones(3), "y": np.ones(3)}) == "batches"
    assert detect({"x": np.ones(3), "y": 1}) == "rows"
    assert detect({"x": np.ones(3), "y": np.ones(4)}) == "rows"
    assert detect(np.ones((2, 3))) == "batches"
    assert detect(np.ones(3)) == "rows"
    assert detect((1, 2)) == "rows"
    assert detect(sp.eye(3, format="csr")) == "batches"


def test_fingerprint_tracks_file_content(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    fp = open_source(path).fingerprint()
    assert fp == open_source(path).fingerprint()
    path.write_text("a,b\n1,3\n")
    assert open_source(path).fingerprint() != fp


def test_csv_encoding_option(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("gr\xf6\xdfe,n\n1,2\n".encode("latin-1"))
    src = open_source(path, encoding="latin-1")
    assert src.feature_names[FEATURES] == ("gr\xf6\xdfe", "n")
    with pytest.raises(InvalidInputError, match="UTF-8"):
        open_source(_csv(tmp_path, "a,b\n1,\xe9t\xe9\n".encode("latin-1")))


def test_nan_allow(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,nan\n2,\n")
    got = collect(open_source(path, nan="allow"), 5)[FEATURES]
    assert np.isnan(got[:, 1]).all() and got[1, 0] == 2


# ---- bad inputs ---------------------------------------------------------------------------------


def _csv(tmp_path, text: str | bytes, name: str = "bad.csv") -> str:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


def _npy_object(tmp_path):
    p = tmp_path / "obj.npy"
    np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return str(p)


def _npy_truncated(tmp_path):
    p = tmp_path / "cut.npy"
    np.save(p, np.zeros((100, 10)))
    p.write_bytes(p.read_bytes()[:2000])
    return str(p)


def _parquet(tmp_path, table: pa.Table, name="bad.parquet"):
    p = tmp_path / name
    pq.write_table(table, p)
    return str(p)


def _h5(tmp_path):
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.zeros((10, 2))
        f["y"] = np.zeros(7)
    return str(p)


def _late_text(tmp_path):
    body = "".join(f"{i},{i}\n" for i in range(120_000))
    return _csv(tmp_path, "a,b\n" + body + "5,oops\n", "late.csv")


def _lying_dask():
    da = pytest.importorskip("dask.array")
    arr = da.from_array(np.arange(10.0), chunks=5)
    return arr.map_blocks(lambda b: b.astype("float32") if b[0] >= 5 else b, dtype="float64")


BAD = [
    # (id, builder(tmp_path) -> (obj, kwargs), error, substrings in the message)
    ("missing-file", lambda t: (str(t / "nope.csv"), {}), SourceNotFoundError, ["nope.csv"]),
    (
        "missing-folder",
        lambda t: (str(t / "nodir" / "x.parquet"), {}),
        SourceNotFoundError,
        ["nodir"],
    ),
    (
        "empty-folder",
        lambda t: ((t / "e").mkdir() or str(t / "e"), {}),
        SourceNotFoundError,
        ["no .parquet"],
    ),
    ("unknown-type", lambda t: (_csv(t, "x", "d.xlsx"), {}), InvalidInputError, ["d.xlsx", ".csv"]),
    (
        "csv-header-only",
        lambda t: (_csv(t, "a,b\n"), {}),
        InvalidInputError,
        ["bad.csv", "no rows"],
    ),
    ("csv-zero-bytes", lambda t: (_csv(t, ""), {}), InvalidInputError, ["bad.csv"]),
    (
        "csv-ragged",
        lambda t: (_csv(t, "a,b,c\n1,2,3\n4,5,6\n7,8\n"), {}),
        InvalidInputError,
        ["bad.csv", "line 4:", "Expected 3 columns"],
    ),
    (
        "csv-not-utf8",
        lambda t: (_csv(t, b"a,city\n1,M\xfcnchen\n"), {}),
        InvalidInputError,
        ["bad.csv", "'city'", "UTF-8"],
    ),
    (
        "csv-text-column",
        lambda t: (_csv(t, "a,city\n1,Paris\n"), {}),
        InvalidInputError,
        ["bad.csv", "'city'", "drop=['city']", "encode"],
    ),
    (
        "csv-date-column",
        lambda t: (_csv(t, "a,day\n1,2024-01-02\n"), {}),
        InvalidInputError,
        ["'day'", "drop=['day']"],
    ),
    (
        "csv-late-text",
        lambda t: (_late_text(t), {}),
        InvalidInputError,
        ["late.csv", "'b'", "oops", "line 120002"],
    ),
    (
        "csv-nan",
        lambda t: (_csv(t, "a,b\n1,2\n3,4\n5,nan\n"), {}),
        InvalidInputError,
        ["bad.csv", "row 2", "'b'", "nan='allow'"],
    ),
    ("csv-missing", lambda t: (_csv(t, "a,b\n1,2\n,4\n"), {}), InvalidInputError, ["row 1", "'a'"]),
    (
        "csv-inf-target",
        lambda t: (_csv(t, "a,y\n1,2.5\n3,inf\n"), {"target": "y"}),
        InvalidInputError,
        ["row 1", "'y'"],
    ),
    (
        "csv-int-target-null",
        lambda t: (_csv(t, "a,y\n1,2\n3,\n"), {"target": "y"}),
        InvalidInputError,
        ["row 1", "'y'", "fill or drop"],
    ),
    (
        "csv-no-target",
        lambda t: (_csv(t, "a,b\n1,2\n"), {"target": "label"}),
        InvalidInputError,
        ["bad.csv", "'label'", "['a', 'b']"],
    ),
    (
        "csv-bad-drop",
        lambda t: (_csv(t, "a,b\n1,2\n"), {"drop": ["zz"]}),
        InvalidInputError,
        ["zz", "'a'"],
    ),
    (
        "csv-sparse-range",
        lambda t: (_csv(t, "a,tok\n1,3 4\n2,\n3,1 10\n"), {"sparse": {"tok": 10}}),
        InvalidInputError,
        ["bad.csv", "row 2", "'tok'", "10"],
    ),
    (
        "csv-sparse-token",
        lambda t: (_csv(t, "a,tok\n1,3 4\n2,1 x\n"), {"sparse": {"tok": 10}}),
        InvalidInputError,
        ["row 1", "'tok'", "'x'"],
    ),
    (
        "parquet-undeclared-list",
        lambda t: (_parquet(t, pa.table({"tags": [[1], [2, 3]]})), {}),
        InvalidInputError,
        ["bad.parquet", "'tags'", "sparse={'tags'"],
    ),
    (
        "parquet-text",
        lambda t: (_parquet(t, pa.table({"a": [1], "s": ["x"]})), {}),
        InvalidInputError,
        ["'s'", "drop=['s']"],
    ),
    (
        "parquet-truncated",
        lambda t: (_csv(t, b"PAR1" + b"\0" * 50, "cut.parquet"), {}),
        InvalidInputError,
        ["cut.parquet"],
    ),
    (
        "parquet-no-rows",
        lambda t: (_parquet(t, pa.table({"a": pa.array([], pa.int64())})), {}),
        InvalidInputError,
        ["bad.parquet", "no rows"],
    ),
    ("npy-object", lambda t: (_npy_object(t), {}), UnsafeInputError, ["obj.npy"]),
    (
        "npy-truncated",
        lambda t: (_npy_truncated(t), {}),
        InvalidInputError,
        ["cut.npy", "truncated"],
    ),
    (
        "npy-empty",
        lambda t: (np.save(t / "e.npy", np.zeros((0, 3))) or str(t / "e.npy"), {}),
        InvalidInputError,
        ["e.npy", "zero rows"],
    ),
    (
        "array-object",
        lambda t: (np.array([1, "a", None], dtype=object), {}),
        UnsafeInputError,
        ["in-memory array", "'x'"],
    ),
    ("array-strings", lambda t: (np.array(["a", "b"]), {}), InvalidInputError, ["'x'", "numbers"]),
    (
        "array-nan",
        lambda t: (np.array([[1.0, 2.0], [3.0, np.nan]]), {}),
        InvalidInputError,
        ["in-memory array", "row 1", "x[1]"],
    ),
    (
        "dict-lengths",
        lambda t: ({"x": np.zeros(5), "y": np.zeros(4)}, {}),
        InvalidInputError,
        ["'y'", "4 rows", "5"],
    ),
    (
        "dict-no-target",
        lambda t: ({"x": np.zeros(5)}, {"target": "y"}),
        InvalidInputError,
        ["'y'", "['x']"],
    ),
    (
        "dask-lying-block",
        lambda t: (_lying_dask(), {}),
        InvalidInputError,
        ["row 5", "float32", "float64"],
    ),
    (
        "h5-wrong-key",
        lambda t: (_h5(t), {"key": "z"}),
        SourceNotFoundError,
        ["bad.h5", "'z'", "'x'", "'y'"],
    ),
    ("h5-lengths", lambda t: (_h5(t), {}), InvalidInputError, ["bad.h5", "key="]),
    ("key-not-h5", lambda t: (np.zeros(3), {"key": "x"}), InvalidInputError, ["HDF5"]),
    (
        "rows-shape",
        lambda t: ([{"x": np.ones(3)}] * 5 + [{"x": np.ones(4)}], {"iterable": "rows"}),
        InvalidInputError,
        ["iterable", "row 5", "'x'", "(3,)", "(4,)"],
    ),
    (
        "rows-dtype",
        lambda t: ([{"y": 1}] * 3 + [{"y": 1.5}], {}),
        InvalidInputError,
        ["iterable", "row 3", "'y'", "int64", "float64"],
    ),
    (
        "rows-keys",
        lambda t: ([{"x": 1, "y": 2}, {"x": 1}], {}),
        InvalidInputError,
        ["row 1", "['x']"],
    ),
    (
        "rows-nan",
        lambda t: ([{"x": 1.0}, {"x": float("nan")}], {}),
        InvalidInputError,
        ["row 1", "'x'"],
    ),
    ("rows-object", lambda t: ([{"x": object()}], {}), UnsafeInputError, ["iterable", "'x'"]),
    (
        "batches-dtype",
        lambda t: ([np.zeros((4, 2), "float32"), np.zeros((4, 2))], {}),
        InvalidInputError,
        ["iterable", "row 4", "'x'", "float32", "float64"],
    ),
    (
        "batches-lengths",
        lambda t: (
            [{"x": np.zeros((4, 2)), "y": np.zeros(4)}, {"x": np.zeros((4, 2)), "y": np.zeros(3)}],
            {"iterable": "batches"},
        ),
        InvalidInputError,
        ["iterable", "4", "different lengths"],
    ),
    ("iterable-empty", lambda t: (iter([]), {}), InvalidInputError, ["iterable", "nothing"]),
    ("bad-nan-option", lambda t: (np.zeros(3), {"nan": "skip"}), InvalidInputError, ["nan='skip'"]),
]


@pytest.mark.parametrize("build,error,words", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs(tmp_path, build, error, words):
    obj, kwargs = build(tmp_path)
    with pytest.raises(error) as info:
        src = open_source(obj, **kwargs)
        for _ in src.chunks(4):
            pass
    msg = str(info.value)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def test_bad_chunk_is_refused_before_it_is_returned(tmp_path):
    path = _csv(tmp_path, "a\n" + "1\n" * 10 + "nan\n")
    seen = []
    with pytest.raises(InvalidInputError, match="row 10"):
        for first, _ in open_source(path).chunks(4):
            seen.append(first)
    assert seen == [0, 4]


def test_a_fortran_ordered_npy_warns_and_still_reads_right(tmp_path):
    import warnings

    from workbench.errors import PerformanceWarning, WorkbenchWarning

    a = np.asfortranarray(np.arange(200, dtype="float32").reshape(50, 4))
    np.save(tmp_path / "f.npy", a)
    with pytest.warns(PerformanceWarning, match="f.npy.*Fortran order.*ascontiguousarray"):
        src = open_source(str(tmp_path / "f.npy"))
    np.testing.assert_array_equal(src.read(10, 20)["x"], a[10:20])
    with pytest.warns(WorkbenchWarning):
        import workbench as wb

        np.testing.assert_array_equal(
            wb.open_dataset(tmp_path / "f.npy").get_batch([3, 1])["x"].numpy(), a[[3, 1]]
        )
    np.save(tmp_path / "c.npy", np.ascontiguousarray(a))
    with warnings.catch_warnings():
        warnings.simplefilter("error", WorkbenchWarning)
        open_source(str(tmp_path / "c.npy"))


# ---- CSV byte ranges for parallel readers (inputs.csvsplit) -----------------------------------


def _random_csv(seed: int) -> bytes:
    import random

    r = random.Random(seed)
    nl = r.choice(["\n", "\r\n"])
    lines = ["a,b"]
    for i in range(r.randint(1, 60)):
        if r.random() < 0.15:
            lines.append("")  # pyarrow skips empty lines: no row
        lines.append(f"{i}," + r.choice(["x", "yy", '"q,q"', '"a""b"', '""']))
    tail = (nl if r.random() < 0.7 else "") + (nl * r.randint(1, 2) if r.random() < 0.3 else "")
    return (nl.join(lines) + tail).encode()


@pytest.mark.parametrize("seed", range(60))
def test_csv_spans_hold_exactly_the_rows_pyarrow_reads(tmp_path, seed):
    """Every span starts where the last ended, holds `rows` rows (the last: the rest), and the
    spans parsed one by one give pyarrow's whole-file read; blank lines, CRLF and quoted
    commas/quotes included; any block size (a row can straddle two scan blocks)."""
    import io
    import random

    from workbench.inputs.csvsplit import header_end, spans

    TYPES = {"a": pa.int64(), "b": pa.string()}
    data = _random_csv(seed)
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    r = random.Random(seed)
    rows = r.randint(1, 7)
    start, line = header_end(str(path))
    plan = spans(str(path), start, line, rows=rows, block=r.randint(1, 40))
    got, edge = [], start
    while True:
        try:
            s = next(plan)
        except StopIteration as stop:
            assert stop.value is None
            break
        assert s.begin == edge and data[: s.begin].count(b"\n") + 1 == s.first_line
        edge = s.end
        part = pacsv.read_csv(
            io.BytesIO(data[s.begin : s.end]),
            read_options=pacsv.ReadOptions(column_names=["a", "b"]),
            convert_options=pacsv.ConvertOptions(column_types=TYPES),
        )
        assert part.num_rows == s.rows
        got.append(part)
    whole = pacsv.read_csv(
        io.BytesIO(data), convert_options=pacsv.ConvertOptions(column_types=TYPES)
    )
    assert pa.concat_tables(got).to_pydict() == whole.to_pydict()
    assert all(t.num_rows == rows for t in got[:-1])


@pytest.mark.parametrize(
    "body, line, reason",
    [
        (b'1,2\n3,"x\ny"\n5,6\n', 3, "quoted field holds a newline"),
        (b'1,2\n3,"x""\n""y"\n5,6\n', 3, "quoted field holds a newline"),
        (b"1,2\n3,4\r5,6\n", 3, "bare carriage return"),
    ],
)
def test_csv_split_stops_where_a_cut_could_fall_inside_a_row(tmp_path, body, line, reason):
    from workbench.inputs.csvsplit import header_end, spans

    path = tmp_path / "f.csv"
    path.write_bytes(b"a,b\n" + body)
    start, first = header_end(str(path))
    plan = spans(str(path), start, first, rows=1)
    assert next(plan) == (0, 1, 4, 8, 2)  # the row before the problem is still split off
    with pytest.raises(StopIteration) as stop:
        next(plan)
    tail = stop.value.value
    assert (tail.line, tail.span.first_row, tail.span.begin, tail.span.end) == (
        line,
        1,
        8,
        path.stat().st_size,
    )
    assert reason in tail.reason


def test_csv_source_that_cannot_be_split_says_so(tmp_path):
    """gzip, UTF-16 and a leading empty line: no byte ranges (one reader)."""
    gz = tmp_path / "f.csv.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"a,b\n1,2\n")
    lead = tmp_path / "lead.csv"
    lead.write_bytes(b"\na,b\n1,2\n")
    wide = tmp_path / "wide.csv"
    wide.write_bytes("a,b\n1,2\n".encode("utf-16"))
    assert open_source(str(gz)).split(10) is None
    assert open_source(str(lead)).split(10) is None
    assert open_source(str(wide), encoding="utf-16").split(10) is None
    plain = tmp_path / "p.csv"
    plain.write_bytes(b"a,b\n1,2\n3,4\n")
    assert [s.rows for s in open_source(str(plain)).split(1)] == [1, 1]
