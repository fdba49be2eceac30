"""A loader's options as one frozen, validated object: what ``Loader.reconfigure`` swaps, whole,
at a batch boundary.

>>> c = LoaderConfig.build(row_nbytes=4096, batch_size=512)
>>> c.num_workers, c.with_changes(4096, batch_size=64).batch_size
(2, 64)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import InvalidInputError
from .automatic import DEFAULT_WINDOW, DEFAULT_WORKER_TYPE, choose, order_name
from .calls import loader_call

__all__ = ["LoaderConfig"]

# what reconfigure changes at the next batch boundary, and what waits for the next epoch
LIVE_OPTIONS = (
    "batch_size",
    "num_workers",
    "worker_type",
    "prefetch_factor",
    "pin_memory",
    "window",
    "run_rows",
)
NEXT_EPOCH_OPTIONS = ("shuffle",)


_AUTO = {
    "auto_workers": "num_workers",
    "auto_prefetch": "prefetch_factor",
    "auto_type": "worker_type",
    "auto_window": "window",
}


@dataclass(frozen=True)
class LoaderConfig:
    """Every option of :class:`~workbench.loading.loaders.Loader`, validated; ``shuffle`` is an
    order name and ``num_workers`` and ``prefetch_factor`` resolved (``auto_workers`` /
    ``auto_prefetch`` say they were ``None``, chosen by batch bytes; ``window`` too, fitted to a
    streamed dataset's shard cache). Make one with :meth:`build`.

    Parameters
    ----------
    batch_size, shuffle, seed : int, str, int
        Rows a batch (256); the order's name ("block"; or "sequential", "full", "shard"); its seed.
    num_workers, worker_type, prefetch_factor : int, str, int
        Readers beside the consumer (0: in-process); "thread" or "process"; batches read ahead
        per reader (2).
    pin_memory, pin_memory_device : bool, str
        Pin batches for CUDA copies (default False); DataLoader's device for it.
    window, run_rows, block_rows : int
        Blocks (or shards) the block and shard orders mix at a time (None: 8, or in shard order
        over a streamed dataset the widest its shard cache holds); block order: rows a
        contiguous run inside a batch (1), and its unit (None: the storage's blocks, else 4096).
    drop_last, collate_fn, transform : bool, callable, callable
        Drop the last, short batch; join a list of samples into a batch; a per-batch function,
        run where the batch is read.
    timeout : float or None, default 30.0
        Seconds to wait for a batch before a named error (None: wait forever).
    worker_init_fn, multiprocessing_context, persistent_workers : optional
        Called in each worker process (or read-ahead thread) with its number; how worker
        processes start (DataLoader's meaning); keep them across epochs (default False).
    generator : torch.Generator, optional
        Seeded the order when no ``seed`` was given.
    rank, world_size : int, optional
        This data-parallel rank and the ranks in all (None: ``torch.distributed``'s, else 0, 1).
    auto_workers, auto_prefetch, auto_type, auto_window : bool, default True
        ``num_workers``, ``prefetch_factor``, ``worker_type``, ``window`` were None: the loader
        chose them.
    """

    batch_size: int = 256
    shuffle: str = "block"
    seed: int = 0
    num_workers: int = 0
    worker_type: str = DEFAULT_WORKER_TYPE
    prefetch_factor: int = 2
    pin_memory: bool = False
    window: int = DEFAULT_WINDOW
    run_rows: int = 1
    block_rows: int | None = None
    drop_last: bool = False
    collate_fn: Callable[[Any], Any] | None = None
    transform: Callable[..., Any] | None = None
    pin_memory_device: str = ""
    timeout: float | None = 30.0
    worker_init_fn: Callable[[int], None] | None = None
    multiprocessing_context: Any = None
    generator: torch.Generator | None = None
    persistent_workers: bool = False
    rank: int | None = None
    world_size: int | None = None
    auto_workers: bool = True
    auto_prefetch: bool = True
    auto_type: bool = True
    auto_window: bool = True

    @classmethod
    def build(
        cls,
        row_nbytes: int = 0,
        reads_ahead: bool = False,
        cache: tuple[int, int] | None = None,
        **options: Any,
    ) -> LoaderConfig:
        """Validate ``options`` (DataLoader's names, plus ours) into a config, for a dataset of
        ``row_nbytes`` a row that ``reads_ahead`` in-process or not, and streams its shards
        through a ``cache`` or not.

        Parameters
        ----------
        row_nbytes : int, default 0
            Bytes a row, which the automatic ``num_workers`` and ``prefetch_factor`` go by.
        reads_ahead : bool, default False
            The dataset reads the next batch in the background itself (then in-process wins).
        cache : tuple of int, optional
            The dataset's shard cache, (bytes it holds, bytes of the biggest shard): the shard
            order's automatic ``window`` fits in it, and a given one that does not is refused.
        **options
            The loader options, as :func:`~workbench.loading.loaders.loader` takes them; None
            for ``num_workers``, ``worker_type``, ``prefetch_factor`` or ``window`` lets the
            config choose.

        Returns
        -------
        LoaderConfig

        Raises
        ------
        InvalidInputError
            An unknown option, an unknown ``shuffle``, a value out of range, or a shard-order
            ``window`` whose shards the ``cache`` cannot hold (the message gives the numbers).
        """
        known = {f.name for f in dataclasses.fields(cls)} - set(_AUTO)
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInputError(
                f"unknown loader option(s) {unknown}; the options are {sorted(known)}"
            )
        options["shuffle"] = order_name(options.get("shuffle", "block"))
        generator = options.get("generator")
        if options.get("seed") is None:  # like DataLoader: the generator, if given, decides
            options["seed"] = generator.initial_seed() % (1 << 63) if generator is not None else 0
        timeout = options.get("timeout", 30.0)
        options["timeout"] = timeout if timeout and timeout > 0 else None
        for auto, name in _AUTO.items():
            options[auto] = options.get(name) is None
        return cls(**options)._checked(row_nbytes, reads_ahead, cache)

    def with_changes(
        self,
        row_nbytes: int,
        reads_ahead: bool = False,
        cache: tuple[int, int] | None = None,
        **changes: Any,
    ) -> LoaderConfig:
        """This config with ``changes`` to the options ``reconfigure`` takes live or next epoch.

        Parameters
        ----------
        row_nbytes, reads_ahead, cache : int, bool, tuple of int or None
            As for :meth:`build`.
        **changes
            New values of ``LIVE_OPTIONS`` or ``NEXT_EPOCH_OPTIONS`` (None: automatic).

        Returns
        -------
        LoaderConfig

        Raises
        ------
        InvalidInputError
            A change to another option, or an invalid value (a ``window`` the ``cache`` cannot
            hold in shard order among them).
        """
        fixed = sorted(set(changes) - set(LIVE_OPTIONS) - set(NEXT_EPOCH_OPTIONS))
        if fixed:
            raise InvalidInputError(
                f"{fixed} cannot change while a loader runs; reconfigure takes "
                f"{list(LIVE_OPTIONS + NEXT_EPOCH_OPTIONS)}: build a new loader for the rest"
            )
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for auto, name in _AUTO.items():
            if name in changes:
                options[auto] = changes[name] is None
        if "shuffle" in changes:
            changes["shuffle"] = order_name(changes["shuffle"])
        return LoaderConfig(**{**options, **changes})._checked(row_nbytes, reads_ahead, cache)

    def _checked(
        self, row_nbytes: int, reads_ahead: bool = False, cache: tuple[int, int] | None = None
    ) -> LoaderConfig:
        return dataclasses.replace(self, **choose(self, row_nbytes, reads_ahead, cache))

    @property
    def keeps_workers(self) -> bool:
        """Whether worker processes outlive a pass: ``persistent_workers`` asked for, or the
        loader chose processes itself (``worker_type=None``: starting them every epoch cost 22 %
        of a 512-batch epoch here), and the readers are processes (threads start in ~0.1 ms)."""
        return (
            (self.persistent_workers or self.auto_type)
            and self.worker_type == "process"
            and self.num_workers > 0
        )

    def loader_options(self) -> dict[str, Any]:
        """The options ``wb.loader(ds, **options)`` rebuilds this config from: those that differ
        from what the loader would choose on its own, and each of ``num_workers``, ``worker_type``,
        ``prefetch_factor`` and ``window`` chosen by hand (not None: automatic), even where it
        equals what the loader would pick today (a ``prefetch_factor=2`` left out would run the
        automatic one).

        Returns
        -------
        dict
            ``{option: value}``.

        Examples
        --------
        >>> LoaderConfig.build(batch_size=64, prefetch_factor=2).loader_options()
        {'batch_size': 64, 'prefetch_factor': 2}
        """
        default, by_hand = LoaderConfig.build(), {n: a for a, n in _AUTO.items()}
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _AUTO
            and (
                not getattr(self, by_hand[f.name])
                if f.name in by_hand
                else getattr(self, f.name) != getattr(default, f.name)
            )
        }

    def code_line(self, dataset_name: str = "ds") -> str:
        """The ``wb.loader(...)`` line that rebuilds this config over ``dataset_name``, the batch
        size always shown (it changes what a model learns).

        Parameters
        ----------
        dataset_name : str, default "ds"
            The variable the line names as the dataset.

        Returns
        -------
        str

        Examples
        --------
        >>> LoaderConfig.build(shuffle=True, num_workers=2).code_line()
        "wb.loader(ds, batch_size=256, shuffle='full', num_workers=2)"
        """
        return loader_call({"batch_size": self.batch_size, **self.loader_options()}, dataset_name)
