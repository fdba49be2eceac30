"""``--wb-browser``: a notebook run as a reader runs it, in JupyterLab in headless chromium
(Debian's ``/usr/bin/chromium`` driven by Playwright): Run All, then every code cell must have
run, in order, no cell may show an error it is not tagged to raise, no widget may fail to
render, and no live output may still wait for its first update (classes ``workbench-live``
and ``workbench-waiting``, which the kernel removes as it first updates it: wb.watch's header).

One browser serves the whole pytest session, and one JupyterLab each folder of notebooks (its
own config, runtime and settings folders, bound to port 0 on 127.0.0.1).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import nbformat

from ..errors import WorkbenchError

__all__: list[str] = []

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
# textContent, not innerText: JupyterLab windows off-screen cells, and innerText is "" there
CELLS = """() => Array.from(document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell')).map(c => ({
    prompt: (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '',
    errors: Array.from(c.querySelectorAll(
      "[data-mime-type='application/vnd.jupyter.error']")).map(e => e.textContent.slice(0, 300)),
    widgets: c.querySelectorAll('.jupyter-widgets').length,
    waiting: Array.from(c.querySelectorAll('.workbench-live.workbench-waiting'))
      .map(e => e.textContent.trim().slice(0, 80)),
    broken: Array.from(c.querySelectorAll('.jp-OutputArea-output')).map(o => o.textContent)
      .filter(t => /Error displaying widget|Failed to load model|model not found|javascript error/
        .test(t))
      .map(t => t.slice(0, 300)),
  }))"""


class Lab:
    """A private JupyterLab on 127.0.0.1 serving ``root``, port 0 (the OS picks: parallel runs
    never collide)."""

    def __init__(self, root: Path) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="wb-lab-"))
        self.root = root
        self.token = secrets.token_hex(16)
        self.base = ""
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        for var in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR"):
            (self.home / var).mkdir()
            env[var] = str(self.home / var)
        news = self.home / "JUPYTERLAB_SETTINGS_DIR" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True)  # the news popup would cover the page
        (news / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        self.log = self.home / "lab.log"
        cmd = [sys.executable, "-m", "jupyterlab", "--allow-root", "--no-browser"]
        cmd += ["--ip=127.0.0.1", "--port=0", f"--IdentityProvider.token={self.token}"]
        cmd += [f"--ServerApp.root_dir={self.root}"]
        self.proc = subprocess.Popen(
            cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env, cwd=self.root
        )
        self.runtime = self.home / "JUPYTER_RUNTIME_DIR"

    def wait(self, timeout_s: float = 120) -> None:
        """Wait until the server answers (its port read from its runtime file)."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout_s:
            if self.proc.poll() is not None:
                raise WorkbenchError(f"jupyter lab exited:\n{self.log.read_text()[-2000:]}")
            for info in self.runtime.glob("jpserver-*.json"):
                self.base = f"http://127.0.0.1:{json.loads(info.read_text())['port']}"
                try:
                    with urllib.request.urlopen(self.url("/api/status"), timeout=2):
                        return
                except OSError:
                    pass
            time.sleep(0.3)
        raise WorkbenchError(f"jupyter lab never answered:\n{self.log.read_text()[-2000:]}")

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.home, ignore_errors=True)  # its folders, not the notebooks it served


class Session:
    """The session's browser and a Lab per folder of notebooks, started on first use."""

    def __init__(self) -> None:
        self.labs: dict[Path, Lab] = {}
        self.pw: Any = None
        self.browser: Any = None

    def page(self, folder: Path) -> tuple[Lab, Any]:
        """The Lab serving ``folder`` and a new page of the browser."""
        if self.browser is None:
            from playwright.sync_api import sync_playwright

            self.pw = sync_playwright().start()
            self.browser = self.pw.chromium.launch(
                executable_path=CHROMIUM, args=ARGS, headless=True
            )
        if folder not in self.labs:
            self.labs[folder] = Lab(folder)
            self.labs[folder].wait()
        page = self.browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
        return self.labs[folder], page

    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.pw.stop()
            self.browser = None
        for lab in self.labs.values():
            lab.stop()
        self.labs.clear()


