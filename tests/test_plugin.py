"""``pytest --wb-notebooks`` (workbench/notebooks/plugin.py, cells.py, kernel.py) and
``workbench notebooks check``: real pytest runs in a subprocess, real kernels, on a user-like
notebook (tests/notebooks/user.ipynb), one of ours, and small notebooks made here."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent
USER = ROOT / "tests" / "notebooks" / "user.ipynb"
OURS = ROOT / "notebooks" / "01_convert.ipynb"


def run_pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest ARGS`` in ``cwd``, with no rootdir config of ours in the way."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", *args]
    cmd += ["--rootdir", str(cwd), "-c", os.devnull]  # the user's own project: no addopts
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)


def changed_output(src: Path, dest: Path, old: str, new: str) -> None:
    """A copy of ``src`` whose saved outputs say ``new`` where they said ``old`` (once)."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and old in out.text:
                out.text = out.text.replace(old, new, 1)
                return nbformat.write(nb, dest)
            plain = out.get("data", {}).get("text/plain", "")
            if old in plain:
                out.data["text/plain"] = plain.replace(old, new, 1)
                return nbformat.write(nb, dest)
    raise AssertionError(f"{old!r} is in no saved output of {src.name}")


def small_notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s, execution_count=i + 1) for i, s in enumerate(sources)]
    nbformat.write(nb, path)
    return path


OUTCOME = re.compile(r"(PASSED|FAILED|SKIPPED|XFAIL|ERROR)")
CELL = re.compile(r"(\S+?)(?:\.|::)ipynb::(Cell \d+|JupyterLab)")  # -v shows the dot as "::"


def outcomes(text: str) -> dict[str, str]:
    """``{"user.ipynb::Cell 3": "PASSED", ...}`` from pytest's ``-v`` lines (xdist's too)."""
    found = {}
    for line in text.splitlines():
        cell, word = CELL.search(line), OUTCOME.search(line)
        if cell and word and not line.startswith(("FAILED ", "ERROR ", "SKIPPED ")):
            found.setdefault(f"{cell.group(1)}.ipynb::{cell.group(2)}", word.group(1))
    return found


def test_a_rerun_of_an_unchanged_user_notebook_passes_and_a_changed_output_fails(tmp_path):
    """Two copies in parallel (pytest -n 2): every volatile figure sanitized, the real output
    that changed (the batch's labels) caught; the baseline of wb.expect lands beside each."""
    pytest.importorskip("xdist")
    shutil.copy(USER, tmp_path / "same.ipynb")
    changed_output(USER, tmp_path / "changed.ipynb", "[7, 0, 9]", "[7, 0, 8]")
    r = run_pytest("--wb-notebooks", "-n", "2", "same.ipynb", "changed.ipynb", cwd=tmp_path)
    got = outcomes(r.stdout)
    cells = [k for k in got if k.startswith("same.ipynb")]
    assert len(cells) == 11 and all(got[k] == "PASSED" for k in cells), r.stdout[-3000:]
    failed = [k for k, v in got.items() if v == "FAILED"]
    assert failed == ["changed.ipynb::Cell 3"], r.stdout[-3000:]
    assert "[7, 0, 8]" in r.stdout and "Cell outputs differ" in r.stdout
    assert (tmp_path / ".workbench" / "same.expect.json").exists()


def test_one_of_our_notebooks_reruns_clean_and_fails_on_a_changed_output(tmp_path):
    for src in (OURS.with_suffix(".ipynb"),):
        shutil.copy(src, tmp_path / "ours.ipynb")
    changed_output(OURS, tmp_path / "changed.ipynb", "5 shards;", "6 shards;")
    r = run_pytest("--wb-notebooks", "ours.ipynb", "changed.ipynb", cwd=tmp_path)
    got = outcomes(r.stdout)
    assert [k for k, v in got.items() if v != "PASSED"] == ["changed.ipynb::Cell 12"], r.stdout[
        -3000:
    ]


def test_a_kernel_that_dies_is_reported_with_its_cell(tmp_path):
    small_notebook(
        tmp_path / "dies.ipynb",
        "fine = True",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        "never = True",
    )
    r = run_pytest("--wb-notebooks", "dies.ipynb", cwd=tmp_path)
    got = outcomes(r.stdout)
    assert got == {
        "dies.ipynb::Cell 0": "PASSED",
        "dies.ipynb::Cell 1": "FAILED",
        "dies.ipynb::Cell 2": "SKIPPED",
    }, r.stdout[-3000:]
    assert "the kernel died while this cell ran: killed by SIGKILL" in r.stdout


def test_cell_and_notebook_timeouts_name_the_limit(tmp_path):
    small_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(60)", "after = True")
    small_notebook(tmp_path / "long.ipynb", *["import time\ntime.sleep(2)"] * 4)
    r = run_pytest("--wb-notebooks", "--wb-cell-timeout", "3", "slow.ipynb", cwd=tmp_path)
    assert outcomes(r.stdout)["slow.ipynb::Cell 0"] == "FAILED", r.stdout[-3000:]
    assert "the cell ran past 3 s (--wb-cell-timeout)" in r.stdout
    r = run_pytest("--wb-notebooks", "--wb-notebook-timeout", "3", "long.ipynb", cwd=tmp_path)
    got = outcomes(r.stdout)
    assert "FAILED" in got.values() or "SKIPPED" in got.values(), r.stdout[-3000:]
    assert got["long.ipynb::Cell 0"] == "PASSED"
    assert "--wb-notebook-timeout" in r.stdout or "s ran out before this cell" in r.stdout


