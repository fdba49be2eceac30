"""workbench/notebooks/sanitizers.py: each volatile figure becomes its placeholder, real content
stays, nbval reads the same rules from the file form; and the stable text forms: every workbench
display rendered twice on the same data reads the same after sanitizing."""

from __future__ import annotations

import gc

import h5py
import numpy as np
import pytest
import torch
from nbval.plugin import get_sanitize_patterns

import workbench as wb
from workbench.notebooks.sanitizers import RULES, nbval_config, sanitize

VOLATILE = [
    # (what, one run's text, another run's text)
    (
        "tqdm meter",
        "x: 100%|██████| 9/9 rows [00:00<00:00, 206k rows/s]",
        "x: 100%|█████| 9/9 rows [00:01<00:00, 2.79M rows/s]",
    ),
    ("tqdm html", "9/9 rows [00:00&lt;00:00, 206k rows/s]", "9/9 rows [00:03&lt;00:00, 21 rows/s]"),
    ("no total", "x: 20,000rows [00:01, ?rows/s]", "x: 20,000rows [00:02, 1.5k rows/s]"),
    ("rate", "46,688,805 samples/s", "24,169,373 samples/s"),
    ("rate, SI", "8.05 M rows/s", "21.05 M rows/s"),
    ("duration", "13 trials in 17 s", "13 trials in 9.5 s"),
    ("per-row time", "per-item: 146 µs/row", "per-item: 91 µs/row"),
    (
        "seconds field",
        "Throughput(samples=40, seconds=0.0028)",
        "Throughput(samples=40, seconds=1.5)",
    ),
    ("pid", "opened in this process (pid 26487)", "opened in this process (pid 311)"),
    ("link", "dashboard: http://127.0.0.1:38123/status", "dashboard: http://127.0.0.1:8787/status"),
    ("address", "tcp://127.0.0.1:41234", "tcp://127.0.0.1:35007"),
    ("object", "<object object at 0x7f957554f230>", "<object object at 0x7f1c0a3b2e50>"),
    ("timestamp", "created 2026-12-01T22:28:43+00:00", "created 2027-01-02T01:02:03+00:00"),
    ("version", "workbench dataset d (v-3509ca879b43)", "workbench dataset d (v-0a1b2c3d4e5f)"),
    ("fingerprint", "fingerprint   e2a90ff71d7d26d6", "fingerprint   0123456789abcdef"),
    ("tmp", "/tmp/tmpwfzvv4ts/user.store", "/tmp/tmp_a81kq0c/user.store"),
    (
        "pytest tmp",
        "/tmp/pytest-of-ci/pytest-3/test_x0/a.npy",
        "/tmp/pytest-of-me/pytest-9/test_x1/a.npy",
    ),
    ("gauge", "workbench_memory_pss_bytes 6.95389184e+08", "workbench_memory_pss_bytes 1.2e+09"),
    ("memory", "PSS 663 MiB in 4 processes", "PSS 1,204 MiB in 4 processes"),
    ("available", "page cache 22.8 GiB: fits", "page cache 3.1 GiB: fits"),
    (
        "resident",
        "page cache: 45% resident (1.2 MiB of 2.7 MiB in 3 files)",
        "page cache: 0% resident (0 B of 2.7 MiB in 3 files)",
    ),
    (
        "warm",
        "warm: 1.2 MiB of 2.7 MiB resident in 3 file(s) (was 0 B), 0.03 s",
        "warm: 2.7 MiB of 2.7 MiB resident in 3 file(s) (was 1.0 MiB), 0.2 s",
    ),
    ("wait", "wait 12% · read-ahead 3", "wait 80% · read-ahead 0"),
    (
        "ratio",
        "= 0.38x [0.35x-0.41x] a zero-copy read; 28x [27x-30x] seed 001's",
        "= 0.41x [0.2x-0.5x] a zero-copy read; 31x [30x-33x] seed 001's",
    ),
    (
        "reader row",
        "limit: memcpy      block    11,837,939  12,217    12%",
        "limit: memcpy      block       837,939     217     3%",
    ),
    ("wrapped", "a long line that wraps\n    here", "a long line that\n    wraps here"),
]