SESSION = Session()


def missing() -> str | None:
    """Why no notebook can run in a browser here (no Playwright, no chromium), or None."""
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed (pip install playwright)"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM} (apt-get install chromium, or set WORKBENCH_CHROMIUM)"
    return None


def close() -> None:
    """Stop the session's browser and Lab (pytest's unconfigure)."""
    SESSION.close()


def run_in_lab(session: Session, notebook: Path, timeout_s: float) -> list[str]:
    """Run ``notebook`` (a copy beside it with the outputs cleared, removed after) with Run All;
    the problems seen, empty when every cell ran cleanly in order.

    Parameters
    ----------
    session : Session
        The Lab and browser to use.
    notebook : Path
        The notebook.
    timeout_s : float
        Seconds Run All may take.

    Returns
    -------
    list of str
        One line per problem: a cell that did not run, ran out of order, showed an error, a
        widget that failed to render or a live output that never updated.
    """
    lab, page = session.page(notebook.resolve().parent)
    nb = nbformat.read(notebook, as_version=4)
    # the kernel of the Python running pytest (first on the Lab's PATH), as the kernel-side run
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    raises = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            raises.append("raises-exception" in cell.metadata.get("tags", []))
    name = f"wb-browser-{secrets.token_hex(4)}-{notebook.name}"  # Lab serves no hidden file
    nbformat.write(nb, notebook.parent / name)
    try:
        page.goto(lab.url(f"/lab/tree/{name}") + "&reset")
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=180_000)
        page.wait_for_function(
            "() => (document.querySelector('#jp-main-statusbar') || {innerText: ''})"
            ".innerText.includes('| Idle')",
            timeout=180_000,
        )
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()
        try:
            page.wait_for_function(
                f"() => {{ const c = ({CELLS})(); return c.length > 0 && "
                "c.every(x => /^\\[\\d+\\]:$/.test(x.prompt.trim())); }",
                timeout=timeout_s * 1000,
            )
        except Exception:  # Playwright's timeout: the cells that did not run are listed below
            pass
        time.sleep(1.0)  # widgets render just after their cell's prompt is numbered
        return problems(page.evaluate(CELLS), raises)
    finally:
        page.context.close()
        (notebook.parent / name).unlink(missing_ok=True)
        checkpoints = notebook.parent / ".ipynb_checkpoints"  # what JupyterLab made for the copy
        (checkpoints / f"{Path(name).stem}-checkpoint.ipynb").unlink(missing_ok=True)
        if checkpoints.is_dir() and not any(checkpoints.iterdir()):
            checkpoints.rmdir()


def problems(cells: list[dict[str, Any]], raises: list[bool]) -> list[str]:
    """What is wrong with the cells as the page shows them (see :func:`run_in_lab`).

    Parameters
    ----------
    cells : list of dict
        ``prompt``, ``errors``, ``widgets``, ``waiting``, ``broken`` of each code cell, in order
        (``waiting``: the text of each live output still waiting for its first update).
    raises : list of bool
        Whether each code cell is tagged ``raises-exception``.

    Returns
    -------
    list of str
    """
    out = []
    counts = []
    for i, c in enumerate(cells):
        prompt = c["prompt"].strip()
        if not prompt.strip("[]:").isdigit():
            out.append(f"cell {i} did not run (prompt {prompt or 'empty'})")
            continue
        counts.append(int(prompt.strip("[]:")))
        if c["errors"] and not (i < len(raises) and raises[i]):
            out.append(f"cell {i} shows an error: {c['errors'][0]}")
        out += [f"cell {i}: a widget failed to render: {b}" for b in c["broken"]]
        out += [f"cell {i}: a live output never updated (it shows {w!r})" for w in c["waiting"]]
    if counts != sorted(counts):
        out.append(f"the cells ran out of order: {counts}")
    return out
