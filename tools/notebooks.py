"""Keep the notebooks paired, executed, and free of volatile metadata (see docs/NOTEBOOKS.md).

    python tools/notebooks.py sync    [NAME ...]  # jupytext --sync each pair, then strip the .ipynb
    python tools/notebooks.py execute [NAME ...]  # sync, run top to bottom in a fresh kernel, strip
    python tools/notebooks.py check   [NAME ...]  # exit 1 if a pair differs or an .ipynb is dirty

NAME is a notebook stem such as ``01_convert``; without one, every notebook in notebooks/. A
path to an .ipynb elsewhere (``tests/notebooks/user.ipynb``, which has no .py twin) is executed
and checked on its own, in its own folder.

Each ``notebooks/NAME.ipynb`` is paired with ``notebooks/NAME.py`` (py:percent) by the jupytext.toml
at the repository root. The .ipynb keeps the outputs (``pytest --wb-notebooks`` compares those of
every cell not tagged ``nbval-ignore-output``); stripping removes what changes from run to run or
from machine to machine without being content: widget state, execution timing, the Python version,
other cell metadata, and widget views whose saved text fallback is a frozen progress bar.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 300  # seconds, as --nbval-cell-timeout in the CI

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "name": "python",
    "pygments_lexer": "ipython3",
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The text a tqdm widget saves when it is displayed, before any progress: "0%|" or "0.00row [00:00".
FROZEN_BAR = re.compile(r"(?<![\d.])0%\||\b0\.00\w* \[00:00|\?\w*/s\]")
# What a terminal shows of "a\rb": only b (as nbval and JupyterLab render streams).
CARRIAGE_RETURN = re.compile(r"^.*\r(?=[^\n])", re.MULTILINE)
# A dashboard link dies with its cluster and names a new port each run: saved as ":<port>".
LOOPBACK_PORT = re.compile(r"(https?://(?:127\.0\.0\.1|localhost)):\d+")


def stems(names: list[str]) -> list[str]:
    """The notebook names to work on: the given ones, or every .ipynb / percent script."""
    found = {p.stem for p in NOTEBOOKS.glob("*.ipynb")}
    found |= {p.stem for p in NOTEBOOKS.glob("*.py") if is_percent_script(p)}
    if not names:
        return sorted(found)
    wanted = [n if standalone(n) else Path(n).stem for n in names]
    unknown = [n for n in wanted if n not in found and not standalone(n)]
    if unknown:
        sys.exit(f"no such notebook in {NOTEBOOKS}: {', '.join(unknown)}")
    return wanted


def standalone(name: str) -> bool:
    """Whether ``name`` is a path to an .ipynb outside notebooks/ (no .py twin)."""
    path = Path(name)
    return path.suffix == ".ipynb" and path.exists() and path.resolve().parent != NOTEBOOKS


def is_percent_script(path: Path) -> bool:
    return any(line.startswith("# %%") for line in path.read_text(encoding="utf-8").splitlines())


def pair(stem: str) -> tuple[Path, Path]:
    if standalone(stem):
        return Path(stem).resolve(), Path(stem).resolve().with_suffix(".py")
    return NOTEBOOKS / f"{stem}.ipynb", NOTEBOOKS / f"{stem}.py"


def cell_tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def cells_of(path: Path) -> list[tuple[str, str, list[str]]]:
    """(cell type, source, tags) of each cell, read through jupytext whatever the file's format."""
    import jupytext

    nb = jupytext.read(path)
    return [(c.cell_type, c.source, cell_tags(c)) for c in nb.cells]


def pair_differences(stem: str) -> list[str]:
    """Why the .ipynb and the .py of ``stem`` do not hold the same cells (empty when they do)."""
    ipynb, py = pair(stem)
    if standalone(stem):
        return []
    missing = [p.name for p in (ipynb, py) if not p.exists()]
    if missing:
        return [f"{', '.join(missing)} missing: run `python tools/notebooks.py sync {stem}`"]
    a, b = cells_of(ipynb), cells_of(py)
    problems = []
    if len(a) != len(b):
        problems.append(f"{ipynb.name} has {len(a)} cells, {py.name} has {len(b)}")
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            what = [k for k, u, v in zip(("type", "source", "tags"), x, y) if u != v]
            problems.append(f"cell {i} differs ({', '.join(what)}): {x[1][:60]!r}")
            break
    return problems


