"""``open_dataset(path, where=...)``: rows filtered at read time, compared with NumPy on the same
data, through the loader's orders and worker processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import workbench as wb
from workbench.errors import InvalidInputError

N = 5000


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = np.zeros((N, 4), "float32")
    x[:, 0] = np.arange(N)
    x[:, 1] = rng.random(N)
    return {"x": x, "label": rng.integers(0, 5, N), "score": rng.random(N)}


@pytest.fixture(scope="module")
def store(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("filtered") / "d.store"
    wb.convert(data, path, shard_bytes=32 << 10, progress=False)  # several shards
    return path


def rows(ds) -> np.ndarray:
    return ds.get_batch(range(len(ds)))["x"][:, 0].long().numpy()


def test_a_term_keeps_what_numpy_keeps_in_order(store, data):
    ds = wb.open_dataset(store, where=("label", "in", [1, 3]))
    want = np.flatnonzero(np.isin(data["label"], [1, 3]))
    assert len(ds) == len(want) and ds.kept_fraction == pytest.approx(len(want) / N)
    assert np.array_equal(rows(ds), want)
    assert np.array_equal(ds.read_chunk(10, 20)["score"], data["score"][want[10:20]])
    assert torch.equal(ds[7]["label"], torch.tensor(data["label"][want[7]]))
    assert f"{len(want):,} of {N:,} rows" in repr(ds) and "where [('label', 'in'" not in repr(ds)


def test_all_of_a_list_and_any_of_a_list_of_lists(store, data):
    lab, s = data["label"], data["score"]
    ds = wb.open_dataset(store, where=[("label", "!=", 0), ("score", ">=", 0.25)])
    assert np.array_equal(rows(ds), np.flatnonzero((lab != 0) & (s >= 0.25)))
    ds = wb.open_dataset(
        store, where=[[("label", "==", 4)], [("score", "<", 0.1), ("label", "<=", 1)]]
    )
    assert np.array_equal(rows(ds), np.flatnonzero((lab == 4) | ((s < 0.1) & (lab <= 1))))
    ds = wb.open_dataset(store, where=("label", "not in", [0, 1, 2]))
    assert np.array_equal(rows(ds), np.flatnonzero(lab >= 3))


def test_a_filter_may_name_a_column_not_read(store, data):
    ds = wb.open_dataset(store, columns=["x"], where=("label", "==", 2))
    assert ds.columns == ("x",)
    assert np.array_equal(rows(ds), np.flatnonzero(data["label"] == 2))


def test_a_callable_filter_on_a_batch(store, data):
    ds = wb.open_dataset(store, where=lambda b: b["x"][:, 1] > 0.5)
    assert np.array_equal(rows(ds), np.flatnonzero(data["x"][:, 1] > 0.5))


@pytest.mark.parametrize("order", ["sequential", "block", "full", "shard"])
def test_the_loader_reads_every_kept_row_once_in_each_order(store, data, order):
    ds = wb.open_dataset(store, where=("label", "in", [1, 3]))
    assert sum(ds.shard_rows) == len(ds) and len(ds.shard_rows) > 1
    got = np.concatenate(
        [b["x"][:, 0].long().numpy() for b in wb.loader(ds, batch_size=64, shuffle=order)]
    )
    assert np.array_equal(np.sort(got), np.flatnonzero(np.isin(data["label"], [1, 3])))


def test_block_order_keeps_its_locality_over_the_kept_rows(store):
    ds = wb.open_dataset(store, where=("label", "in", [1, 3]))
    assert ds.block_rows < wb.open_dataset(store).block_rows  # about one storage block's rows

    def stretches(order: str) -> float:  # 256-row stretches of storage a batch touches
        return float(
            np.mean(
                [
                    len(np.unique(b["x"][:, 0].long().numpy() // 256))
                    for b in wb.loader(ds, batch_size=64, shuffle=order, block_rows=64, window=2)
                ]
            )
        )

    assert stretches("block") * 3 < stretches("full")


def test_worker_processes_read_the_kept_rows(store, data):
    ds = wb.open_dataset(store, where=("score", "<", 0.3))
    dl = wb.loader(ds, batch_size=100, shuffle="full", num_workers=2, worker_type="process")
    got = np.sort(np.concatenate([b["x"][:, 0].long().numpy() for b in dl]))
    dl.close()
    assert np.array_equal(got, np.flatnonzero(data["score"] < 0.3))


def test_bad_filters_name_what_to_fix(store):
    with pytest.raises(
        InvalidInputError,
        match=r"where=\('lable'.*the columns available are \['x', 'label', 'score'\]",
    ):
        wb.open_dataset(store, where=("lable", "==", 1))
    with pytest.raises(InvalidInputError, match="operator '~'"):
        wb.open_dataset(store, where=("label", "~", 1))
    with pytest.raises(InvalidInputError, match="needs a list of values"):
        wb.open_dataset(store, where=("label", "in", 3))
    with pytest.raises(InvalidInputError, match="keeps none of its 5,000 rows"):
        wb.open_dataset(store, where=("label", ">", 9))
    with pytest.raises(InvalidInputError, match=r"one bool a row"):
        wb.open_dataset(store, where=lambda b: b["x"][:2, 0] > 0)
    with pytest.raises(InvalidInputError, match="a term"):
        wb.open_dataset(store, where="label == 1")
    with pytest.raises(InvalidInputError, match="2-d rows|1-d rows"):
        wb.open_dataset(store, where=("x", ">", 0))
