"""The pytest plugin workbench ships (entry point ``pytest11``: ``workbench``):
``pytest --wb-notebooks PATHS`` runs each notebook with nbval, comparing every cell's outputs
with the saved ones after :mod:`workbench.notebooks.sanitizers` replaced the volatile figures.

Beyond nbval: text/plain is compared where an output also has HTML (the HTML draws the same
figures as markup and SVG; ``--wb-compare-html`` compares it too), each cell and each notebook
has a timeout, a kernel that dies is reported with the cell it ran, kernels talk over IPC
sockets (parallel runs under ``pytest -n N`` never share a port), and ``wb.expect`` finds its
baseline file through the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .sanitizers import RULES

__all__: list[str] = []


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("workbench", "workbench notebooks (docs/NOTEBOOKS.md)")
    group.addoption(
        "--wb-notebooks",
        action="store_true",
        help="run each .ipynb with nbval, comparing every cell's outputs after workbench's "
        "sanitizers (cells tagged nbval-ignore-output, nbval-skip, raises-exception as in nbval)",
    )
    group.addoption(
        "--wb-cell-timeout", type=float, default=600.0, help="seconds a cell may run (600)"
    )
    group.addoption(
        "--wb-notebook-timeout",
        type=float,
        default=1800.0,
        help="seconds a whole notebook may run, its cells together (1800)",
    )
    group.addoption(
        "--wb-compare-html",
        action="store_true",
        help="also compare text/html and SVG where an output has text/plain",
    )
    group.addoption(
        "--wb-browser",
        action="store_true",
        help="also run each notebook in JupyterLab in headless chromium (Run All): every cell "
        "ran, in order, with no error and no widget that failed to render",
    )
    group.addoption(
        "--wb-baseline",
        default=None,
        metavar="DIR",
        help="folder of wb.expect's baselines, one NAME.expect.json per notebook "
        "(default: .workbench/ beside each notebook)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    opt = config.option
    if not getattr(opt, "wb_notebooks", False):
        return
    if opt.nbval or opt.nbval_lax:
        raise pytest.UsageError("--wb-notebooks runs nbval itself: drop --nbval / --nbval-lax")
    if getattr(opt, "dist", "no") == "load":  # pytest -n N: a notebook's cells share a kernel
        opt.dist = "loadfile"
    config.addinivalue_line("markers", "wb_notebook: a notebook cell run by --wb-notebooks")


def pytest_unconfigure(config: pytest.Config) -> None:
    browser = sys.modules.get("workbench.notebooks.browser")
    if browser is not None:
        browser.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if getattr(parent.config.option, "wb_notebooks", False) and file_path.suffix == ".ipynb":
        if ".ipynb_checkpoints" in file_path.parts:
            return None
        try:
            from .cells import Notebook
        except ImportError as e:  # nbval is in workbench's [notebooks] extra
            raise pytest.UsageError(
                f"--wb-notebooks needs nbval ({e}): pip install 'workbench[notebooks]'"
            ) from None
        return Notebook.from_parent(parent, path=file_path)
    return None


def sanitize_patterns() -> dict[str, str]:
    """workbench's rules as nbval holds them: regex -> replacement, applied in order.

    Returns
    -------
    dict
        What nbval's ``IPyNbFile.sanitize_patterns`` takes.
    """
    return {regex: repl for _, regex, repl in RULES}


def baseline_path(config: pytest.Config, notebook: Path) -> Path:
    """Where ``wb.expect`` keeps the figures of the notebook's last passing run.

    Parameters
    ----------
    config : pytest.Config
        The run's configuration (``--wb-baseline``).
    notebook : Path
        The notebook.

    Returns
    -------
    Path
        ``DIR/NAME.expect.json``, by default in ``.workbench/`` beside the notebook.
    """
    folder = config.option.wb_baseline
    root = Path(folder) if folder else notebook.parent / ".workbench"
    return root / f"{notebook.stem}.expect.json"
