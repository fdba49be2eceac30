"""What ``wb.doctor`` can find: the table of pitfalls (id, severity, title), the ``Finding``
record and the thresholds that decide when a measured or inspected fact is a pitfall. Plain data
and arithmetic; the probing lives in ``doctor`` and ``probes``, the drawing in ``ui.diagnosis``.

>>> f = finding("no-timeout", "DataLoader(num_workers=2, timeout=0)", "dl = wb.loader(ds)")
>>> f.severity, f.title
('info', 'no timeout: a hung worker stalls training forever')
>>> per_item_is_slow(per_item_s=41e-6, batched_s=0.3e-6), per_item_is_slow(3e-6, None)
(True, False)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInputError
from ..loading.calls import loader_call

__all__ = ["Finding"]

SEVERITIES = ("error", "warning", "info")  # most urgent first: the order findings are listed in

# id -> (severity, title). The severity is the one a configured loader gets; a bare Dataset,
# whose workers are not known yet, gets the fork-related ones as "info" (see doctor).
KINDS: dict[str, tuple[str, str]] = {
    "h5py-before-fork": ("error", "h5py file opened before the workers start"),
    "zarr-store-before-fork": ("error", "Zarr store opened before the workers start"),
    "python-objects-copy-on-read": ("warning", "many Python objects: workers copy them on read"),
    "per-item-reads": ("warning", "one read per row where one read per batch is possible"),
    "dask-per-item": ("warning", "a Dask computation per item"),
    "internal-batching-shuffle": (
        "warning",
        ("the Dataset batches itself: shuffle=True only reorders whole batches"),
    ),
    "process-workers-over-memmap": ("warning", "worker processes over memory-mapped data"),
    "zarr-random-rows-decode-chunks": ("warning", "each random row decodes a whole Zarr chunk"),
    "zarr-chunks-split-rows": ("warning", "the Zarr chunk grid cuts rows across their width"),
    "zarr-chunks-below-batch": ("info", "Zarr chunks smaller than a batch"),
    "pin-memory-without-gpu": ("info", "pin_memory=True without a GPU"),
    "workers-above-cores": ("warning", "more workers than CPU cores"),
    "no-timeout": ("info", "no timeout: a hung worker stalls training forever"),
}

# Copy-on-read: a forked worker that touches a Python object writes its refcount, which copies
# the whole 4 KiB page holding it; past these counts that is most of the objects' memory.
MIN_OBJECTS = 10_000  # elements over all containers held by the Dataset
MIN_ARRAY_OBJECTS = 1_000  # arrays / tensors held one per element (one heap object per row)
SAMPLE_ELEMENTS = 1_000  # elements measured with sys.getsizeof; the rest scaled from them

# Per-item reads: rows timed one by one against one batched read of the same rows.
PROBE_ITEMS = 48
MIN_RATIO = 3.0  # per-item cost / batched cost worth a finding (h5py: ~7x, 4.7x on a busy VM)
MIN_UNBATCHED_S = 20e-6  # per-item cost worth a finding when no batched read exists
DASK_ITEM_S = 200e-6  # one item that computes a Dask graph costs ms; under this it does not

# 2 worker processes against reading in-process over a 1 GiB memmap on 2 cores, batch 256 (warm
# page cache, benchmarks/README.md): our loader 4.48M vs 0.13M rows/s sequential, 1.73M vs 0.11M
# block, 1.36M vs 0.10M full; the seed MemoryMappedDataset 4.40M vs 0.15M.
PROCESS_SLOWDOWN = "14-34x"
FALLBACK_BATCH = 256  # fix lines for a Dataset driven by nothing yet: the loader's default


@dataclass(frozen=True)
class Finding:
    """One pitfall that ``wb.doctor`` found.

    Parameters
    ----------
    id : str
        Kebab-case, one of ``KINDS``.
    severity : {"error", "warning", "info"}
        How urgent it is.
    title : str
        The pitfall's name, from ``KINDS``.
    evidence : str
        The measured or inspected facts.
    fix : str
        One line of workbench code.
    """

    id: str
    severity: str
    title: str
    evidence: str
    fix: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finding(id: str, evidence: str, fix: str, severity: str | None = None) -> Finding:
    """The ``Finding`` for ``id`` with the table's title and severity (or ``severity``)."""
    if id not in KINDS:
        raise InvalidInputError(f"unknown finding id {id!r}; use one of {sorted(KINDS)}")
    default, title = KINDS[id]
    sev = severity or default
    if sev not in SEVERITIES:
        raise InvalidInputError(f"severity={sev!r}; use one of {SEVERITIES}")
    return Finding(id, sev, title, evidence, fix)


