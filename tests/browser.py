"""Real-browser helpers: Debian's chromium driven by Playwright (never ``playwright install``),
and a private JupyterLab on 127.0.0.1 for notebook checks.

Without chromium or Playwright the browser tests skip and say how to enable them; under
``CI=true`` they fail instead, so CI never passes without having looked.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
HOW = (
    "install Debian's chromium (`apt-get install -y chromium`; `make test` does it when run as "
    "root) and the dev extra (`pip install -e .[dev]`, which has playwright)"
)


def until(predicate, timeout: float = 30.0, every: float = 0.05) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False): for what a
    background thread or a page will show soon."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if predicate():
            return True
        time.sleep(every)
    return False


def missing() -> str | None:
    """Why no browser test can run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no chromium at {CHROMIUM}"
    return None


def require() -> None:
    why = missing()
    if why is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests must run under CI=true, but {why}: {HOW}")
    pytest.skip(f"browser test skipped: {why}; to run it, {HOW}")


def launch(pw, width: int = 1300, height: int = 900):
    """A headless chromium page that records console errors in ``page.errors``."""
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.errors = []
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return browser, page


# The lengths of every named ColumnDataSource in the page's Bokeh documents.
BOKEH_SOURCES = """() => {
  const out = {};
  for (const doc of ((window.Bokeh && window.Bokeh.documents) || [])) {
    for (const m of (doc._all_models ? doc._all_models.values() : [])) {
      if (!m.name || !m.data) continue;
      const d = m.data, keys = d instanceof Map ? Array.from(d.keys()) : Object.keys(d);
      const col = d instanceof Map ? d.get(keys[0]) : d[keys[0]];
      out[m.name] = {n: col ? col.length : 0,
                     first: col && col.length
                       ? (d instanceof Map ? d.get(keys[0]) : d[keys[0]])[0] : null};
    }
  }
  return out;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server on 127.0.0.1 with its own config, runtime and settings folders."""

    def __init__(self, root: Path, private: Path) -> None:
        self.root, self.private = Path(root), Path(private)
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = self.private / "lab.log"

    def start(self, timeout: float = 120) -> None:
        env = dict(os.environ)
        for var, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("IPYTHONDIR", "ipython"),
            ("JUPYTERLAB_SETTINGS_DIR", "settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "workspaces"),
        ]:
            (self.private / sub).mkdir(parents=True, exist_ok=True)
            env[var] = str(self.private / sub)
        # the news popup covers the lower right of the page
        news = self.private / "settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--allow-root",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=open(self.log, "w"), stderr=subprocess.STDOUT, env=env, cwd=self.root
        )
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited ({self.proc.returncode}):\n{self.log.read_text()}"
                )
            try:
                with urllib.request.urlopen(self.url("/api/status"), timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab never answered:\n{self.log.read_text()}")

    def url(self, path: str) -> str:
        return f"{self.base}{path}?token={self.token}"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            req = urllib.request.Request(self.url("/api/shutdown"), method="POST", data=b"")
            urllib.request.urlopen(req, timeout=10).close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.terminate()
            self.proc.wait(10)


@contextlib.contextmanager
def serving(tmp_path: Path, notebooks: dict[str, Any]) -> Iterator[Lab]:
    """A started :class:`Lab` whose root (``tmp_path / "root"``) holds ``notebooks`` (name ->
    nbformat notebook); stopped on exit."""
    import nbformat

    root = tmp_path / "root"
    root.mkdir()
    for name, nb in notebooks.items():
        nbformat.write(nb, root / name)
    server = Lab(root, tmp_path / "private")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_idle(page, timeout_s: float = 180) -> None:
    """The kernel is ready when the status bar says '| Idle' (the toolbar's dot is early)."""
    page.wait_for_function(
        "() => { const s = document.querySelector('#jp-main-statusbar');"
        " return s && s.innerText.includes('| Idle'); }",
        timeout=timeout_s * 1000,
    )


def open_notebook(page, lab: Lab, name: str) -> None:
    page.goto(lab.url(f"/lab/tree/{name}") + "&reset")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=180_000)
    wait_idle(page)


def run_all(page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator("li.lm-Menu-item[data-command='runmenu:run-all']").click()


# textContent, not innerText: JupyterLab windows off-screen cells, and innerText is "" there
PROMPTS = """() => Array.from(document.querySelectorAll(
  '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-CodeCell .jp-InputArea-prompt'))
  .map(e => e.textContent.trim())"""
ALL_RAN = f"""() => {{ const p = ({PROMPTS})();
  return p.length > 0 && p.every(x => /^\\[\\d+\\]:$/.test(x)); }}"""


def wait_cells_ran(page, timeout_s: float = 300) -> list[str]:
    """Wait until every code cell has a number (open a notebook saved without outputs)."""
    page.wait_for_function(ALL_RAN, timeout=timeout_s * 1000)
    return page.evaluate(PROMPTS)
