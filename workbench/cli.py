"""``workbench`` command line: a thin shell over the public functions.

Exit codes: 0 ok, 1 failed (bad input, corrupt dataset), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import WorkbenchError

__all__: list[str] = []


def _sparse(items: list[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, _, dim = item.partition("=")
        if not dim.isdigit():
            raise argparse.ArgumentTypeError(
                f"--sparse {item!r}: use COLUMN=WIDTH, e.g. tokens=1000"
            )
        out[name] = int(dim)
    return out


def _budget(text: str) -> int:
    from .tuning.search import budget_bytes

    try:
        value = budget_bytes(text)
    except (ValueError, TypeError, KeyError):
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a memory size; use e.g. 2GiB, 500MB or a number of bytes"
        )
    return value


def _tune(args: argparse.Namespace) -> None:
    from .datasets import open_dataset
    from .loading.config import LoaderConfig
    from .tuning.search import autotune
    from .tuning.trials import trials_text

    options: dict[str, object] = {}
    sizes = args.batch_size or []
    if sizes:
        options["batch_size"] = sizes[0]
    if args.shuffle:
        options["shuffle"] = args.shuffle
    r = autotune(
        open_dataset(args.path),
        memory_budget=args.memory_budget,
        time_budget_s=args.seconds,
        batch_sizes=sizes if len(sizes) > 1 else None,
        **options,
    )
    print(
        f"{len(r.trials)} trials in {r.seconds:.1f} s, memory budget "
        f"{r.memory_budget / 2**20:,.0f} MiB (the process tree's PSS above its start)"
    )
    print(trials_text(r.trials))
    print(f"\nds = wb.open_dataset({args.path!r})\n{LoaderConfig.build(**r.best).code_line()}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="workbench", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    c = sub.add_parser("convert", help="convert CSV/Parquet/.npy/HDF5 into a dataset")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--format", default="store", choices=["store", "hdf5", "parquet"])
    c.add_argument("--target", help="label column, kept apart from the packed features")
    c.add_argument("--key", help="HDF5 dataset key")
    c.add_argument("--columns", help="comma-separated source columns to keep")
    c.add_argument("--drop", help="comma-separated source columns to drop")
    c.add_argument(
        "--sparse",
        action="append",
        default=[],
        metavar="COL=WIDTH",
        help="a column of nonzero-index lists, e.g. tokens=1000 (repeatable)",
    )
    c.add_argument("--nan", default="error", choices=["error", "allow"])
    c.add_argument("--dtype", help="dtype of packed features (default float32)")
    c.add_argument("--shard-mb", type=float, default=256.0)
    c.add_argument(
        "--workers", type=int, help="convert shards on a local Dask cluster of N workers"
    )
    c.add_argument(
        "--overwrite", action="store_true", help="replace an existing dataset atomically"
    )
    c.add_argument("--resume", action="store_true", help="continue an interrupted conversion")
    c.add_argument("--no-progress", action="store_true")

    v = sub.add_parser("verify", help="check sizes, checksums and format checks of a dataset")
    v.add_argument("path")
    i = sub.add_parser("info", help="print a dataset's manifest as a summary")
    i.add_argument("path")

    n = sub.add_parser(
        "inspect", help="layout, chunks, page cache and read costs of a dataset or file"
    )
    n.add_argument(
        "path", help="a dataset folder, .npy, HDF5 (file.h5 or file.h5:key) or Parquet path"
    )
    n.add_argument("--batch-size", type=int, default=None, help="batch size for the read costs")
    n.add_argument(
        "--stats", action="store_true", help="also per-column statistics (reads the data once)"
    )
    n.add_argument("--json", action="store_true", help="print the facts as JSON")

    a = sub.add_parser("advise", help="layout, shuffle and loader advice for a dataset or file")
    a.add_argument("path")
    a.add_argument("--batch-size", type=int, default=1024)
    a.add_argument("--shuffle", choices=["full", "block", "sequential"], default="full")
    a.add_argument(
        "--ram-bytes", type=int, default=None, help="page cache to plan for (default: available)"
    )
    a.add_argument("--json", action="store_true")

    u = sub.add_parser(
        "publish", help="upload a dataset to an fsspec URL (shards, manifest, CURRENT last)"
    )
    u.add_argument("path")
    u.add_argument("url")

    t = sub.add_parser("tune", help="search loader settings under a memory budget (wb.autotune)")
    t.add_argument("path", help="a dataset folder, .npy, HDF5 or Parquet path (wb.open_dataset)")
    t.add_argument(
        "--memory-budget",
        type=_budget,
        default=None,
        metavar="SIZE",
        help="growth of the process tree's PSS allowed, e.g. 2GiB or 500MB "
        "(default: half the memory available at the start)",
    )
    t.add_argument("--seconds", type=float, default=60.0, help="time budget of the search")
    t.add_argument(
        "--batch-size",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="one: the batch size to keep; several: the batch sizes to search",
    )
    t.add_argument("--shuffle", choices=["block", "full", "sequential", "shard"], default=None)

    d = sub.add_parser("demo", help="generate demo data, convert, verify, load and summarize")
    d.add_argument("--rows", type=int, default=20_000)
    d.add_argument("--out", default="demo_data")
    d.add_argument("--no-progress", action="store_true")

    from .notebooks.command import add_parser as add_notebooks

    add_notebooks(sub)  # notebooks check PATHS: pytest --wb-notebooks
    from .loading.profiling import add_parser as add_profile

    add_profile(sub)  # profile PATH --step module:function: the verdict and the stage table
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # notebooks check: what follows -- is pytest's (other commands keep argparse's own --)
    cut = argv.index("--") if argv[:1] == ["notebooks"] and "--" in argv else len(argv)
    args = _parser().parse_args(argv[:cut])
    args.pytest_args = argv[cut + 1 :]
    try:
        return _run(args)
    except WorkbenchError as e:
        print(f"workbench {args.cmd}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"workbench {args.cmd}: interrupted", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "convert":
        from .conversion.pipeline import convert
        from .format.summary import describe

        try:
            sparse = _sparse(args.sparse)
        except argparse.ArgumentTypeError as e:
            print(f"workbench convert: {e}", file=sys.stderr)
            return 2
        m = convert(
            args.src,
            args.dst,
            format=args.format,
            target=args.target,
            key=args.key,
            columns=args.columns.split(",") if args.columns else None,
            drop=args.drop.split(",") if args.drop else None,
            sparse=sparse or None,
            nan=args.nan,
            dtype=args.dtype,
            shard_bytes=int(args.shard_mb * 2**20),
            workers=args.workers,
            overwrite=args.overwrite,
            resume=args.resume,
            progress=not args.no_progress,
        )
        print(describe(m, args.dst))
        return 0
    if args.cmd == "verify":
        from .format.integrity import verify

        report = verify(args.path, strict=False)
        print(report)
        return 0 if report.ok else 1
    if args.cmd == "info":
        from .format.summary import info

        print(info(args.path))
        return 0
    if args.cmd == "inspect":
        import json

        from .explore.inspection import inspect

        ins = inspect(args.path, batch_size=args.batch_size)
        found = None
        if args.stats:
            from .explore.statistics import stats

            found = stats(args.path, progress=not args.json)
        if args.json:
            print(
                json.dumps(
                    {**ins.to_dict(), **({"stats": found.to_dict()} if found else {})}, indent=1
                )
            )
        else:
            print(ins if found is None else f"{ins}\n{found}")
        return 0
    if args.cmd == "advise":
        import json

        from .explore.advice import advise

        found = advise(
            args.path, batch_size=args.batch_size, shuffle=args.shuffle, ram_bytes=args.ram_bytes
        )
        print(json.dumps(found.to_dict(), indent=1) if args.json else found)
        return 0
    if args.cmd == "publish":
        from .conversion.publishing import publish

        m = publish(args.path, args.url)
        print(f"published {args.path} -> {args.url}: {len(m.shards)} shards, {m.num_rows:,} rows")
        return 0
    if args.cmd == "tune":
        _tune(args)
        return 0
    if args.cmd == "demo":
        from .demo.tour import run_tour

        run_tour(args.out, rows=args.rows, progress=not args.no_progress, echo=print)
        return 0
    if args.cmd == "profile":
        from .loading.profiling import run as profile

        return profile(args)
    if args.cmd == "notebooks":
        from .notebooks.command import run as check_notebooks

        return check_notebooks(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