CONTENT = [
    # (what, saved, changed): a real change survives sanitizing
    ("count", "20,000 rows in 11 shards", "20,000 rows in 12 shards"),
    ("labels", "[7, 0, 9]", "[7, 0, 8]"),
    (
        "on disk",
        "rows 20,000 in 1 shard(s), 2.7 MiB on disk",
        "rows 20,000 in 1 shard(s), 2.9 MiB on disk",
    ),
    ("amplification", "full  18.8x", "full  19.5x"),
    ("a word", "ok=True shards=1", "ok=False shards=1"),
    ("percent done", "x: 50%|███  | 9/18 rows", "x: 100%|█████| 18/18 rows"),
    ("path", "/tmp/tmpwfzvv4ts/user.store", "/tmp/tmpwfzvv4ts/other.store"),
]


@pytest.mark.parametrize("what, one, other", VOLATILE, ids=[v[0] for v in VOLATILE])
def test_volatile_figures_read_the_same(what, one, other):
    assert one != other
    assert sanitize(one) == sanitize(other), (sanitize(one), sanitize(other))


@pytest.mark.parametrize("what, saved, changed", CONTENT, ids=[c[0] for c in CONTENT])
def test_real_content_still_differs(what, saved, changed):
    assert sanitize(saved) != sanitize(changed)


def test_nbval_reads_the_same_rules_from_the_file_form():
    assert get_sanitize_patterns(nbval_config()) == [(r, s) for _, r, s in RULES]


# -- stable text forms: each display twice on the same data ------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("forms")
    rng = np.random.default_rng(0)
    data = {"x": rng.random((20_000, 16), dtype="float32"), "y": rng.integers(0, 4, 20_000)}
    path = root / "d.store"
    wb.convert(data, path, target="y", progress=False)
    with h5py.File(root / "d.h5", "w") as f:
        f["x"], f["y"] = data["x"], data["y"]
    return path


def twice(make, between=lambda: None) -> tuple[str, str]:
    first = make()
    between()
    return first, make()


def assert_stable(pair: tuple[str, str]) -> None:
    a, b = pair
    assert sanitize(a) == sanitize(b), f"\n{a}\n---\n{b}"


def test_progress_meter_is_stable():
    from workbench.ui.progress import ProgressBar

    def meter():
        bar = ProgressBar("convert -> d.store")
        bar(10_000, 20_000)
        bar.done = 20_000
        return bar.meter()

    assert_stable(twice(meter))


def test_info_and_verify_are_stable(store):
    data = wb.open_dataset(store).get_batch(list(range(20_000)))
    again = {"x": data["x"].numpy(), "y": data["y"].numpy()}

    def convert_and_describe():
        wb.convert(again, store, target="y", overwrite=True, progress=False)
        return f"{wb.info(store)}\n{wb.verify(store)}"

    assert_stable(twice(convert_and_describe))


def test_explore_results_are_stable(store):
    h5 = f"{store.parent / 'd.h5'}:x"
    assert_stable(twice(lambda: str(wb.inspect(store)), lambda: wb.evict(store)))
    assert_stable(twice(lambda: str(wb.stats(store))))
    assert_stable(twice(lambda: str(wb.preview(store, n=3))))
    assert_stable(twice(lambda: str(wb.advise(h5, batch_size=1024)), lambda: wb.warm(store)))
    ds = torch.utils.data.TensorDataset(torch.zeros(4096, 8))
    dl = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=2)
    assert_stable(twice(lambda: str(wb.doctor(dl))))


def test_loading_and_watching_are_stable(store):
    from workbench.ui.charts import header

    def epoch_under_a_monitor():
        dl = wb.loader(wb.open_dataset(store), batch_size=512, shuffle="block", seed=0)
        with wb.Monitor(dl, interval=0.05) as mon:
            for _ in dl:
                pass
        t = wb.bench.measure(dl, max_batches=8)
        text = "\n".join(
            [repr(dl), repr(dl.dataset), header(mon.latest(), markup=False), repr(t)]
            + [line for line in mon.to_prometheus().splitlines() if not line.startswith("#")]
        )
        dl.close()
        gc.collect()
        return text

    assert_stable(twice(epoch_under_a_monitor, lambda: wb.evict(store)))
    assert_stable(twice(lambda: str(wb.warm(store)), lambda: wb.evict(store)))


def test_order_comparison_is_stable(store):
    def compare():
        return wb.bench.compare_orders(store, features="x", batch_size=256, seconds=0.05, rounds=1)

    assert_stable(twice(lambda: compare().text()))