def test_the_cli_runs_the_same_check(tmp_path):
    small_notebook(tmp_path / "a.ipynb", "print('at', 12.5, 'MB/s, pid', 4242)")
    nb = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="at 900.0 MB/s, pid 77\n")]
    nbformat.write(nb, tmp_path / "a.ipynb")
    cli = [sys.executable, "-m", "workbench", "notebooks", "check", "a.ipynb", "--", "-c"]
    r = subprocess.run([*cli, os.devnull], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    nb.cells[0].outputs[0].text = "at 900.0 MB/s, pid 77, and more\n"
    nbformat.write(nb, tmp_path / "a.ipynb")
    r = subprocess.run([*cli, os.devnull], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1 and "Cell outputs differ" in r.stdout


def test_nbval_own_flags_are_refused_beside_ours(tmp_path):
    small_notebook(tmp_path / "a.ipynb", "1")
    r = run_pytest("--wb-notebooks", "--nbval-lax", "a.ipynb", cwd=tmp_path)
    assert r.returncode != 0 and "drop --nbval" in r.stderr + r.stdout


BROKEN_WIDGET = """import ipywidgets
from traitlets import Unicode


class Broken(ipywidgets.DOMWidget):
    _model_name = Unicode("NoSuchModel").tag(sync=True)
    _model_module = Unicode("no-such-widget-module").tag(sync=True)
    _view_name = Unicode("NoSuchView").tag(sync=True)
    _view_module = Unicode("no-such-widget-module").tag(sync=True)


Broken()"""


LIVE = """import ipywidgets
from workbench.ui.controls import live, updated
out = live(ipywidgets.HTML("waiting"))  # as wb.watch's header: a live output that must update
out"""


def test_in_jupyterlab_widgets_render_and_a_broken_one_fails(tmp_path):
    """--wb-browser: the notebook once more in JupyterLab in headless chromium (Run All): widgets
    render, and live outputs update (one that never does fails)."""
    from browser import require

    require()
    small_notebook(
        tmp_path / "good.ipynb",
        "import ipywidgets, time\nw = ipywidgets.IntSlider(3)",
        LIVE,
        "out.value = 'updated'\nupdated(out)",  # a later cell updates it, as wb.watch does
        "w",
    )
    small_notebook(tmp_path / "bad.ipynb", "ok = True", LIVE, BROKEN_WIDGET)
    for name in ("good.ipynb", "bad.ipynb"):  # the kernel-side comparison skips widget views
        nb = nbformat.read(tmp_path / name, as_version=4)
        for cell in nb.cells[1:]:
            cell.metadata["tags"] = ["nbval-ignore-output"]
        nbformat.write(nb, tmp_path / name)
    r = run_pytest("--wb-notebooks", "--wb-browser", "good.ipynb", "bad.ipynb", cwd=tmp_path)
    got = outcomes(r.stdout)
    assert got["good.ipynb::JupyterLab"] == "PASSED", r.stdout[-3000:]
    assert got["bad.ipynb::JupyterLab"] == "FAILED", r.stdout[-3000:]
    assert "cell 2: a widget failed to render" in r.stdout
    assert "cell 1: a live output never updated (it shows 'waiting')" in r.stdout
    assert all(v == "PASSED" for k, v in got.items() if "Cell" in k), got
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".ipynb") == [
        "bad.ipynb",
        "good.ipynb",
    ]  # the copies Run All used are gone


WORKFLOW = ROOT / "examples" / "ci" / "notebooks.yml"


def test_the_example_ci_workflow_runs_and_its_command_passes_on_a_users_notebooks(tmp_path):
    """examples/ci/notebooks.yml installs what the command needs, caches the baselines where
    the plugin keeps them, and its command, run here as written, passes on a user's folder of
    notebooks and fails when a saved output no longer matches."""
    from browser import require

    require()  # the command runs each notebook in JupyterLab too
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["notebooks"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    (check,) = [r for r in runs if r.startswith("workbench notebooks check")]
    assert any('"workbench[notebooks]"' in r for r in runs)  # the extra the command needs
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {"nbval", "pytest-xdist", "playwright"} <= {
        re.split(r"[<>=\[ ]", d)[0] for d in extras["optional-dependencies"]["notebooks"]
    }
    (cache,) = [s for s in steps if s.get("uses", "").startswith("actions/cache")]
    folder = Path(cache["with"]["path"])  # where wb.expect's "last run" baselines are kept
    (tmp_path / folder.parent).mkdir()
    shutil.copy(USER, tmp_path / folder.parent / USER.name)
    cmd = [sys.executable, "-m", "workbench", *shlex.split(check)[1:]]
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    cells = sum(c.cell_type == "code" for c in nbformat.read(USER, as_version=4).cells)
    assert f" {cells + 1} passed" in r.stdout  # each cell, and the run in JupyterLab
    assert "2 workers" in r.stdout  # -n 2
    assert (tmp_path / folder / "user.expect.json").exists()  # what the cache step keeps
    changed_output(USER, tmp_path / folder.parent / USER.name, "[7, 0, 9]", "[7, 0, 8]")
    r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 1 and "Cell outputs differ" in r.stdout, r.stdout[-3000:]
