"""Each shuffle order against its own physical limit and the seeds' naive Datasets, in one run.

A loader's rate means little alone, and less against the wrong ceiling: a shuffled batch is a
gather of scattered rows, which no loader copies at memcpy speed. So every order is set beside
the fastest way to get the same rows from the same bytes, measured in the same run:

- ``sequential`` against zero-copy views of the same batch-sized slices (nothing is copied);
- ``block`` against a contiguous memcpy of those slices into a reused buffer;
- ``full`` against a random gather of the same rows (each batch's rows sorted, as the sampler
  does) into a reused buffer, from the page cache: ``np.take`` on one core,
  ``torch.index_select`` on every core and, where it is built, the compiled gather the readers
  use (``take_rows``) on every core, the fastest of them;

and beside the seeds' naive Dataset classes (:mod:`workbench.bench.naive`) read through a plain
``DataLoader`` on the same data, in the order each one offers. Every reader consumes each batch
the same way (a sum over every tensor, :func:`workbench.bench.throughput.consume`), on a warm
page cache; the readers take turns, ``rounds`` times ``seconds`` each; a reader's rate is the
median of its rounds and a ratio the median of the per-round ratios, with their quartiles, so a
busy machine slows both sides of a ratio alike (the table's "IQR" column: how noisy a reader
was). Memory stays at a few batches: nothing is loaded whole. The limits are serial (read, then
sum, on one core); a loader that reads ahead on another core while this one sums can pass 1.0x.

``print(wb.compare_orders(store).text())`` prints the table; ``workbench demo`` does.
"""

from __future__ import annotations

import os
import warnings

import torch

from ..errors import InvalidInputError
from ..format.catalog import read_manifest
from .comparison import OrderComparison, Reading, quartiles
from .readers import every_reader
from .throughput import measure

__all__ = ["compare_orders"]


def compare_orders(
    store: str | os.PathLike[str],
    *,
    batch_size: int = 1024,
    seconds: float = 0.5,
    rounds: int = 5,
    features: str = "features",
    target: str | None = None,
    hdf5: str | os.PathLike[str] | None = None,
) -> OrderComparison:
    """Measure ``workbench.loader`` in each order next to that order's limit and the naive
    Datasets, on two dense columns of a workbench store, in one run.

    The limits and the memmap Datasets read the first shard's own ``.npy`` files, the bytes the
    loader reads (one shard is like with like). Takes about ``(rounds + 1) * seconds`` per
    reader (11 readers with ``hdf5``).

    Parameters
    ----------
    store : str or PathLike
        A workbench store (a dataset directory).
    batch_size : int, default 1024
        Rows per batch, for every reader.
    seconds : float, default 0.5
        The length of one round of one reader.
    rounds : int, default 5
        Interleaved rounds per reader: rates are their medians, ratios the medians of the
        per-round ratios.
    features : str, default "features"
        The dense column read as the inputs.
    target : str, optional
        The dense column read as the labels; default: the store's target.
    hdf5 : str or PathLike, optional
        A file holding the same rows as datasets named like the columns: adds the seed's
        per-item ``SeedHDF5Dataset``.

    Returns
    -------
    OrderComparison
        Every reader's rounds; ``text()`` prints the table and one verdict per order.

    Raises
    ------
    InvalidInputError
        A batch size, time or round count below its minimum, or a column that is missing or
        not dense.

    Examples
    --------
    >>> c = compare_orders("demo_data/demo.store", batch_size=256, seconds=0.05, rounds=1,
    ...                    hdf5="demo_data/raw/demo.h5")
    >>> orders = [r.order for r in c.readings if r.kind == "workbench"]; orders
    ['sequential', 'block', 'full']
    >>> all(c.limit(o).rows_per_s > 0 and c.ratio(o) > 0 for o in orders)
    True
    >>> words = " ".join(c.verdicts()[2].split())   # one sentence per order, wrapped at 96
    >>> words.startswith("full shuffle: "), "] the random-gather limit (" in words
    (True, True)
    """
    if batch_size < 1 or seconds <= 0 or rounds < 1:
        raise InvalidInputError(
            f"compare_orders: batch_size={batch_size}, seconds={seconds}, "
            f"rounds={rounds}; pass batch_size >= 1, seconds > 0, rounds >= 1"
        )
    from ..datasets import open_dataset

    version, m = read_manifest(store)
    target = target or m.target
    files = {f.column: version / f.path for f in m.shards[0].files}
    if features not in files or target not in files:
        raise InvalidInputError(
            f"compare_orders: {store} needs dense columns {features!r} and "
            f"{target!r} (has {sorted(files)}); name them with features=, target="
        )
    ds = open_dataset(store, columns=[features, target])
    readers = every_reader(ds, files[features], files[target], batch_size, hdf5, (features, target))
    runs: dict[str, list[float]] = {name: [] for name, *_ in readers}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the consumer's sum on one thread everywhere, as the benchmark does
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            for rnd in range(rounds + 1):  # round 0 warms every reader up and is not kept
                for name, _, _, make in readers:
                    it = make()
                    try:
                        t = measure(it, max_seconds=seconds if rnd else seconds / 2)
                    finally:
                        it.close()
                    if rnd:
                        runs[name].append(t.samples_per_s)
    finally:
        torch.set_num_threads(threads)
    row_bytes = ds.row_nbytes
    got = []
    for name, kind, order, _ in readers:
        mid = quartiles(runs[name])[1]
        got.append(Reading(name, kind, order, mid, mid * row_bytes / 1e6, tuple(runs[name])))
    return OrderComparison(
        str(store), m.shards[0].rows, row_bytes, batch_size, seconds, rounds, tuple(got)
    )
