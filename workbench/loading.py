"""Feed batches from a workbench dataset: one ``__getitems__`` call per batch, read ahead in threads
(default) or in torch DataLoader worker processes, in order, resumable mid-epoch, with live stats.

>>> ds = wb.open_dataset({"x": np.zeros((5000, 4), "float32"), "y": np.arange(5000)})
>>> dl = loader(ds, batch_size=1024, shuffle="block", num_workers=0)
>>> [len(batch["y"]) for batch in dl], dl.stats.batches, dl.stats.samples
([1024, 1024, 1024, 1024, 904], 5, 5000)
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ._batch import batch_nbytes, keep_batch_memory
from ._prefetch import FetchSpec, Pass, ProcessPass, SyncPass, ThreadPass
from .errors import InvalidInputError
from .sampling import ORDERS, BatchSampler

__all__ = ["Loader", "LoaderStats", "loader"]

# Why (1 GiB memmap, 2-core box): processes ran at 11-77 % of threads (each batch copied via shm).
DEFAULT_WORKER_TYPE = "thread"
# Threads hand each batch across the GIL (~150 us on 2 cores): for small batches that costs more
# than it overlaps (2 GiB store, bs=256: block 1.8M rows/s in-process vs 0.7-0.8M with 1-2
# threads); from ~1 MiB per batch two threads win (bs=4096: 4.0M vs 3.7M). None picks by that.
AUTO_THREADS_FROM_BYTES = 1 << 20
AUTO_THREADS = 2


@dataclass
class LoaderStats:
    """Running counters: ``wait_s`` is time the consumer spent blocked on data, ``total_s`` wall
    time from the start of each pass to its latest batch (summed over passes)."""

    batches: int = 0
    samples: int = 0
    bytes: int = 0
    wait_s: float = 0.0
    total_s: float = 0.0

    def _per_s(self, amount: float) -> float:
        return amount / self.total_s if self.total_s else 0.0

    samples_per_s = property(lambda self: self._per_s(self.samples))
    mb_per_s = property(lambda self: self._per_s(self.bytes / 1e6))
    wait_fraction = property(lambda self: self._per_s(self.wait_s))

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "samples_per_s": self.samples_per_s, "mb_per_s": self.mb_per_s,
                "wait_fraction": self.wait_fraction}

    def reset(self) -> None:
        self.batches = self.samples = self.bytes = 0
        self.wait_s = self.total_s = 0.0


class Loader:
    """Iterable of batches (``dict[str, Tensor]``) over ``dataset``; build it with :func:`loader`.

    Each full pass advances the epoch, so consecutive ``for`` loops see new orders; ``set_epoch``
    picks one explicitly. ``state_dict`` records batches delivered (not read ahead) in the epoch.

    ``num_workers=None`` (default) reads in the caller's thread when a batch is under 1 MiB and
    with 2 read-ahead threads above that (measured: see ``AUTO_THREADS_FROM_BYTES``);
    ``worker_type="process"`` uses torch DataLoader worker processes, which copy every batch
    through shared memory and are the slowest option for memory-mapped data.
    """

    def __init__(self, dataset: Any, *, batch_size: int = 256, shuffle: str | bool = "block",
                 seed: int = 0, num_workers: int | None = None,
                 worker_type: str = DEFAULT_WORKER_TYPE, pin_memory: bool = False,
                 prefetch_factor: int = 2, timeout: float | None = 30.0, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1, window: int = 8,
                 multiprocessing_context: Any = None) -> None:
        order = ("block" if shuffle else "sequential") if isinstance(shuffle, bool) else shuffle
        if order not in ORDERS:
            raise InvalidInputError(f"shuffle={shuffle!r} is not understood; use one of {ORDERS}, "
                                    "True (block) or False (sequential)")
        if worker_type not in ("thread", "process"):
            raise InvalidInputError(f"worker_type={worker_type!r}; use 'thread' or 'process'")
        if num_workers is None:
            batch_bytes = batch_size * int(getattr(dataset, "row_nbytes", 0))
            big = worker_type == "process" or batch_bytes >= AUTO_THREADS_FROM_BYTES
            num_workers = AUTO_THREADS if big else 0
        if num_workers < 0 or prefetch_factor < 1:
            raise InvalidInputError(
                f"num_workers={num_workers}, prefetch_factor={prefetch_factor}; use "
                "num_workers >= 0 and prefetch_factor >= 1")
        self.dataset, self.order, self.seed, self.batch_size = dataset, order, seed, batch_size
        self.num_workers, self.worker_type = num_workers, worker_type
        self.prefetch_factor = prefetch_factor
        self.timeout = timeout if timeout and timeout > 0 else None
        self.multiprocessing_context = multiprocessing_context
        self._pin = bool(pin_memory) and torch.cuda.is_available()  # no CUDA: nothing to pin for
        self.sampler = BatchSampler(len(dataset), batch_size, order=order, seed=seed,
                                    block_rows=dataset.block_rows, window=window, rank=rank,
                                    world_size=world_size, drop_last=drop_last)
        # sequential on one rank: every batch is one ascending run (padding only wraps with W > 1)
        self._contiguous = order == "sequential" and world_size == 1
        self.stats = LoaderStats()
        self._epoch = self._position = 0
        self._current: weakref.ref | None = None

    def __len__(self) -> int:
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order for the next pass (a resumed position in that epoch is kept)."""
        self.sampler.set_epoch(epoch)
        if epoch != self._epoch:
            self._position = 0
        self._epoch = int(epoch)

    def __iter__(self) -> Iterator[Any]:
        self.close()
        keep_batch_memory()
        self.sampler.set_epoch(self._epoch)
        batches = iter(self.sampler)  # after the resumed batches, if load_state_dict was used
        self._position = self.sampler.batches_done
        spec = FetchSpec(self.dataset, self.num_workers, self.prefetch_factor, self._pin,
                         self.timeout, self._contiguous, self.multiprocessing_context)
        kind = SyncPass if self.num_workers == 0 else ThreadPass if self.worker_type == "thread" \
            else ProcessPass
        it: Pass = kind(spec, batches, self._delivered, self._finish_epoch)
        self._current = weakref.ref(it)
        return it

    def _delivered(self, rows: int, batch: Any, wait_s: float, since_last_s: float) -> None:
        stats = self.stats
        stats.batches += 1
        stats.samples += rows
        stats.bytes += batch_nbytes(batch)
        stats.wait_s += wait_s
        stats.total_s += since_last_s
        self._position += 1

    def _finish_epoch(self) -> None:
        self._epoch, self._position = self._epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        """JSON-able position: the epoch and the batches delivered in it (not those read ahead)."""
        return {**self.sampler.state_dict(), "epoch": self._epoch, "batches_done": self._position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume at ``state``: the next pass starts at its epoch, after its delivered batches."""
        self.close()
        self.sampler.load_state_dict(state)  # raises IncompatibleResumeError if settings changed
        self._epoch, self._position = self.sampler.epoch, self.sampler.batches_done

    def close(self) -> None:
        """Stop the reader threads or worker processes of the pass in progress, if any."""
        ref = getattr(self, "_current", None)
        it = ref() if ref is not None else None
        self._current = None
        if it is not None:
            it.close()

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def loader(dataset: Any, **options: Any) -> Loader:
    """Batches of ``dataset`` (see :class:`Loader` for options).

    >>> ds = wb.open_dataset({"x": np.zeros((4096, 8), "float32"), "y": np.arange(4096)})
    >>> dl = loader(ds, batch_size=1024, shuffle="full", seed=1, num_workers=2)  # 2 read-ahead threads
    >>> sorted(torch.cat([batch["y"] for batch in dl]).tolist()) == list(range(4096))  # each row once
    True
    """
    return Loader(dataset, **options)
