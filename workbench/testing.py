"""Contract checks a user can run on their own Dataset or layout, the same ones our test suite
runs on ours (as ``zarr.testing`` ships its store tests). Each raises ``AssertionError`` naming
what broke; use them in pytest or a notebook cell.

>>> from workbench.testing import check_dataset
>>> check_dataset(wb.open_dataset({"x": np.arange(300, dtype="float32").reshape(100, 3)}))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["check_dataset", "check_layout"]


def _rows(batch: Any) -> dict[str, np.ndarray]:
    import torch

    if isinstance(batch, torch.Tensor):
        return {"": batch.numpy()}
    if isinstance(batch, (list, tuple)):
        return {str(i): _rows(b)[""] for i, b in enumerate(batch)}
    return {k: (v.to_dense() if v.is_sparse else v).numpy() for k, v in batch.items()}


def _same(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str) -> None:
    assert sorted(got) == sorted(want), f"{what}: columns {sorted(got)}, expected {sorted(want)}"
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what}: column {k!r} differs")


def check_dataset(ds: Any, *, batch_size: int = 32, seed: int = 0, workers: bool = True) -> None:
    """Check that ``ds`` keeps PyTorch's map-style Dataset contract and ours: rows by index,
    batches by index lists, every row once per loader epoch, exact resume, worker processes.

    Parameters
    ----------
    ds : Dataset
        The dataset: ours (with ``get_batch``), or any map-style torch Dataset of dict rows.
    batch_size : int, default 32
        Batch size of the loader passes.
    seed : int, default 0
        Seed of the shuffled orders.
    workers : bool, default True
        Also read through ``torch.utils.data.DataLoader`` with two forked worker processes.

    Raises
    ------
    AssertionError
        Naming the property that failed: length, indexing, batching, coverage, resume, workers.

    Examples
    --------
    >>> check_dataset(wb.open_dataset({"y": np.arange(64)}), batch_size=8, workers=False)
    """
    import torch
    from torch.utils.data import DataLoader, default_collate

    from .loading.loaders import loader

    n = len(ds)
    assert n > 0, "len(ds) is 0: a dataset to check needs rows"
    _same(
        _rows(default_collate([ds[-1]])), _rows(default_collate([ds[n - 1]])), "ds[-1] vs ds[n-1]"
    )
    try:
        ds[n]
    except IndexError:
        pass
    else:
        raise AssertionError(f"ds[{n}] (one past the end) returned a row; raise IndexError")
    idx = np.random.default_rng(seed).permutation(n)[: min(n, 3 * batch_size)]
    one_by_one = _rows(default_collate([ds[int(i)] for i in idx]))
    if hasattr(ds, "get_batch"):
        for form in (idx.tolist(), idx, torch.from_numpy(idx)):
            _same(_rows(ds.get_batch(form)), one_by_one, f"get_batch({type(form).__name__})")
    if hasattr(ds, "__getitems__"):
        _same(_rows(default_collate(ds.__getitems__(idx.tolist()))), one_by_one, "__getitems__")
    everything = _rows(default_collate([ds[i] for i in range(n)]))
    for shuffle in ("sequential", "full", "block"):
        seen = [_rows(b) for b in loader(ds, batch_size=batch_size, shuffle=shuffle, seed=seed)]
        got = {k: np.concatenate([b[k] for b in seen]) for k in everything}
        assert all(len(v) == n for v in got.values()), f"shuffle={shuffle!r}: an epoch missed rows"
        for k, v in everything.items():  # every row once: the same rows, in any order
            order = (
                np.lexsort(v.reshape(n, -1).T[::-1]) if v.ndim > 1 else np.argsort(v, kind="stable")
            )
            gord = (
                np.lexsort(got[k].reshape(n, -1).T[::-1])
                if v.ndim > 1
                else np.argsort(got[k], kind="stable")
            )
            np.testing.assert_array_equal(
                got[k][gord],
                v[order],
                err_msg=f"shuffle={shuffle!r}: column {k!r}: not each row once",
            )
    dl = loader(ds, batch_size=batch_size, shuffle="full", seed=seed)
    whole = [_rows(b) for b in dl]
    dl, k = loader(ds, batch_size=batch_size, shuffle="full", seed=seed), len(whole) // 2
    it = iter(dl)
    for _ in range(k):
        next(it)
    state = dl.state_dict()
    resumed = loader(ds, batch_size=batch_size, shuffle="full", seed=seed)
    resumed.load_state_dict(state)
    rest = [_rows(b) for b in resumed]
    assert len(rest) == len(whole) - k, f"resume after {k} batches gave {len(rest)} batches"
    for i, (a, b) in enumerate(zip(rest, whole[k:])):
        _same(a, b, f"resumed batch {k + i}")
    if workers and "fork" in __import__("multiprocessing").get_all_start_methods():
        plain = DataLoader(ds, batch_size=batch_size, num_workers=2, multiprocessing_context="fork")
        seq = [_rows(b) for b in DataLoader(ds, batch_size=batch_size)]
        for i, (a, b) in enumerate(zip([_rows(b) for b in plain], seq)):
            _same(a, b, f"DataLoader with 2 worker processes, batch {i}")


def check_layout(layout: str, workdir: str | os.PathLike[str]) -> None:
    """Check a layout room (``workbench.layouts.<layout>``): convert writes it, ``open_dataset``
    reads back exactly what was written, ``verify`` passes, and a flipped byte in a shard fails
    ``verify`` with an error naming the file.

    Parameters
    ----------
    layout : str
        A name in ``workbench.format.manifest.LAYOUTS``.
    workdir : path
        An empty folder to write in (for example pytest's ``tmp_path``).

    Raises
    ------
    AssertionError
        Naming the property that failed.

    Examples
    --------
    >>> check_layout("store", "layout_check")
    """
    from .conversion.pipeline import convert
    from .datasets import open_dataset
    from .errors import CorruptDatasetError
    from .format.catalog import read_manifest
    from .format.integrity import verify
    from .format.sparse import CSR

    rng = np.random.default_rng(7)
    rows = 1500
    lists = [
        sorted(rng.choice(50, rng.integers(0, 6), replace=False).tolist()) for _ in range(rows)
    ]
    data = {
        "x": rng.standard_normal((rows, 3)).astype("float32"),
        "img": rng.integers(0, 255, (rows, 2, 2), dtype=np.uint8),
        "y": np.arange(rows, dtype=np.int64),
        "tok": CSR.from_lists(lists, dim=50, values=[[1.5] * len(r) for r in lists]),
    }
    dest = Path(workdir) / f"check.{layout}"
    m = convert(
        data,
        dest,
        format=layout,
        shard_bytes=20_000,
        progress=False,
        row_group_bytes=4_000,
        hdf5_chunk_bytes=2_000,
    )
    assert m.layout == layout and m.num_rows == rows, (
        f"{layout}: the manifest says {m.layout}, {m.num_rows} rows"
    )
    assert len(m.shards) > 1, f"{layout}: 1500 rows of 20 kB shards wrote one shard"
    ds = open_dataset(dest)
    idx = np.random.default_rng(1).permutation(rows)[:300]
    want = {
        "x": data["x"][idx],
        "img": data["img"][idx],
        "y": data["y"][idx],
        "tok": data["tok"].take(idx).to_dense(),
    }
    _same(_rows(ds.get_batch(idx.tolist())), want, f"{layout}: read back")
    check_dataset(ds, batch_size=128, workers=False)
    assert verify(dest).ok, f"{layout}: verify fails on a dataset just written"
    version, _ = read_manifest(dest)
    victim = max(m.shards[1].files, key=lambda f: f.bytes)
    raw = bytearray((version / victim.path).read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one flipped byte in the middle of the data
    (version / victim.path).write_bytes(bytes(raw))
    try:
        verify(dest)
    except CorruptDatasetError as exc:
        assert Path(victim.path).name in str(exc), (
            f"{layout}: the error does not name the file: {exc}"
        )
    else:
        raise AssertionError(f"{layout}: verify passed a shard with a flipped byte ({victim.path})")
