"""Layout advice as rules over plain facts: a dataset's size against RAM, its row size, its
current layout and read unit, and the access pattern asked for. Each recommendation carries its
reason and the line of workbench code that applies it.

>>> recs = recommend(Situation(bytes=40 << 30, ram=16 << 30, row_bytes=1024, rows=40 << 20,
...                            layout="hdf5 chunk", amplification={"full": 30.0, "block": 1.1},
...                            shuffle="full", batch_size=1024, source="data.h5"))
>>> [r.topic for r in recs]
['layout', 'shuffle', 'shard bytes', 'block rows', 'loader']
>>> recs[1].value
'block'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..loading.calls import loader_call
from ..units import human_bytes

__all__: list[str] = []

SHARD_BYTES = 256 << 20  # conversion's default: enough shards for Dask, few files
MAX_SHARDS = 4096
BLOCK_BYTES = 4 << 20  # a block-shuffle block: one long sequential read, about 4 MiB
THREADS_FROM_BYTES = 1 << 20  # the loader's own rule: read-ahead threads from 1 MiB batches


@dataclass(frozen=True)
class Situation:
    bytes: int  # logical bytes of the whole dataset
    ram: int  # memory the page cache can use (available RAM)
    row_bytes: int
    rows: int
    layout: str  # the current read unit: "page" (our store, a .npy), "hdf5 chunk", ...
    amplification: dict[str, float]  # per order, from explore.facts.access_costs
    shuffle: str
    batch_size: int
    source: str
    is_ours: bool = False  # a workbench dataset already
    convert_call: str = ""  # the wb.convert(...) line for this source, when not the plain one

    @property
    def fits(self) -> bool:
        return self.bytes <= self.ram // 2  # leave room for the model, the batches and the workers


@dataclass(frozen=True)
class Recommendation:
    topic: str
    value: str
    reason: str
    code: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def recommend(s: Situation) -> list[Recommendation]:
    """The advice for ``s``, most important first."""
    out = []
    store = s.convert_call or f'wb.convert("{s.source}", "data.store")'
    full = s.amplification.get("full", 1.0)
    if s.is_ours and s.layout == "page":
        out.append(
            Recommendation(
                "layout",
                "keep the store",
                "an uncompressed sharded .npy store "
                "is memory-mapped: sequential batches are zero-copy and any "
                "row is one page away",
                f'ds = wb.open_dataset("{s.source}")',
            )
        )
    elif s.layout in ("hdf5 chunk", "row group", "dask chunk", "zarr chunk") and full > 2:
        out.append(
            Recommendation(
                "layout",
                "store",
                f"each random row decodes a whole {s.layout}: "
                f"a full-shuffle batch decodes {full:,.0f}x the bytes it uses; a "
                "memory-mapped store reads one page per row",
                store,
            )
        )
    else:
        out.append(
            Recommendation(
                "layout",
                "store" if not s.is_ours else "keep it",
                "random access by memory map, batched reads, zero-copy sequential batches",
                store if not s.is_ours else f'ds = wb.open_dataset("{s.source}")',
            )
        )
    if s.shuffle == "full" and not s.fits:
        epoch = s.bytes * full
        out.append(
            Recommendation(
                "shuffle",
                "block",
                f"{human_bytes(s.bytes)} does not fit the page cache "
                f"({human_bytes(s.ram)} available): a cold full-shuffle epoch reads about "
                f"{human_bytes(epoch)} from disk ({full:,.0f}x the data); block order reads about "
                f"{human_bytes(s.bytes * s.amplification.get('block', 1.0))}, one long read per "
                "block, and still mixes rows across a window of blocks",
                'shuffle="block"',
            )
        )
    elif s.shuffle == "full":
        out.append(
            Recommendation(
                "shuffle",
                "full",
                f"{human_bytes(s.bytes)} fits the page cache "
                f"({human_bytes(s.ram)} available): warm it once and a full shuffle "
                "costs memory reads only",
                f'wb.warm("{s.source}"); shuffle="full"',
            )
        )
    else:
        out.append(
            Recommendation(
                "shuffle",
                s.shuffle,
                f"{s.shuffle} order reads whole runs of rows: no read amplification",
                f'shuffle="{s.shuffle}"',
            )
        )
    shards = max(1, min(MAX_SHARDS, -(-s.bytes // SHARD_BYTES)))
    out.append(
        Recommendation(
            "shard bytes",
            human_bytes(SHARD_BYTES),
            f"{shards:,} shard{'s' if shards != 1 else ''}: enough for Dask workers to convert in "
            "parallel and for ranks to split, few enough files to open",
            f"shard_bytes={SHARD_BYTES >> 20} << 20",
        )
    )
    block_rows = 1 << max(0, (BLOCK_BYTES // max(1, s.row_bytes)).bit_length() - 1)
    out.append(
        Recommendation(
            "block rows",
            f"{block_rows:,}",
            f"{human_bytes(block_rows * s.row_bytes)} blocks: each is one sequential "
            "read, and the HDF5 or Zarr chunk or Parquet row group should be this many "
            "rows (or divide it) so a block never decodes a unit twice",
            f"block_rows={block_rows}",
        )
    )
    batch = s.batch_size * s.row_bytes
    workers = None if batch < THREADS_FROM_BYTES else 2
    out.append(
        Recommendation(
            "loader",
            f"num_workers={workers}, worker_type='thread'",
            f"batches of {human_bytes(batch)}: "
            + (
                "in-process reads beat handing batches across threads below 1 MiB"
                if batch < THREADS_FROM_BYTES
                else "two read-ahead threads overlap reads with your step"
            )
            + "; process workers copy every batch "
            "through shared memory",
            loader_call({"batch_size": s.batch_size, "shuffle": _order(s), "num_workers": workers}),
        )
    )
    return out


def _order(s: Situation) -> str:
    return "block" if s.shuffle == "full" and not s.fits else s.shuffle