def ordered(findings: list[Finding]) -> list[Finding]:
    """Most severe first; the table's order within a severity (stable, so repeatable)."""
    ids = list(KINDS)
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), ids.index(f.id)))


def per_item_is_slow(per_item_s: float, batched_s: float | None) -> bool:
    """Worth a finding: far above a batched read of the same rows, or slow with none to offer."""
    if batched_s is None:
        return per_item_s > MIN_UNBATCHED_S
    return per_item_s >= MIN_RATIO * max(batched_s, 1e-9)


def too_many_objects(elements: int, arrays: int) -> bool:
    """Enough Python objects that copy-on-read grows every worker toward the dataset's size."""
    return elements >= MIN_OBJECTS or arrays >= MIN_ARRAY_OBJECTS


def scaled(sample_total: float, sampled: int, total: int) -> int:
    """Bytes of ``total`` elements from the bytes of a sample of ``sampled`` of them."""
    return round(sample_total * total / sampled) if sampled else 0


def batches_itself(length: int, rows: int, batch_size: int) -> bool:
    """``len(ds)`` counts batches of ``batch_size`` over ``rows`` rows, not rows."""
    return (
        batch_size > 1
        and rows > batch_size
        and length in (rows // batch_size, math.ceil(rows / batch_size))
    )


def item_is_batch(item_rows: int, batch_size: int) -> bool:
    """An item of ``batch_size`` rows (or one more: an inclusive ``.loc[start:end]``)."""
    return batch_size > 1 and item_rows in (batch_size, batch_size + 1)


def per_row(seconds: float) -> str:
    """``4.1e-05`` -> ``'41 µs'``: a per-row cost for an evidence sentence."""
    us = seconds * 1e6
    if us >= 1000:
        return f"{us / 1000:,.1f} ms"
    return f"{us:,.0f} µs" if us >= 10 else f"{us:.2g} µs"


# -- how a Dataset is driven, and what that alone says ----------------------------------------
@dataclass(frozen=True)
class Setup:
    """How the dataset is driven; a bare Dataset has no workers and no sampler yet."""

    what: str  # "DataLoader", "wb.loader" or "Dataset"
    dataset: Any = field(repr=False)
    name: str  # the Dataset's class name
    items: int | None  # len(dataset); None for an iterable-style one
    batch_size: int | None
    shuffled: bool = False  # the sampler draws items in random order
    workers: int = 0
    processes: bool = False  # the workers are forked / spawned processes
    start: str = ""  # their start method
    pin_memory: bool = False
    timeout: float | None = None
    own_batch_size: int | None = None  # a batch_size attribute of the Dataset itself
    order: str = ""  # the loader's order ("full" for a DataLoader's random sampler)

    @property
    def bare(self) -> bool:
        return self.what == "Dataset"

    @property
    def fix_batch(self) -> int:
        """The batch size a fix line keeps: the Dataset's own when it batches itself."""
        if self.batch_size in (None, 1) and self.own_batch_size and self.own_batch_size > 1:
            return self.own_batch_size
        return int(self.batch_size or FALLBACK_BATCH)

    @property
    def same_batch(self) -> int:
        """The batch size a ``wb.loader(ds, ...)`` fix keeps: the one it is driven with (1 for a
        Dataset that batches itself, as ``DataLoader(batch_size=None)`` has it)."""
        return int(self.batch_size or (1 if self.own_batch_size else FALLBACK_BATCH))

    @property
    def forks(self) -> str:
        """Who inherits what the Dataset holds, for an evidence sentence."""
        if self.bare:
            return "a DataLoader with num_workers > 0 would start its workers with them"
        return f"the {self.what}'s {self.workers} worker processes ({self.start}) start with them"

    @property
    def fork_severity(self) -> str | None:
        """Fork pitfalls of a bare Dataset are only possible yet: "info"; else the table's."""
        return "info" if self.bare else None


def subject(s: Setup) -> str:
    head = f"{s.name} ({s.items:,} items)" if s.items is not None else f"{s.name} (iterable)"
    if s.bare:
        return head
    kind = (
        f"{s.workers} worker processes ({s.start})"
        if s.processes
        else f"{s.workers} threads"
        if s.workers
        else "in-process"
    )
    return (
        f"{s.what} over {head}: batch_size={s.batch_size}, {kind}, "
        f"shuffle={'yes' if s.shuffled else 'no'}"
    )


def expr(path: str) -> str:
    """``SeedHDF5Dataset.data`` -> ``ds.data``: the user's variable in a fix line."""
    return "ds" + path[path.index(".") :] if "." in path else "ds"


def columns_expr(paths: list[str], wrap: list[str] | None = None) -> str:
    """``{'features': ds.features, ...}``, each value wrapped in ``wrap[i]`` (``torch.stack``)."""
    wrap = wrap or [""] * len(paths)
    return (
        "{"
        + ", ".join(
            f"{expr(p).split('.')[-1]!r}: " + (f"{w}({expr(p)})" if w else expr(p))
            for p, w in zip(paths, wrap)
        )
        + "}"
    )


def loader_line(source: str, batch_size: int, **options: Any) -> str:
    """``dl = wb.loader(<source>, batch_size=B, <options>)``."""
    return "dl = " + loader_call({"batch_size": batch_size, **options}, source)


def convert_line(arity: int | None, batch_size: int) -> str:
    """Convert a Dataset's items once, then load batches: for one without arrays to open. Items
    that are tuples become columns x, y, ...; others are passed as they come."""
    items = "map(ds.__getitem__, range(len(ds)))"
    if arity and 1 < arity <= 4:
        names = "xyzw"[:arity]
        items = (
            "({"
            + ", ".join(f"{n!r}: {n}" for n in names)
            + "} for "
            + ", ".join(names)
            + f" in {items})"
        )
    return f"wb.convert({items}, 'data.store'); " + loader_line(
        "wb.open_dataset('data.store')", batch_size, shuffle="block"
    )


def settings_findings(s: Setup, cuda: bool, cores: int, torch_version: str) -> list[Finding]:
    """What the options alone say: pin_memory without CUDA, more workers than cores, no timeout."""
    out = []
    procs = "processes" if s.processes else "threads"
    keep = {"worker_type": "process"} if s.processes else {}
    if s.pin_memory and not cuda:
        out.append(
            finding(
                "pin-memory-without-gpu",
                f"pin_memory=True but torch.cuda.is_available() is False (torch {torch_version}): "
                "there is no GPU to copy to, so nothing is pinned and the option only adds a "
                "warning or a pin thread",
                loader_line("ds", s.same_batch, pin_memory=False),
            )
        )
    if s.workers > cores:
        out.append(
            finding(
                "workers-above-cores",
                f"num_workers={s.workers} {procs} but this process may use {cores} CPU cores "
                "(its affinity and CPU quota): the extra workers only compete for the same "
                "cores and each holds its own prefetched batches in memory",
                loader_line("ds", s.same_batch, **keep, num_workers=cores)
                if keep
                else loader_line("ds", s.same_batch, num_workers=None),
            )
        )
    if s.workers and s.timeout is None:
        said = "timeout=0" if s.what == "DataLoader" else "timeout=None"
        out.append(
            finding(
                "no-timeout",
                f"{said} with {s.workers} worker {procs}: a worker that hangs (a lock inherited "
                "through fork, a stuck network read) blocks the training loop forever, "
                "with no error",
                loader_line("ds", s.same_batch, **keep, num_workers=s.workers, timeout=30),
            )
        )
    return out
