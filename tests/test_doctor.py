"""``doctor`` on real objects: each seed Dataset of the two articles, driven the way the article
drives it, gets its pitfall (and the evidence names what was seen or measured), the same Dataset
driven safely does not, and a well-built workbench loader gets no finding at all."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, Subset

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

import workbench as wb  # noqa: E402
from benchmarks.baselines.seeds import (  # noqa: E402
    DaskMemmapDataset,
    MemmapPerItemDataset,
    MemoryMappedDataset,
    ParquetDaskDataset,
    SeedHDF5Dataset,
    SimpleDataset,
)
from workbench.demo.data import make_demo  # noqa: E402
from workbench.errors import InvalidInputError  # noqa: E402
from workbench.explore import probes  # noqa: E402
from workbench.explore.diagnoses import Diagnosis, doctor  # noqa: E402
from workbench.explore.findings import KINDS, Finding, finding, ordered, per_item_is_slow  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:The given NumPy array is not writable"),
    pytest.mark.filterwarnings("ignore:The inplace keyword"),  # inside dask + pandas
    pytest.mark.filterwarnings("ignore:.*pin_memory.*"),
    pytest.mark.filterwarnings("ignore:This DataLoader will create"),  # workers above cores
]
ROWS, K = 2000, 8
CORES = len(os.sched_getaffinity(0))
FEATURES = [f"f{j}" for j in range(K)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor") / "odd <b>dir</b>"  # HTML must escape the paths
    files = make_demo(
        root,
        rows=ROWS,
        features=K,
        sparse_dim=50,
        nnz=3,
        chunk_rows=500,
        formats=("npy", "hdf5", "parquet"),
    )
    x, y = np.load(files.npy), np.load(files.labels_npy)
    store = root / "demo.store"
    wb.convert({"features": x, "label": y}, store, progress=False)
    return files, x, y, store


def by_id(d: Diagnosis, fid: str) -> Finding:
    assert fid in d.ids, f"{fid} not found; got {d.ids}: {d}"
    return next(f for f in d if f.id == fid)


def assert_fix_is_code(f: Finding) -> None:
    compile(f.fix, f"<fix of {f.id}>", "exec")  # one line of Python
    assert "\n" not in f.fix and "wb." in f.fix


# -- a well-built loader --------------------------------------------------------------------------
def test_a_well_built_workbench_loader_gets_no_finding(demo):
    _, _, _, store = demo
    for dl in (
        wb.loader(wb.open_dataset(store), batch_size=1024, shuffle="block"),
        wb.loader(wb.open_dataset(store), batch_size=1024, shuffle="full", num_workers=2),
        DataLoader(wb.open_dataset(store), batch_size=256, shuffle=True),
    ):
        for measure in (True, False):
            d = doctor(dl, measure=measure)
            assert d.ids == [] and len(d) == 0 and list(d) == [], str(d)
            assert str(d).startswith("no findings: ")
            assert "no findings: " in d._repr_html_() and "<table>" not in d._repr_html_()
            assert json.loads(json.dumps(d.to_dict()))["findings"] == []


# -- 1. h5py opened before the workers fork -------------------------------------------------------
def test_h5py_before_fork_on_the_seed_hdf5_dataset(demo):
    files, *_ = demo
    ds = SeedHDF5Dataset(files.hdf5, "features", "label")  # opens the file in __init__, as the seed
    d = doctor(DataLoader(ds, batch_size=32, num_workers=2, timeout=30))
    f = by_id(d, "h5py-before-fork")
    assert f.severity == "error" and d.ids[0] == "h5py-before-fork"  # most severe first
    assert "SeedHDF5Dataset.file" in f.evidence and "SeedHDF5Dataset.data" in f.evidence
    assert str(files.hdf5) in f.evidence and "2 worker processes" in f.evidence
    assert_fix_is_code(f)
    assert "open_dataset" in f.fix and "'features', 'label'" in f.fix
    # the fix's dataset (ours, reopened per process) is clean under process workers
    ours = wb.open_dataset(str(files.hdf5), key=["features", "label"])
    ours.get_batch([0, 1])  # a parent-side handle now exists; __getstate__ drops it
    procs = wb.loader(ours, num_workers=2, worker_type="process")
    assert "h5py-before-fork" not in doctor(procs).ids


def test_h5py_is_fine_without_process_workers_or_when_opened_per_process(demo):
    files, *_ = demo
    eager = SeedHDF5Dataset(files.hdf5, "features", "label")
    assert "h5py-before-fork" not in doctor(DataLoader(eager, batch_size=32)).ids
    assert "h5py-before-fork" not in doctor(wb.loader(eager, num_workers=2)).ids  # threads
    assert "h5py-before-fork" in doctor(wb.loader(eager, num_workers=2, worker_type="process")).ids
    assert by_id(doctor(eager, measure=False), "h5py-before-fork").severity == "info"  # bare
    lazy = SeedHDF5Dataset(files.hdf5, "features", "label", lazy_open=True)
    lazy[0]  # opened here too, but its __getstate__ drops the handle and it reopens per pid
    assert lazy.file is not None
    assert "h5py-before-fork" not in doctor(DataLoader(lazy, num_workers=2)).ids


class HandlesInContainers(Dataset):
    """h5py objects held inside a list and a dict attribute, and reached through a Subset."""

    def __init__(self, path: Path) -> None:
        f = h5py.File(path, "r")
        self.parts = [f["features"]]
        self.by_name = {"label": f["label"]}

    def __len__(self) -> int:
        return len(self.parts[0])

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.parts[0][i], self.by_name["label"][i]


def test_h5py_inside_lists_dicts_and_nested_datasets(demo):
    files, *_ = demo
    ds = HandlesInContainers(files.hdf5)
    f = by_id(doctor(DataLoader(ds, num_workers=1, timeout=9), measure=False), "h5py-before-fork")
    assert "HandlesInContainers.parts[0]" in f.evidence
    assert "HandlesInContainers.by_name['label']" in f.evidence
    sub = Subset(ds, range(100))
    f = by_id(doctor(DataLoader(sub, num_workers=1, timeout=9), measure=False), "h5py-before-fork")
    assert "Subset.dataset.parts[0]" in f.evidence
    ds.parts[0].file.close()
    assert "h5py-before-fork" not in doctor(DataLoader(ds, num_workers=1), measure=False).ids


# -- 2. Python objects: copy-on-read -------------------------------------------------------------
def test_copy_on_read_on_the_seed_simple_dataset(demo):
    _, x, y, _ = demo
    ds = SimpleDataset(x, y)  # one tensor per row in self.features
    d = doctor(DataLoader(ds, batch_size=256, shuffle=True, num_workers=2, timeout=30))
    f = by_id(d, "python-objects-copy-on-read")
    assert f.severity == "warning"
    assert f"SimpleDataset.features: a list of {ROWS:,} torch.Tensor" in f.evidence
    assert "over 2 workers" in f.evidence
    assert_fix_is_code(f)
    assert "torch.stack(ds.features)" in f.fix
    # the estimate is the containers' and elements' sizes (tensor data included)
    exact = sys.getsizeof(ds.features) + sum(sys.getsizeof(t) + t.nbytes for t in ds.features)
    est = probes.objects(ds.features, "SimpleDataset.features")
    assert est is not None and est.elements == ROWS and est.arrays == ROWS
    assert abs(est.nbytes - exact) / exact < 0.05
    # in-process reading has no copy-on-read; a bare Dataset hears of it as info
    assert "python-objects-copy-on-read" not in doctor(DataLoader(ds, batch_size=256)).ids
    assert by_id(doctor(ds, measure=False), "python-objects-copy-on-read").severity == "info"


class ManyObjects(Dataset):
    def __init__(self, n: int) -> None:
        self.rows = [(i, float(i)) for i in range(n)]
        self.small = list(range(100))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, float]:
        return self.rows[i]


def test_copy_on_read_counts_elements_and_samples_large_containers():
    big = ManyObjects(50_000)
    f = by_id(doctor(DataLoader(big, num_workers=1, timeout=5)), "python-objects-copy-on-read")
    assert "ManyObjects.rows: a list of 50,000 tuple" in f.evidence
    assert "ManyObjects.small" not in f.evidence and "ManyObjects.small" not in f.fix
    exact = sys.getsizeof(big.rows) + sum(
        sys.getsizeof(r) + sum(map(sys.getsizeof, r)) for r in big.rows
    )
    est = probes.objects(big.rows, "rows")
    assert est is not None and abs(est.nbytes - exact) / exact < 0.1  # from a 1,000 sample
    small = ManyObjects(500)  # 600 elements: below the threshold
    assert "python-objects-copy-on-read" not in doctor(DataLoader(small, num_workers=1)).ids


# -- 3. per-item reads ---------------------------------------------------------------------------
RATIO = re.compile(r"per-item: ([\d.,]+) (µs|ms)/row .*; ([\d,]+)x$")


def test_per_item_reads_on_the_per_item_memmap_dataset(demo):
    files, *_ = demo
    ds = MemmapPerItemDataset(files.npy, files.labels_npy)
    f = by_id(doctor(DataLoader(ds, batch_size=256, shuffle=True)), "per-item-reads")
    m = RATIO.search(f.evidence)
    assert m, f.evidence
    assert int(m.group(3).replace(",", "")) >= 5
    assert "ds.features, ds.targets indexed with the same rows" in f.evidence
    assert_fix_is_code(f)
    assert "{'features': ds.features, 'targets': ds.targets}" in f.fix
    assert "per-item-reads" not in doctor(DataLoader(ds, batch_size=256), measure=False).ids


def test_per_item_reads_on_the_seed_hdf5_dataset_compares_with_h5py_batched_reads(demo):
    files, *_ = demo
    ds = SeedHDF5Dataset(files.hdf5, "features", "label", lazy_open=True)  # opened by the probe
    f = by_id(doctor(DataLoader(ds, batch_size=64)), "per-item-reads")
    assert RATIO.search(f.evidence) and "ds.data, ds.targets" in f.evidence, f.evidence


def test_no_per_item_finding_without_a_faster_batched_path(demo):
    _, x, y, store = demo
    # SimpleDataset's items are list lookups (~1 µs): nothing batched is faster to offer
    assert "per-item-reads" not in doctor(DataLoader(SimpleDataset(x, y), batch_size=256)).ids
    # ours read a batch in one pass (__getitems__)
    assert "per-item-reads" not in doctor(DataLoader(wb.open_dataset(store), batch_size=256)).ids


def test_the_per_item_threshold():
    assert per_item_is_slow(41e-6, 0.3e-6) and not per_item_is_slow(2.5e-6, 1e-6)
    assert per_item_is_slow(25e-6, None) and not per_item_is_slow(5e-6, None)


# -- 4. Dask per item ----------------------------------------------------------------------------
def test_dask_per_item_on_both_seeds(demo):
    files, *_ = demo
    ds = DaskMemmapDataset([files.npy], [files.labels_npy])
    f = by_id(doctor(DataLoader(ds, batch_size=256)), "dask-per-item")
    assert "DaskMemmapDataset.features (a Dask Array)" in f.evidence
    took = re.search(r"ds\[0\] took ([\d.,]+) (µs|ms)", f.evidence)
    assert took and (took.group(2) == "ms" or float(took.group(1)) >= 200), f.evidence
    assert_fix_is_code(f)
    assert "per-item-reads" not in doctor(DataLoader(ds, batch_size=256)).ids  # one cause
    pq_ds = ParquetDaskDataset(files.parquet, 64, FEATURES, "label")
    f = by_id(doctor(DataLoader(pq_ds, batch_size=None)), "dask-per-item")
    assert "ParquetDaskDataset.ddf (a Dask DataFrame)" in f.evidence
    assert str(files.parquet) in f.fix and "'label'" in f.fix
    assert "measure=False" in by_id(doctor(pq_ds, measure=False), "dask-per-item").evidence


def test_our_dask_dataset_reads_batches(demo):
    import dask.array as da

    files, *_ = demo
    arr = da.from_array(np.load(files.npy, mmap_mode="r"), chunks=500)
    assert doctor(wb.loader(wb.open_dataset(arr), batch_size=256)).ids == []


# -- 5. a Dataset that batches itself, shuffled --------------------------------------------------
def test_internal_batching_shuffle_on_the_seed_examples_2_and_3(demo):
    files, *_ = demo
    mm = MemoryMappedDataset(files.npy, files.labels_npy, 64)
    for bs in (1, None):
        f = by_id(doctor(DataLoader(mm, batch_size=bs, shuffle=True)), "internal-batching-shuffle")
        assert "ds[0] holds 64 rows (batch_size=64)" in f.evidence
        assert f"len(ds) = {ROWS // 64} for {ROWS:,} rows" in f.evidence
        assert f"the last {ROWS - ROWS // 64 * 64} rows are never served" in f.evidence
        assert_fix_is_code(f)
        assert "batch_size=64" in f.fix and "shuffle='block'" in f.fix
    assert (
        "internal-batching-shuffle"
        in doctor(DataLoader(mm, batch_size=1, shuffle=True), measure=False).ids
    )  # from len(ds) alone
    assert "internal-batching-shuffle" not in doctor(DataLoader(mm, batch_size=1)).ids
    assert "internal-batching-shuffle" not in doctor(mm).ids
    pq_ds = ParquetDaskDataset(files.parquet, 64, FEATURES, "label")
    d = doctor(DataLoader(pq_ds, batch_size=1, shuffle=True))
    f = by_id(d, "internal-batching-shuffle")
    assert "ds[0] holds 65 rows" in f.evidence  # the seed's inclusive .loc
    assert "dask-per-item" in d.ids and "per-item-reads" not in d.ids


# -- 6. process workers over memory maps ---------------------------------------------------------
def test_process_workers_over_memmap(demo):
    files, _, _, store = demo
    f = by_id(
        doctor(
            wb.loader(wb.open_dataset(store), batch_size=1024, worker_type="process", num_workers=2)
        ),
        "process-workers-over-memmap",
    )
    assert "StoreDataset" in f.evidence and "worker_type='thread'" in f.fix
    assert_fix_is_code(f)
    f = by_id(
        doctor(
            DataLoader(
                MemmapPerItemDataset(files.npy, files.labels_npy),
                batch_size=256,
                num_workers=2,
                timeout=30,
            )
        ),
        "process-workers-over-memmap",
    )
    assert "MemmapPerItemDataset.features" in f.evidence and "num_workers=None" in f.fix
    npy = doctor(DataLoader(wb.open_dataset(files.npy), batch_size=256, num_workers=2, timeout=9))
    assert "process-workers-over-memmap" in npy.ids  # ours over a .npy: a memmap in a dict
    threads = wb.loader(wb.open_dataset(store), batch_size=1024, num_workers=2)
    assert "process-workers-over-memmap" not in doctor(threads).ids
    # a Dataset that batches itself keeps its batches: the fix drives it one item at a time
    mm = MemoryMappedDataset(files.npy, files.labels_npy, 64)
    f = by_id(
        doctor(DataLoader(mm, batch_size=None, num_workers=2, timeout=9)),
        "process-workers-over-memmap",
    )
    scope = {"wb": wb, "ds": mm}
    exec(f.fix, scope)
    xb, yb = next(iter(scope["dl"]))
    assert xb.shape == (1, 64, K) and yb.shape == (1, 64)
    assert "process-workers-over-memmap" not in doctor(scope["dl"]).ids
    in_memory = DataLoader(wb.open_dataset(np.load(files.npy)), num_workers=2, timeout=9)
    assert "process-workers-over-memmap" not in doctor(in_memory).ids


# -- 7-9. options ----------------------------------------------------------------------------------
def test_pin_memory_without_a_gpu(demo):
    *_, store = demo
    ds = wb.open_dataset(store)
    for dl in (DataLoader(ds, pin_memory=True), wb.loader(ds, pin_memory=True)):
        ids = doctor(dl).ids
        assert ("pin-memory-without-gpu" in ids) == (not torch.cuda.is_available())
    assert "pin-memory-without-gpu" not in doctor(DataLoader(ds)).ids


def test_workers_above_cores_and_no_timeout(demo):
    *_, store = demo
    ds = wb.open_dataset(store)
    f = by_id(doctor(DataLoader(ds, num_workers=CORES + 1, timeout=5)), "workers-above-cores")
    assert f"num_workers={CORES + 1}" in f.evidence and f"{CORES} CPU cores" in f.evidence
    assert_fix_is_code(f)
    assert "workers-above-cores" not in doctor(DataLoader(ds, num_workers=CORES, timeout=5)).ids
    f = by_id(doctor(DataLoader(ds, num_workers=1)), "no-timeout")
    assert "timeout=0" in f.evidence and "timeout=30" in f.fix
    assert "no-timeout" not in doctor(DataLoader(ds)).ids  # no workers: nothing to hang
    assert (
        "timeout=None"
        in by_id(doctor(wb.loader(ds, num_workers=2, timeout=None)), "no-timeout").evidence
    )
    assert "no-timeout" not in doctor(wb.loader(ds, num_workers=2)).ids  # default 30 s


# -- the article's own DataLoader, rendering, errors ---------------------------------------------
def test_the_seed_article_loader_as_written_renders_escaped(demo):
    files, *_ = demo
    ds = SeedHDF5Dataset(files.hdf5, "features", "label")
    d = doctor(DataLoader(ds, batch_size=32, pin_memory=True, num_workers=4))  # seed 000, ex. 1
    want = {"h5py-before-fork", "per-item-reads", "no-timeout"}
    want |= {"workers-above-cores"} if CORES < 4 else set()
    want |= {"pin-memory-without-gpu"} if not torch.cuda.is_available() else set()
    assert set(d.ids) == want
    assert [f.severity for f in d] == sorted(
        (f.severity for f in d), key=("error", "warning", "info").index
    )
    page = d._repr_html_()
    assert "&lt;b&gt;dir&lt;/b&gt;" in page and "<b>dir</b>" not in page
    assert page.count("<tr>") == len(d) + 1 and "<code>dl = wb.loader(" in page
    text = str(d)
    assert "<b>dir</b>" in text and all(f"[{f.severity}] {f.id}" in text for f in d)
    out = json.loads(json.dumps(d.to_dict()))
    assert [f["id"] for f in out["findings"]] == d.ids and set(out["checked"]) == set(KINDS)


def test_a_dataset_whose_items_fail_is_still_diagnosed():
    class Broken(Dataset):
        def __init__(self) -> None:
            self.x = np.zeros((100, 2), "float32")

        def __len__(self) -> int:
            return 100

        def __getitem__(self, i: int) -> None:
            raise KeyError("no such row")

    d = doctor(DataLoader(Broken(), num_workers=1))
    assert "no-timeout" in d.ids and any("KeyError" in n for n in d.notes)
    assert "KeyError" in str(d) and "KeyError" in d._repr_html_()


def test_anything_else_is_refused_with_what_to_pass():
    with pytest.raises(InvalidInputError, match=r"numpy\.ndarray.*DataLoader.*wb\.inspect"):
        doctor(np.zeros(3))


def test_findings_table_and_order():
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", k) for k in KINDS)
    fs = [
        finding("no-timeout", "e", "f"),
        finding("h5py-before-fork", "e", "f"),
        finding("per-item-reads", "e", "f"),
    ]
    assert [f.id for f in ordered(fs)] == ["h5py-before-fork", "per-item-reads", "no-timeout"]
    with pytest.raises(InvalidInputError):
        finding("not-a-pitfall", "e", "f")


# -- the fix lines run ---------------------------------------------------------------------------
class OpensPerItem(Dataset):
    """Holds only a path: every item opens the HDF5 file (slow, and no array to batch from)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __len__(self) -> int:
        return 300

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        with h5py.File(self.path, "r") as f:
            return torch.from_numpy(f["features"][i]), torch.tensor(f["label"][i])


