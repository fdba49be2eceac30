"""Rows filtered at read time: ``open_dataset(path, where=...)``.

The filter (:mod:`.predicates`, or a callable on a batch) is evaluated once, a chunk of rows at a
time (never the whole dataset in memory: the index of the rows kept, 8 bytes each, is all that
stays), into the sorted rows kept. :class:`FilteredDataset` reads row ``i`` as the source's row
``kept[i]``: the loader's orders run over the kept rows, and since ``kept`` ascends, a block of
them is still one stretch of storage (``block_rows`` scales with the fraction kept, so a block
spans about one storage block).

>>> data = {"x": np.arange(10.0), "label": np.arange(10) % 3}
>>> ds = wb.open_dataset(data, where=("label", "==", 1))
>>> len(ds), ds.get_batch([0, 2])["x"].tolist(), f"{ds.kept_fraction:.0%}"
(3, [1.0, 7.0], '30%')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import InvalidInputError
from ..format.sparse import CSR
from .base import BaseDataset
from .plan import Plan, plan_for
from .predicates import Predicate
from .protocols import ReadsAhead, WillNeed

__all__: list[str] = []

SCAN_BYTES = 64 << 20  # rows read at a time while the filter is evaluated


def scan(ds: BaseDataset, where: Any, columns: BaseDataset | None = None) -> np.ndarray:
    """The rows of ``ds`` that ``where`` keeps, ascending, read a chunk at a time from
    ``columns`` (a dataset over the same rows with just the columns the filter names)."""
    src = columns if columns is not None else ds
    n = len(ds)
    step = max(1024, SCAN_BYTES // max(1, src.row_nbytes))
    test = where if callable(where) else Predicate(where, src.columns).mask
    kept = []
    for a in range(0, n, step):
        b = min(n, a + step)
        got = test(src.get_batch(range(a, b)) if callable(where) else src.read_chunk(a, b))
        mask = np.asarray(got.numpy() if isinstance(got, torch.Tensor) else got)
        if mask.dtype != bool or mask.shape != (b - a,):
            raise InvalidInputError(
                f"{ds.where}: where= returned {mask.dtype} of shape {mask.shape} for rows "
                f"{a:,}..{b - 1:,}; it must return one bool a row, shape ({b - a},)"
            )
        kept.append(np.flatnonzero(mask) + a)
    rows = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    if not len(rows):
        raise InvalidInputError(
            f"{ds.where}: where={_said(where)} keeps none of its {n:,} rows; loosen the filter"
        )
    return rows.astype(np.int64)


def _said(where: Any) -> str:
    return getattr(where, "__qualname__", None) or repr(where)


class FilteredDataset(BaseDataset):
    """``source``'s rows ``kept`` (ascending), as a dataset of ``len(kept)`` rows.

    Parameters
    ----------
    source : BaseDataset
        The dataset filtered.
    kept : numpy.ndarray
        Its rows that are kept, ascending (:func:`scan`).
    said : str
        The filter, as the repr shows it.
    """

    def __init__(self, source: BaseDataset, kept: np.ndarray, said: str) -> None:
        super().__init__(
            source.column_specs,
            len(kept),
            where=source.where,
            sparse=source.sparse,
            dtype=source.dtype,
            manifest=source.manifest,
            version_dir=source.version_dir,
        )
        self.source, self.kept, self.filter, self.kind = source, kept, said, source.kind
        self.kept_fraction = len(kept) / max(1, len(source))
        self.row_nbytes, self.stats = source.row_nbytes, source.stats
        self.block_rows = max(1, round(source.block_rows * self.kept_fraction))
        if hasattr(source, "shard_rows"):  # kept rows per shard; shards with none drop out
            ends = np.cumsum(source.shard_rows)
            per = np.diff(np.searchsorted(kept, ends, side="left"), prepend=0)
            self.shard_rows = [int(c) for c in per if c]

    @property
    def reads_ahead(self) -> bool:  # type: ignore[override]
        return isinstance(self.source, ReadsAhead) and bool(self.source.reads_ahead)

    def get_batch(
        self, indices: Any, out: dict[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        """See :meth:`BaseDataset.get_batch`: the source's rows ``kept[indices]``."""
        if not len(indices):
            return super().get_batch(indices, out)
        return self.source.get_batch(self.kept[plan_for(indices, self._n, self.where).idx], out)

    def start_batch(self, indices: Any) -> Any:
        """The source's :meth:`start_batch` of the rows kept there (None where it cannot)."""
        if not self.reads_ahead:
            return None
        return self.source.start_batch(self.kept[np.asarray(indices, np.int64)])

    def finish_batch(self, started: Any) -> Any:
        return self.source.finish_batch(started)

    def will_need(self, starts: np.ndarray, lengths: np.ndarray) -> int:
        """The source's read-ahead of the stretches that hold these runs of kept rows."""
        if not isinstance(self.source, WillNeed) or not len(starts):
            return 0
        first = self.kept[starts]
        last = self.kept[np.asarray(starts) + np.asarray(lengths) - 1]
        return int(self.source.will_need(first, last - first + 1))

    def _read(self, plan: Plan) -> dict[str, Any]:
        """Rows as stored: the source's stretch that holds them, then the kept ones taken."""
        rows = self.kept[plan.idx]
        lo = int(rows[0]) if plan.ascending else int(rows.min())
        chunk = self.source.read_chunk(lo, int(rows.max()) + 1)
        at = rows - lo
        return {k: v.take(at) if isinstance(v, CSR) else v[at] for k, v in chunk.items()}

    def describe_source(self) -> str:
        return (
            f"{self.source.describe_source()}; where {self.filter}: {self._n:,} of "
            f"{len(self.source):,} rows ({self.kept_fraction:.1%})"
        )


def with_filter(
    ds: BaseDataset, where: Any, columns: Callable[[list[str]], BaseDataset] | None = None
) -> BaseDataset:
    """``ds`` filtered by ``where`` (None: ``ds``); ``columns(names)`` opens the same rows with
    just those columns, for the scan (None: scan ``ds``)."""
    if where is None:
        return ds
    narrow = None
    if not callable(where) and columns is not None:  # it may name columns not read
        names = list(Predicate(where).columns)
        try:
            narrow = columns(names) if set(names) != set(ds.columns) else None
        except InvalidInputError as e:
            raise InvalidInputError(f"where={where!r} names the columns {names}: {e}") from e
    return FilteredDataset(ds, scan(ds, where, narrow), _said(where))
