"""The loader's options as users see them: one table of names, defaults and documentation, from
which every entry point that takes them builds its signature (``wb.loader``, ``wb.Loader``,
``wb.tune``, ``wb.autotune``), so Shift-Tab, tab completion and ``inspect.signature`` list each
option with its default, and the numpydoc of each function carries the same text.

>>> import inspect
>>> inspect.signature(wb.loader).parameters["batch_size"]
<Parameter "batch_size: 'int' = 256">
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ..errors import InvalidInputError

__all__: list[str] = []

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Option:
    """One loader option: its name, default, type as written, and what it does."""

    name: str
    default: Any
    annotation: str
    doc: str


OPTIONS: tuple[Option, ...] = (
    Option("batch_size", 256, "int", "Rows a batch (DataLoader's meaning; not 1 by default)."),
    Option(
        "shuffle",
        "block",
        "bool | str",
        "The order of rows in an epoch: True (a full permutation) or False (sequential), as in "
        "DataLoader, or an order name: 'sequential', 'full', 'block' (storage-aligned "
        "quasi-random, fast on cold data) or 'shard' (whole shards permuted, for streaming).",
    ),
    Option(
        "seed",
        None,
        "int | None",
        "The order's seed; default: ``generator.initial_seed()`` when a generator is given, "
        "else 0.",
    ),
    Option(
        "num_workers",
        None,
        "int | None",
        "Readers beside the consumer; None lets the loader choose: in-process for datasets "
        "that gather the next batch in the background (stores, memmaps), else 2 threads from "
        "1 MiB a batch, 2 processes where a ``transform`` is given.",
    ),
    Option(
        "worker_type",
        None,
        "str | None",
        "'thread', 'process' (torch DataLoader workers, shared-memory slots), or None: "
        "processes where a ``transform`` is given and workers start by fork, else threads.",
    ),
    Option(
        "prefetch_factor",
        None,
        "int | None",
        "Batches read ahead per reader; None: 2 per thread, and per process as many as fit in "
        "4 MiB (2 to 16), sent as one request.",
    ),
    Option("pin_memory", False, "bool", "Pin batches for CUDA copies (a no-op without CUDA)."),
    Option(
        "window",
        None,
        "int | None",
        "Blocks (or shards) the block and shard orders mix at a time; None: 8, or in shard order "
        "over a streamed dataset the widest window whose shards fit in its cache.",
    ),
    Option(
        "run_rows",
        1,
        "int",
        "Block order: rows a contiguous run inside a batch (runs are copied as slices; "
        "``wb.shuffle_quality`` measures the mixing it costs).",
    ),
    Option(
        "block_rows",
        None,
        "int | None",
        "The block order's unit; default: the dataset's storage blocks, else 4096 rows.",
    ),
    Option("drop_last", False, "bool", "Drop the last, short batch (DataLoader's meaning)."),
    Option(
        "collate_fn",
        None,
        "Callable | None",
        "Joins a list of samples into a batch; default: our datasets read whole batches "
        "without it, others use torch's ``default_collate``.",
    ),
    Option(
        "transform",
        None,
        "Callable | None",
        "A per-batch function, run where the batch is read; one taking ``(batch, "
        "generator)`` gets a generator seeded per (seed, epoch, batch).",
    ),
    Option("pin_memory_device", "", "str", "DataLoader's meaning."),
    Option(
        "timeout",
        30.0,
        "float | None",
        "Seconds to wait for a batch before a named error (0 or None: wait forever).",
    ),
    Option(
        "worker_init_fn",
        None,
        "Callable | None",
        "Called in each worker process, or each read-ahead thread, with its number.",
    ),
    Option("multiprocessing_context", None, "Any", "DataLoader's meaning (process workers)."),
    Option(
        "generator",
        None,
        "torch.Generator | None",
        "Seeds the order when ``seed`` is not given (DataLoader's role).",
    ),
    Option(
        "persistent_workers",
        False,
        "bool",
        "Keep worker processes across epochs (threads are cheap to start and ignore it).",
    ),
    Option(
        "rank",
        None,
        "int | None",
        "This data-parallel rank; default: the initialised ``torch.distributed`` group's, else 0.",
    ),
    Option(
        "world_size",
        None,
        "int | None",
        "Ranks in all; default: the ``torch.distributed`` group's, else 1.",
    ),
)
NAMES = tuple(o.name for o in OPTIONS)


def parameters() -> list[inspect.Parameter]:
    """The options as keyword-only parameters, in the table's order."""
    return [
        inspect.Parameter(
            o.name, inspect.Parameter.KEYWORD_ONLY, default=o.default, annotation=o.annotation
        )
        for o in OPTIONS
    ]


def numpydoc(indent: str = "    ") -> str:
    """The options as a numpydoc ``Other Parameters`` section."""
    import textwrap

    lines = ["Other Parameters", "----------------"]
    for o in OPTIONS:
        lines.append(f"{o.name} : {o.annotation}, default {o.default!r}")
        lines.extend(textwrap.wrap(o.doc, 92, initial_indent=indent, subsequent_indent=indent))
    return "\n".join(lines)


def takes_loader_options(fn: F) -> F:
    """Give ``fn`` (a function, or a class for its ``__init__``, whose last parameter is
    ``**options``) a signature listing every option keyword-only with its default, and add their
    documentation to its docstring, before its Examples."""
    target = fn.__init__ if isinstance(fn, type) else fn  # type: ignore[misc]
    sig = inspect.signature(target)
    own = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    target.__signature__ = sig.replace(parameters=[*own, *parameters()])
    doc = inspect.cleandoc(fn.__doc__ or "")
    head, examples, tail = doc.partition("\nExamples\n--------")
    fn.__doc__ = f"{head.rstrip()}\n\n{numpydoc()}\n{examples}{tail}\n"
    return fn


def refuse_samplers(options: dict[str, Any]) -> None:
    """Refuse DataLoader's ``sampler=`` / ``batch_sampler=`` (popped from ``options``)."""
    if options.pop("sampler", None) is not None or options.pop("batch_sampler", None) is not None:
        raise InvalidInputError(
            "sampler= / batch_sampler= are not taken: the loader orders rows itself (shuffle=, "
            "seed=, rank=/world_size=), which is what makes its reads batched and its resume "
            "exact; for a custom sampler use torch.utils.data.DataLoader(dataset, "
            "batch_sampler=...) over the same dataset"
        )
