"""``workbench notebooks check PATHS``: the same run as ``pytest --wb-notebooks PATHS``, from the
command line (the CLI registers :func:`add_parser` and calls :func:`run`)."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from typing import Any

__all__: list[str] = []


def add_parser(sub: Any) -> None:
    """Add ``notebooks check`` to the ``workbench`` command's subcommands.

    Parameters
    ----------
    sub : argparse subparsers
        The ``workbench`` parser's subcommands (what ``add_subparsers`` returned).
    """
    p = sub.add_parser("notebooks", help="validate notebooks in CI (pytest --wb-notebooks)")
    what = p.add_subparsers(dest="notebooks_cmd", required=True)
    c = what.add_parser(
        "check",
        help="run each notebook and compare every output with the saved one, volatile "
        "figures sanitized; exit 1 if one differs or a cell fails",
    )
    c.add_argument("paths", nargs="+", help="notebooks (.ipynb) or folders of them")
    c.add_argument(
        "-n", "--workers", default=None, help="notebooks in parallel (pytest-xdist): N or auto"
    )
    c.add_argument("--cell-timeout", type=float, default=600.0, help="seconds per cell (600)")
    c.add_argument(
        "--notebook-timeout", type=float, default=1800.0, help="seconds per notebook (1800)"
    )
    c.add_argument("--baseline", default=None, metavar="DIR", help="wb.expect's baselines")
    c.add_argument("--compare-html", action="store_true", help="compare text/html outputs too")
    c.add_argument(
        "--browser",
        action="store_true",
        help="also run each notebook in JupyterLab in headless chromium: widgets must render",
    )
    c.epilog = "Arguments after -- go to pytest as they are: ... -- -x -k 02_load"


def pytest_args(args: argparse.Namespace) -> list[str]:
    """The pytest command line ``args`` stand for.

    Parameters
    ----------
    args : argparse.Namespace
        ``notebooks check``'s parsed arguments.

    Returns
    -------
    list of str
        Arguments for ``pytest.main`` (what ``python -m pytest`` would be given).
    """
    out = [*args.paths, "--wb-notebooks", "-p", "no:cacheprovider"]
    out += ["--wb-cell-timeout", f"{args.cell_timeout:g}"]
    out += ["--wb-notebook-timeout", f"{args.notebook_timeout:g}"]
    if args.baseline:
        out += ["--wb-baseline", args.baseline]
    if args.compare_html:
        out.append("--wb-compare-html")
    if args.browser:
        out.append("--wb-browser")
    if args.workers:
        out += ["-n", str(args.workers), "--dist", "loadfile"]
    return out + list(getattr(args, "pytest_args", []))


def run(args: argparse.Namespace) -> int:
    """Run ``notebooks check``: pytest's exit code (0 all passed, 1 a cell failed, ...).

    Parameters
    ----------
    args : argparse.Namespace
        ``notebooks check``'s parsed arguments.

    Returns
    -------
    int
        The exit code.
    """
    import pytest

    if args.workers and importlib.util.find_spec("xdist") is None:
        print(
            "workbench notebooks: -n needs pytest-xdist: pip install pytest-xdist", file=sys.stderr
        )
        return 2
    return int(pytest.main(pytest_args(args)))
