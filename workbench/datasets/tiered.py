"""A dataset read from its RAM tier once the copy is complete, from its source until then: what
``open_dataset(..., cache="ram")`` returns.

:class:`TieredDataset` is an :class:`~.arrays.ArraysDataset` of one shard, the tier's arrays
(:mod:`.ramtier`), so that once the copy is ready a full shuffle is the compiled gather over
huge-page memory, in-process or in forked workers, and contiguous batches are zero-copy views of
it. Until then (and for good where the copy did not fit, stopped or failed) every read goes to
the source dataset unchanged: a batch asked for before the copy has reached its rows comes from
the page cache as it would without the tier. The source's facts (columns, shards, blocks, row
bytes, manifest, read counters) are the dataset's own.

>>> ds = wb.open_dataset("demo_data/demo.store", columns=["features", "label"], cache="ram")
>>> ds.ram_tier.wait().ready, ds.get_batch([5, 2])["label"].shape
(True, torch.Size([2]))
"""

from __future__ import annotations

import mmap
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError
from . import gather as _gather
from .arrays import Array, ArraysDataset
from .base import BaseDataset
from .plan import Plan
from .protocols import ReadsAhead, WillNeed
from .ramtier import RamTier

__all__: list[str] = []

CACHES = (None, "ram")


class TieredDataset(ArraysDataset):
    """``source`` read through its :class:`RamTier` ``ram_tier`` (see the module)."""

    _sources = None  # the native path over the tier's arrays, built once it is ready

    def __init__(self, source: BaseDataset, tier: RamTier) -> None:
        super().__init__(
            source.column_specs,
            len(source),
            where=source.where,
            sparse=source.sparse,
            dtype=source.dtype,
            manifest=source.manifest,
            version_dir=source.version_dir,
        )
        self.source, self.ram_tier, self.kind = source, tier, source.kind
        self._set_shards([len(source)])
        if hasattr(source, "shard_rows"):
            self.shard_rows = list(source.shard_rows)  # the shard order's units stay the source's
        else:
            del self.shard_rows
        self.row_nbytes, self.block_rows, self.stats = (
            source.row_nbytes,
            source.block_rows,
            source.stats,
        )
        self._source_starts = isinstance(source, ReadsAhead)

    def _shard(self, s: int) -> dict[str, Array]:
        return self.ram_tier.arrays

    def get_batch(
        self, indices: Any, out: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """See :meth:`BaseDataset.get_batch`: from the tier once it is ready, else the source."""
        if self.ram_tier.ready:
            return super().get_batch(indices, out)
        return self.source.get_batch(indices, out)

    @property
    def reads_ahead(self) -> bool:  # type: ignore[override]
        """Whether the next batch can be gathered in the background: the source's answer while
        it serves reads, the compiled gather's helpers' once the tier does."""
        helpers = _gather.native is not None and _gather.native_threads() > 1
        return helpers or (self._source_starts and bool(self.source.reads_ahead))

    def start_batch(self, indices: Any) -> Any:
        """Begin the batch on the gather's helper threads (None where it cannot)."""
        if self.ram_tier.ready:
            got = super().start_batch(indices)
            return None if got is None else (True, got)
        got = self.source.start_batch(indices) if self._source_starts else None
        return None if got is None else (False, got)

    def finish_batch(self, started: Any) -> dict[str, Any]:
        """The batch :meth:`start_batch` began, from whichever read it."""
        ours, got = started
        return super().finish_batch(got) if ours else self.source.finish_batch(got)

    def will_need(self, starts: np.ndarray, lengths: np.ndarray) -> int:
        """The source's read-ahead while it serves reads; 0 (resident) once the tier does."""
        if self.ram_tier.ready or not isinstance(self.source, WillNeed):
            return 0
        return int(self.source.will_need(starts, lengths))

    def _read(self, plan: Plan) -> dict[str, Array]:
        if self.ram_tier.ready:
            return super()._read(plan)
        if plan.contiguous:
            return self.source.read_chunk(plan.lo, plan.hi + 1)  # type: ignore[no-any-return]
        got = self.source.get_batch(plan.idx)
        return {k: v.numpy() for k, v in got.items()}

    def describe_source(self) -> str:
        return f"{self.source.describe_source()}; {self.ram_tier.describe()}"

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_sources", None)  # views of this process's copy; rebuilt where it is seen
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.stats = self.source.stats


def _in_ram(a: Any) -> bool:
    """Whether ``a`` is an ndarray in anonymous memory (not a memmap of a file)."""
    if not isinstance(a, np.ndarray):
        return False
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return False
        a = getattr(a, "base", None)
    return True


def with_cache(ds: BaseDataset, cache: str | None, memory_budget: Any = None) -> BaseDataset:
    """``ds`` behind the tier ``cache`` names (None: ``ds`` itself); its copy started.

    Parameters
    ----------
    ds : BaseDataset
        The dataset as opened.
    cache : {None, "ram"}
        ``"ram"``: copy the selected dense columns into huge-page memory in the background
        where they fit ``memory_budget`` (else a :class:`~workbench.errors.MemoryBudgetWarning`
        says why, and reads stay on the source).
    memory_budget : int or str, optional
        The most bytes the copy may take (default: half of what the container leaves).

    Returns
    -------
    BaseDataset
        A :class:`TieredDataset`, or ``ds`` where ``cache`` is None or its data is already in
        memory (its ``ram_tier`` then says so).
    """
    if cache not in CACHES:
        raise InvalidInputError(
            f"{ds.where}: cache={cache!r}; use None (read the source) or 'ram' (copy it into "
            "huge-page memory where it fits the memory budget)"
        )
    if cache is None:
        return ds
    arrays = getattr(ds, "arrays", None)
    cols, n = ds.column_specs, len(ds)
    if isinstance(arrays, dict) and all(_in_ram(a) for a in arrays.values()):
        ds.ram_tier = RamTier(ds, cols, n, memory_budget, skip="already in memory: no copy")
        return ds
    tier = RamTier(ds, cols, n, memory_budget)
    out = TieredDataset(ds, tier)
    tier.start()
    return out
