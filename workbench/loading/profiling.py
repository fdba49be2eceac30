"""``workbench profile PATH --step module:function``: open the dataset at PATH, run a loader over
it for a bounded number of batches or seconds, calling the step function with each batch, then
print the verdict (``wb.bottleneck``) and the table of seconds per stage (the CLI registers
:func:`add_parser` and calls :func:`run`).

>>> print(stage_table({"read": 0.002, "transform": 0.006, "wait": 0.007, "step": 0.001}))
stage       ms/batch  share
read           2.000    25%
transform      6.000    75%
wait           7.000      -
step           1.000      -
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import time
from collections.abc import Callable
from typing import Any

from ..errors import InvalidInputError
from ..monitoring.stages import PRODUCER, STAGES

__all__: list[str] = []


def add_parser(sub: Any) -> None:
    """Add ``profile`` to the ``workbench`` command's subcommands.

    Parameters
    ----------
    sub : argparse subparsers
        The ``workbench`` parser's subcommands (what ``add_subparsers`` returned).
    """
    p = sub.add_parser("profile", help="time a loader's stages over a dataset: why is it slow")
    p.add_argument("path", help="a dataset (or anything wb.open_dataset opens)")
    p.add_argument("--step", help="module:function (or file.py:function) called with each batch")
    p.add_argument("--batches", type=int, default=200, help="batches to run at most (200)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds to run at most (30)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument("--worker-type", choices=["thread", "process"], default=None)
    p.add_argument("--shuffle", choices=["block", "full", "sequential", "shard"], default=None)
    p.add_argument("--trace", metavar="JSON", help="also write the Chrome trace of the batches")


def step_function(spec: str) -> Callable[[Any], Any]:
    """The function ``spec`` names: ``package.module:function`` or ``path/file.py:function``.

    Parameters
    ----------
    spec : str
        ``module:function``.

    Returns
    -------
    callable

    Raises
    ------
    InvalidInputError
        Not ``module:function``, or the module or function cannot be found.
    """
    module, _, name = spec.rpartition(":")
    if not module or not name:
        raise InvalidInputError(f"--step {spec!r}: use module:function, e.g. train:step")
    try:
        if module.endswith(".py"):
            found = importlib.util.spec_from_file_location(os.path.basename(module)[:-3], module)
            if found is None or not os.path.exists(module):
                raise ImportError(f"no file {module}")
            mod = importlib.util.module_from_spec(found)
            found.loader.exec_module(mod)  # type: ignore[union-attr]
        else:
            mod = importlib.import_module(module)
    except ImportError as exc:
        raise InvalidInputError(
            f"--step {spec!r}: cannot import {module} ({exc}); run from the folder that holds "
            "it, or put that folder on PYTHONPATH"
        ) from exc
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise InvalidInputError(f"--step {spec!r}: {module} has no function {name}")
    return fn


def profile(
    path: Any,
    step: Callable[[Any], Any] | None = None,
    *,
    batches: int = 200,
    seconds: float = 30.0,
    **options: Any,
) -> Any:
    """Run a loader over the dataset at ``path``, ``step(batch)`` for each batch, until
    ``batches`` or ``seconds``; the loader, closed, with its stages timed.

    Parameters
    ----------
    path : str or object
        What ``wb.open_dataset`` opens.
    step : callable, optional
        The consumer's work on each batch (none: the loader alone).
    batches, seconds : int, float
        When to stop, whichever comes first.
    **options
        Loader options (``batch_size``, ``num_workers``, ...).

    Returns
    -------
    Loader
        Its ``stages`` hold the batches' stage seconds (``wb.bottleneck`` reads them).
    """
    from ..datasets import open_dataset
    from .loaders import loader

    dl = loader(open_dataset(path), **options)
    done, deadline = 0, time.monotonic() + seconds
    with dl:
        while done < batches and time.monotonic() < deadline:
            before = done
            for batch in dl:
                if step is not None:
                    step(batch)
                done += 1
                if done == 1:  # the process's first batch pays its one-time warm-up (~10 ms)
                    dl.stages.clear()
                if done >= batches or time.monotonic() >= deadline:
                    break
            if done == before:
                break  # an empty dataset
    return dl


def stage_table(means: dict[str, float]) -> str:
    """Milliseconds a batch per stage, and each producer stage's share of the producer's time.

    Parameters
    ----------
    means : dict of str to float
        ``loader.stages.means()``.

    Returns
    -------
    str
    """
    total = sum(means.get(s, 0.0) for s in PRODUCER) or 1.0
    lines = [f"{'stage':<10} {'ms/batch':>9} {'share':>6}"]
    for s in STAGES:
        if s in means and (means[s] or s in ("wait", "step")):
            share = f"{means[s] / total:.0%}" if s in PRODUCER else "-"
            lines.append(f"{s:<10} {means[s] * 1e3:>9.3f} {share:>6}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """``workbench profile``: the verdict and the stage table, printed; 0."""
    from ..monitoring.verdicts import bottleneck

    options = {
        k: v
        for k in ("batch_size", "num_workers", "worker_type", "shuffle")
        if (v := getattr(args, k)) is not None
    }
    step = step_function(args.step) if args.step else None
    dl = profile(args.path, step, batches=args.batches, seconds=args.seconds, **options)
    print(f"{len(dl.stages)} batches timed, after a first one, from {dl.config.code_line()}")
    print(bottleneck(dl))
    print(stage_table(dl.stages.means()))
    if args.trace:
        from ..monitoring.trace import export_trace

        print(f"trace: {export_trace(dl, args.trace)} (open it in ui.perfetto.dev)")
    return 0
