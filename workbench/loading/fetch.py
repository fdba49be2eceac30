"""Reading one batch, the same way in the caller, a read-ahead thread or a worker process: our
datasets' one-pass ``get_batch``, or any map-style Dataset through PyTorch's own contract
(``__getitems__`` or ``__getitem__``, then ``collate_fn``); then the per-batch transform.

A transform that takes a second argument gets a ``torch.Generator`` seeded from
``(seed, epoch, batch number)``: the same augmentation for the same batch whatever the worker
type, the worker count, or a resume in the middle of the epoch.

>>> ds = torch.utils.data.TensorDataset(torch.arange(10.0))
>>> Fetch(ds, None, None, 0, False)(np.array([3, 1]), 0, 0)
[tensor([3., 1.])]
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate

from ..datasets.protocols import (
    GetItems,
    HasBlocks,
    HasRowBytes,
    HasShards,
    NumbersEpochs,
    PlansReads,
    ReadsAhead,
    ReadsBatches,
    WillNeed,
)
from ..errors import InvalidInputError, LoaderTimeoutError, WorkerError, in_worker
from .workers.ranges import profiling, stage_range

__all__: list[str] = []


def _takes_generator(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: call with the batch only
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def batch_seed(seed: int, epoch: int, k: int) -> int:
    """The seed of batch ``k`` of ``epoch``: independent streams per batch, stable across runs."""
    return int(np.random.SeedSequence([seed, epoch, k, 0x7A]).generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class Capabilities:
    """What a loader may ask of its dataset beyond ``__len__`` / ``__getitem__``, found once
    through :mod:`workbench.datasets.protocols` (a plain torch Dataset: none of it).

    >>> plain = Capabilities.of(torch.utils.data.TensorDataset(torch.zeros(3)))
    >>> plain.row_nbytes, plain.block_rows, plain.will_need, plain.reads_ahead
    (0, None, None, False)
    """

    row_nbytes: int = 0
    reads_ahead: bool = False  # starts the next batch in the background: no threads needed
    block_rows: int | None = None
    shard_rows: list[int] | None = None
    will_need: Callable[..., int] | None = None
    plans_reads: bool = False
    epoch_rows: int = 0  # rows numbered across epochs (wb.mix): the sampler offsets each epoch

    @classmethod
    def of(cls, dataset: Any) -> Capabilities:
        """Ask ``dataset`` once (never per batch: a protocol check costs microseconds)."""
        return cls(
            int(dataset.row_nbytes or 0) if isinstance(dataset, HasRowBytes) else 0,
            isinstance(dataset, ReadsAhead) and bool(dataset.reads_ahead),
            dataset.block_rows if isinstance(dataset, HasBlocks) else None,
            dataset.shard_rows if isinstance(dataset, HasShards) else None,
            dataset.will_need if isinstance(dataset, WillNeed) else None,
            isinstance(dataset, PlansReads),
            int(dataset.epoch_rows) if isinstance(dataset, NumbersEpochs) else 0,
        )


class Fetch:
    """``fetch(idx, epoch, k)`` -> the batch; pickles as its dataset and functions (for workers)."""

    def __init__(
        self,
        dataset: Any,
        collate_fn: Callable[[Any], Any] | None,
        transform: Callable[..., Any] | None,
        seed: int,
        contiguous: bool,
    ) -> None:
        self.dataset, self.transform, self.seed, self.contiguous = (
            dataset,
            transform,
            seed,
            contiguous,
        )
        self.ours = isinstance(dataset, ReadsBatches) and collate_fn is None
        self.batched = isinstance(dataset, GetItems)
        self.collate = collate_fn or default_collate
        self.wants_generator = transform is not None and _takes_generator(transform)
        # whether start() may read in the background
        self.starts = self.ours and not contiguous and isinstance(dataset, ReadsAhead)
        # bytes a row takes in a batch, where known without looking at the batch (else 0)
        self.row_bytes = int(dataset.dense_row_nbytes) if self.fills else 0

    @property
    def fills(self) -> bool:
        """Whether :meth:`fill` can read a batch straight into given tensors."""
        return self.ours and self.transform is None

    def fill(self, idx: np.ndarray, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The batch at ``idx`` read into ``out`` (column -> tensor of ``len(idx)`` rows)."""
        return self.dataset.get_batch(self._rows(idx), out=out)

    def _rows(self, idx: np.ndarray) -> Any:
        # our readers take the sampler's int64 array as is, or a range when every batch is one
        # run (their zero-copy path); a list would cost ~15 us/batch to build and re-check
        return range(int(idx[0]), int(idx[-1]) + 1) if self.contiguous and len(idx) else idx

    def start(self, idx: np.ndarray) -> Any:
        """Begin reading the batch at ``idx`` in the background (our datasets, on the compiled
        gather's helper threads), for :meth:`finish`; None where it cannot."""
        if not self.starts:
            return None
        try:
            return self.dataset.start_batch(idx)
        except Exception:  # a bad batch: the read proper raises it, in its turn
            return None

    def finish(self, started: Any, idx: np.ndarray, epoch: int, k: int) -> Any:
        """The batch :meth:`start` began, transformed."""
        return self._transformed(self.dataset.finish_batch(started), idx, epoch, k)

    def __call__(self, idx: np.ndarray, epoch: int, k: int) -> Any:
        if self.ours:
            batch = self.dataset.get_batch(self._rows(idx))
        else:
            batch = self.collate(self._items(idx))
        return self._transformed(batch, idx, epoch, k)

    def _items(self, idx: np.ndarray) -> Any:
        items = idx.tolist()  # the Dataset protocol's list[int]
        return (
            self.dataset.__getitems__(items) if self.batched else [self.dataset[i] for i in items]
        )

    def timed(
        self, idx: np.ndarray, epoch: int, k: int, started: Any = None, t0: float = 0.0
    ) -> tuple[Any, float, float, float, float]:
        """The batch (:meth:`__call__`, or :meth:`finish` of ``started``) and when its stages
        ran here: ``(batch, t0, read end, collate end, transform end)`` (``perf_counter()``
        seconds; ``t0`` 0: now; of a started read: the part waited for). Inside ``workbench.*``
        profiler ranges while a profiler runs."""
        if profiling():
            return self._ranged(idx, epoch, k, started, t0)
        t0 = t0 or perf_counter()
        if started is not None:
            batch = self.dataset.finish_batch(started)
            t1 = t2 = perf_counter()
        elif self.ours:
            batch = self.dataset.get_batch(self._rows(idx))
            t1 = t2 = perf_counter()
        else:
            data = self._items(idx)
            t1 = perf_counter()
            batch = self.collate(data)
            t2 = perf_counter()
        if self.transform is None:
            return batch, t0, t1, t2, t2
        return self._transformed(batch, idx, epoch, k), t0, t1, t2, perf_counter()

    def _ranged(
        self, idx: np.ndarray, epoch: int, k: int, started: Any, t0: float
    ) -> tuple[Any, float, float, float, float]:
        """:meth:`timed` with each stage in its profiler range."""
        t0 = t0 or perf_counter()
        with stage_range("workbench.read"):
            if started is not None:
                batch = self.dataset.finish_batch(started)
            elif self.ours:
                batch = self.dataset.get_batch(self._rows(idx))
            else:
                batch = self._items(idx)
        t1 = t2 = perf_counter()
        if started is None and not self.ours:
            with stage_range("workbench.collate"):
                batch = self.collate(batch)
            t2 = perf_counter()
        if self.transform is None:
            return batch, t0, t1, t2, t2
        with stage_range("workbench.transform"):
            batch = self._transformed(batch, idx, epoch, k)
        return batch, t0, t1, t2, perf_counter()

    def _transformed(self, batch: Any, idx: np.ndarray, epoch: int, k: int) -> Any:
        if self.transform is None:
            return batch
        try:
            if self.wants_generator:
                gen = torch.Generator().manual_seed(batch_seed(self.seed, epoch, k))
                return self.transform(batch, gen)
            return self.transform(batch)
        except Exception as exc:
            name = getattr(self.transform, "__qualname__", repr(self.transform))
            raise in_worker(
                exc,
                f"transform {name} raised on batch {k} of epoch {epoch} ({len(idx)} rows from "
                f"row {int(idx[0]) if len(idx) else 0}): {type(exc).__name__}: {exc}; fix the "
                "transform, or run with num_workers=0 to debug it in the main process",
            ) from exc


