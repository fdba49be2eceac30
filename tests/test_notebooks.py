"""The notebooks: each .ipynb has its py:percent twin with the same cells, and what is saved in the
.ipynb is fit for a reader and for the comparison (see docs/NOTEBOOKS.md). Nothing here runs a
notebook: `pytest notebooks --wb-notebooks ...` does that (tests/test_plugin.py tests it)."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
IPYNBS = sorted(NOTEBOOKS.glob("*.ipynb"))
MAX_LINE = 100  # JupyterLab wraps longer output lines mid-word
NBVAL_COMMENT = re.compile(r"^\s*#\s*(NBVAL_|PYTEST_VALIDATE_)", re.MULTILINE)
FROZEN_BAR = re.compile(r"(?<![\d.])0%\||\b0\.00\w* \[00:00|\?\w*/s\]")
DASHBOARD = re.compile(r"https?://(127\.0\.0\.1|localhost|0\.0\.0\.0):\d+")
ALLOWED_NOTEBOOK_METADATA = {"kernelspec", "language_info"}
ALLOWED_CELL_METADATA = {"tags"}

each_notebook = pytest.mark.parametrize("path", IPYNBS, ids=[p.stem for p in IPYNBS])


def cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def output_texts(nb: nbformat.NotebookNode, plain_only: bool = False):
    """(code cell number, text) of every saved output: streams, errors, and each text-like mime
    type of the others (only text/plain with ``plain_only``: what JupyterLab shows as text)."""
    code = [c for c in nb.cells if c.cell_type == "code"]
    for i, cell in enumerate(code):
        for out in cell.outputs:
            if out.output_type == "stream":
                yield i, out.text
            elif out.output_type == "error":
                yield i, f"{out.ename}: {out.evalue}"
            else:
                for mime, value in out.get("data", {}).items():
                    if isinstance(value, str) and (mime == "text/plain" or not plain_only):
                        yield i, value


def test_every_notebook_is_found() -> None:
    names = {p.name for p in NOTEBOOKS.iterdir()}
    assert {"01_convert.ipynb", "02_load.ipynb"} <= names
    twins_without_ipynb = [
        p.name
        for p in NOTEBOOKS.glob("*.py")
        if p.name != "conftest.py" and not p.with_suffix(".ipynb").exists()
    ]
    assert not twins_without_ipynb, "run `python tools/notebooks.py sync` to create the .ipynb"


@each_notebook
def test_py_twin_holds_the_same_cells(path: Path) -> None:
    twin = path.with_suffix(".py")
    assert twin.exists(), f"{twin.name} is missing: run `python tools/notebooks.py sync`"
    a, b = cells(jupytext.read(path)), cells(jupytext.read(twin, fmt="py:percent"))
    assert [c[0] for c in a] == [c[0] for c in b], "cell types differ: run tools/notebooks.py sync"
    for i, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"cell {i} differs between {path.name} and {twin.name}: run sync"


@each_notebook
def test_no_volatile_metadata(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert set(nb.metadata) <= ALLOWED_NOTEBOOK_METADATA, "notebook metadata (widgets, jupytext...)"
    assert "version" not in nb.metadata.get("language_info", {}), "the Python version is volatile"
    for i, cell in enumerate(nb.cells):
        extra = set(cell.metadata) - ALLOWED_CELL_METADATA
        assert not extra, f"cell {i} metadata {sorted(extra)} (execution timing, UI state...)"
    code = [c for c in nb.cells if c.cell_type == "code"]
    # nbval compares only the cells of a run notebook (an execution count that is None turns the
    # check off), so the saved outputs must be those of one top-to-bottom run: 1, 2, 3...
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        "execution counts: run `python tools/notebooks.py execute`"
    )
    for c in code:
        for out in c.outputs:
            if out.output_type == "execute_result":
                assert out.execution_count == c.execution_count
            assert "application/vnd.jupyter.widget-view+json" not in out.get("data", {}), (
                "a widget view whose state is not saved"
            )


@each_notebook
def test_no_nbval_comments_in_cells(path: Path) -> None:
    for twin in (path, path.with_suffix(".py")):
        nb = jupytext.read(twin)
        bad = [i for i, c in enumerate(nb.cells) if NBVAL_COMMENT.search(c.source)]
        assert not bad, f"{twin.name} cells {bad}: use the nbval-* cell tags, not comments"


@each_notebook
def test_output_lines_fit(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    long = [
        (i, line)
        for i, text in output_texts(nb, plain_only=True)
        for line in text.splitlines()
        if len(line) > MAX_LINE
    ]
    assert not long, f"output lines over {MAX_LINE} characters (code cell, line): {long}"


@each_notebook
def test_no_frozen_progress_bars(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    frozen = [(i, m.group(0)) for i, text in output_texts(nb) for m in FROZEN_BAR.finditer(text)]
    assert not frozen, f"progress bars saved before they ran (code cell, text): {frozen}"


@each_notebook
def test_no_dashboard_links(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    links = [(i, m.group(0)) for i, text in output_texts(nb) for m in DASHBOARD.finditer(text)]
    assert not links, f"dashboard links are dead once the client closes (code cell, link): {links}"