def run_fix(f: Finding, ds: Dataset, where: Path) -> dict:
    """Run the fix line with ``ds`` bound, as a user would paste it; the first batch it gives."""
    where.mkdir()
    cwd = os.getcwd()
    os.chdir(where)
    try:
        scope = {"wb": wb, "np": np, "torch": torch, "ds": ds}
        exec(f.fix, scope)
        dl = scope["dl"]
        assert isinstance(dl, wb.Loader) and "h5py-before-fork" not in doctor(dl).ids
        return next(iter(dl))
    finally:
        os.chdir(cwd)


def test_the_fix_lines_run_and_read_the_same_data(demo, tmp_path):
    files, x, y, _ = demo
    cases = [
        ("h5py-before-fork", SeedHDF5Dataset(files.hdf5, "features", "label"), {"num_workers": 2}),
        ("python-objects-copy-on-read", SimpleDataset(x, y), {"num_workers": 2}),
        ("per-item-reads", MemmapPerItemDataset(files.npy, files.labels_npy), {}),
        ("per-item-reads", OpensPerItem(files.hdf5), {}),
        ("dask-per-item", DaskMemmapDataset([files.npy], [files.labels_npy]), {}),
        ("dask-per-item", ParquetDaskDataset(files.parquet, 64, FEATURES, "label"), {}),
        (
            "internal-batching-shuffle",
            MemoryMappedDataset(files.npy, files.labels_npy, 64),
            {"batch_size": 1, "shuffle": True},
        ),
    ]
    for n, (fid, ds, how) in enumerate(cases):
        f = by_id(doctor(DataLoader(ds, timeout=30, **{"batch_size": 100, **how})), fid)
        batch = run_fix(f, ds, tmp_path / f"fix{n}")
        cols = list(batch.values())
        assert len(cols) == 2, (fid, f.fix, list(batch))  # features and labels, both kept
        feats, labels = sorted(cols, key=lambda t: -t.dim())
        want = 64 if fid == "internal-batching-shuffle" else 100
        assert feats.shape == (want, K) and labels.shape == (want,), (fid, f.fix)
        hit = np.flatnonzero((x == feats[0].numpy()).all(axis=1))  # a real row, with its label
        assert len(hit) == 1 and y[hit[0]] == int(labels[0]), (fid, f.fix)


def test_the_option_fixes_make_their_finding_go_away(demo, tmp_path):
    *_, store = demo
    ds = wb.open_dataset(store)
    loaders = [
        wb.loader(ds, batch_size=512, worker_type="process", num_workers=2),
        DataLoader(ds, batch_size=512, num_workers=CORES + 1, pin_memory=True),
    ]
    fixed = 0
    for dl in loaders:
        for f in doctor(dl):
            scope = {"wb": wb, "ds": ds}
            exec(f.fix, scope)
            assert f.id not in doctor(scope["dl"]).ids, f
            fixed += 1
    assert fixed >= 4 - torch.cuda.is_available()  # memmap, cores, timeout, pin (no GPU)