def describe_rows(idx: np.ndarray) -> str:
    rows = idx.tolist()
    shown = rows if len(rows) <= 8 else rows[:4] + ["..."] + rows[-3:]
    return f"rows [{', '.join(map(str, shown))}] ({len(rows)} rows)"


def read_error(
    exc: BaseException, idx: np.ndarray, where: str, key: tuple[Any, int, int] | None = None
) -> WorkerError:
    """What a failed read raises: the reader's own class (also a WorkerError), naming the rows,
    the batch and epoch when known (``key``), and where it ran."""
    lines = str(exc).strip().splitlines()
    # torch re-raises worker errors as "Caught X in DataLoader worker ... Traceback ... X: msg"
    original = lines[-1] if lines and "Traceback" in str(exc) else f"{type(exc).__name__}: {exc}"
    batch = f" (batch {key[2]} of epoch {key[1]})" if key is not None else ""
    return in_worker(
        exc,
        f"reading {describe_rows(idx)}{batch} failed {where}: {original}. Fix the dataset, or "
        "run with num_workers=0 to debug the read in the main process",
    )


def timeout_error(idx: np.ndarray, timeout: float | None, where: str) -> LoaderTimeoutError:
    return LoaderTimeoutError(
        f"reading {describe_rows(idx)} took longer than timeout={timeout}s in {where}; "
        "the storage is hung or far too slow: check it, or pass a larger timeout="
    )


def check_dataset(dataset: Any) -> None:
    """A map-style dataset (``__len__`` and ``__getitem__``) or a clear error naming the way out."""
    if isinstance(dataset, torch.utils.data.IterableDataset):
        raise InvalidInputError(
            f"{type(dataset).__name__} is an IterableDataset: it has no random access, so it "
            "cannot be shuffled, split across ranks or resumed by position. Iterate it with "
            "torch.utils.data.DataLoader(dataset, batch_size=...), or convert the stream once: "
            "wb.convert(iter(dataset), 'data.store'), then wb.loader(wb.open_dataset('data.store'))"
        )
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise InvalidInputError(
            f"a {type(dataset).__name__} is not a map-style dataset: give it __len__ and "
            "__getitem__ (as torch.utils.data.Dataset subclasses do), or open your data with "
            "wb.open_dataset(...)"
        )
