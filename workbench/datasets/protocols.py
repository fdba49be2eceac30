"""What the loader may ask of a dataset beyond PyTorch's map-style contract, each capability a
:class:`typing.Protocol` in one place (pure: typing only). Every one is optional: a plain
``torch.utils.data.Dataset`` (``__len__`` and ``__getitem__``) satisfies none of them and still
loads. The loader asks ``isinstance(dataset, P)`` once, when a loader or pass is built, never per
batch. ``docs/CONTRACTS.md`` ("Dataset capabilities") says what it does with each and who has it.

>>> class Rows:
...     block_rows = 512
>>> isinstance(Rows(), HasBlocks), isinstance(Rows(), WillNeed)
(True, False)
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__: list[str] = []


@runtime_checkable
class GetItems(Protocol):
    """PyTorch's batched read: the samples at a list of indices (collated by ``collate_fn``)."""

    def __getitems__(self, indices: list[int]) -> Any: ...


@runtime_checkable
class HasRowBytes(Protocol):
    """Bytes one row takes as stored (the selected columns): sizes read-ahead and requests."""

    row_nbytes: int


@runtime_checkable
class HasBlocks(Protocol):
    """Rows per storage-aligned block: the block order's unit (else 4096 rows)."""

    block_rows: int


@runtime_checkable
class HasShards(Protocol):
    """Rows of each shard, in order: the shard order's units."""

    shard_rows: list[int]


@runtime_checkable
class NumbersEpochs(Protocol):
    """Numbers its rows across epochs: the loader asks for row ``v`` of epoch ``e`` as
    ``e * epoch_rows + v`` (a mixture reads its larger sources through over the epochs)."""

    epoch_rows: int


@runtime_checkable
class MixesSources(Protocol):
    """Draws its rows from several named sources and says which in ``source_column`` (None: it
    does not): the loader counts each source's rows delivered (``loader.stats.sources``)."""

    names: tuple[str, ...]
    source_column: str | None


@runtime_checkable
class WillNeed(Protocol):
    """Asks the storage to read runs of rows ahead without waiting; returns the bytes asked for
    (0: nothing to ask, the data is resident)."""

    def will_need(self, starts: Any, lengths: Any) -> int: ...


@runtime_checkable
class PlansReads(Protocol):
    """Told the order a pass will need its shards in (``None``: not known), and after how many
    more shards one is not needed again, so it can fetch ahead; ``cache`` holds the shards,
    ``cache.cache_bytes`` of them at most, the largest ``cache.biggest`` bytes: the shard order's
    window is fitted to it (a pass needs ``window + 3`` shards at once)."""

    cache: Any

    def plan_reads(self, shards: list[int] | None, lag: int = 2) -> None: ...


@runtime_checkable
class ReadsBatches(Protocol):
    """One batch in one read, as a ``dict`` of tensors, optionally straight into ``out``; what
    the loader calls instead of ``__getitems__`` + ``collate_fn`` (our datasets)."""

    columns: tuple[str, ...]
    row_nbytes: int
    dense_row_nbytes: int  # bytes a row takes in a batch where known without measuring, else 0

    def get_batch(self, indices: Any, out: Any = None) -> Any: ...


@runtime_checkable
class ReadsAhead(Protocol):
    """Starts reading a batch in the background (``None`` where it cannot), for
    ``finish_batch`` to return; ``reads_ahead``: whether it can at all here (then an in-process
    loader needs no reader threads)."""

    reads_ahead: bool

    def start_batch(self, indices: Any) -> Any: ...

    def finish_batch(self, started: Any) -> Any: ...