def clean(nb: nbformat.NotebookNode) -> list[str]:
    """Strip volatile metadata from ``nb`` in place; returns notes on outputs it dropped."""
    notes = []
    nb.metadata = nbformat.from_dict({"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO})
    for i, cell in enumerate(nb.cells):
        tags = cell_tags(cell)
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            if out.output_type == "stream":
                out.text = LOOPBACK_PORT.sub(r"\1:<port>", CARRIAGE_RETURN.sub("", out.text))
            elif WIDGET_VIEW in out.get("data", {}):
                # The widget state is stripped, so the view cannot render: keep its text fallback,
                # unless that is a progress bar frozen at its start (it reads as "nothing ran").
                del out.data[WIDGET_VIEW]
                text = out.data.get("text/plain", "")
                if not out.data or FROZEN_BAR.search(text):
                    notes.append(f"cell {i}: dropped a widget view saved as {text.strip()!r}")
                    continue
            outputs.append(out)
        cell.outputs = outputs
    return notes


def not_executed(nb: nbformat.NotebookNode) -> str | None:
    """Why ``nb``'s outputs are not those of one top-to-bottom run, or None."""
    counts = [c.execution_count for c in nb.cells if c.cell_type == "code"]
    if counts != list(range(1, len(counts) + 1)):
        return f"execution counts are {counts}, not 1..{len(counts)}"
    return None


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def write(nb: nbformat.NotebookNode, path: Path) -> bool:
    """Write ``nb`` as nbformat does (indent 1, sorted keys); returns whether the file changed."""
    text = nbformat.writes(nb) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def sync(stem: str) -> None:
    """jupytext --sync (the newer file of the pair wins the inputs; outputs stay), then strip."""
    from jupytext.cli import jupytext as jupytext_cli

    ipynb, py = pair(stem)
    if jupytext_cli(["--sync", "--quiet", str(ipynb if ipynb.exists() else py)]) != 0:
        sys.exit(f"jupytext --sync failed for {stem}")
    nb = read(ipynb)
    for note in clean(nb):
        print(f"{ipynb.name}: {note}")
    if write(nb, ipynb):
        print(f"{ipynb.name}: stripped volatile metadata")
    print(f"synced {ipynb.relative_to(ROOT)} <-> {py.relative_to(ROOT)}")


def execute(stem: str) -> None:
    """Run the notebook top to bottom in a fresh kernel of this Python, in notebooks/, as a user
    would; then strip it and write it back (the .py twin does not change: inputs are untouched)."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    class ThisPython(KernelSpecManager):  # like nbval's --nbval-current-env
        def get_kernel_spec(self, kernel_name: str):
            return self.kernel_spec_class(
                resource_dir=ipykernel.kernelspec.RESOURCES,
                **ipykernel.kernelspec.get_kernel_dict(),
            )

    if not standalone(stem):
        sync(stem)
    ipynb, _ = pair(stem)
    nb = read(ipynb)
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT,
        allow_errors=False,
        record_timing=False,
        store_widget_state=False,
        coalesce_streams=True,
        resources={"metadata": {"path": str(ipynb.parent)}},
    )
    print(f"executing {ipynb.relative_to(ROOT)} ...", flush=True)
    try:
        client.execute(cleanup_kc=True)  # shut the kernel down even though we made its manager
    except CellExecutionError as e:
        sys.exit(f"{ipynb.name} failed; nothing written.\n{e}")
    for note in clean(nb):
        print(f"{ipynb.name}: {note}")
    write(nb, ipynb)
    print(f"executed {ipynb.relative_to(ROOT)}")


def check(stem: str) -> list[str]:
    """Problems with the pair ``stem``; empty when it is in sync, clean and executed."""
    ipynb, _ = pair(stem)
    problems = pair_differences(stem)
    if ipynb.exists():
        nb = read(ipynb)
        stripped = copy.deepcopy(nb)
        notes = clean(stripped)
        if stripped != nb:
            dirty = [
                k
                for k in nb.metadata
                if k not in stripped.metadata or nb.metadata[k] != stripped.metadata[k]
            ]
            dirty += sorted(
                {
                    k
                    for c, s in zip(nb.cells, stripped.cells)
                    for k in c.metadata
                    if k not in s.metadata
                }
            )
            problems.append(
                "volatile metadata or outputs: "
                + ", ".join(dirty + notes or ["outputs"])
                + f" (run `python tools/notebooks.py sync {stem}`)"
            )
        why = not_executed(nb)
        if why:
            problems.append(f"{why} (run `python tools/notebooks.py execute {stem}`)")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["sync", "execute", "check"])
    parser.add_argument("names", nargs="*", help="notebook stems, e.g. 01_convert (default: all)")
    args = parser.parse_args(argv)
    failed = False
    for stem in stems(args.names):
        if args.command == "sync":
            sync(stem)
        elif args.command == "execute":
            execute(stem)
        else:
            problems = check(stem)
            for p in problems:
                print(f"{stem}: {p}")
            failed |= bool(problems)
            if not problems:
                print(f"{stem}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
