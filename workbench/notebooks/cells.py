"""What ``--wb-notebooks`` collects: a :class:`Notebook` per ``.ipynb`` (nbval's collector, with
full comparison, our sanitizers, a watched kernel and a budget) and a :class:`Cell` per code cell
(nbval's item, under the cell's and the notebook's timeouts)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from nbval.kernel import CURRENT_ENV_KERNEL_NAME
from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError

from .kernel import KernelDied, WatchedKernel
from .plugin import baseline_path, sanitize_patterns

__all__: list[str] = []

BASELINE_ENV = "WORKBENCH_EXPECT_BASELINE"  # the file wb.expect keeps "last run" figures in
NOTEBOOK_ENV = "WORKBENCH_NOTEBOOK"  # the notebook a kernel runs, for wb.expect's messages
TEXT_TWINS = ("text/html", "image/svg+xml")  # drawn from the same figures as the text/plain


class Notebook(IPyNbFile):
    """One notebook: nbval's collector with full comparison, our sanitizers and kernel."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.compare_outputs = True
        self.died: str | None = None
        self.deadline = float("inf")
        if not self.config.option.wb_compare_html:
            self.skip_compare = tuple(self.skip_compare) + TEXT_TWINS

    def setup(self) -> None:
        opt = self.config.option
        if opt.nbval_kernel_name:
            name = opt.nbval_kernel_name
        else:  # the kernel of the Python running pytest: where workbench is installed
            name = CURRENT_ENV_KERNEL_NAME
        env = {
            **os.environ,
            BASELINE_ENV: str(baseline_path(self.config, Path(self.fspath)).resolve()),
            NOTEBOOK_ENV: str(Path(self.fspath).resolve()),
        }
        self.kernel = WatchedKernel(
            name,
            cwd=str(self.fspath.dirname),
            startup_timeout=opt.nbval_kernel_startup_timeout,
            env=env,
        )
        self.setup_sanitize_files()
        self.deadline = time.monotonic() + opt.wb_notebook_timeout

    def setup_sanitize_files(self) -> None:
        self.sanitize_patterns.update(sanitize_patterns())
        super().setup_sanitize_files()  # the user's own --nbval-sanitize-with file, after ours

    def teardown(self) -> None:
        kernel = self.kernel
        if isinstance(kernel, WatchedKernel) and not kernel.is_alive() and hasattr(kernel, "km"):
            kernel.kc.stop_channels()  # a dead kernel: nbval only stops a live one
            kernel.cleanup()
        super().teardown()

    def collect(self) -> Any:
        for item in super().collect():
            yield Cell.from_parent(
                self, name=item.name, cell_num=item.cell_num, cell=item.cell, options=item.options
            )
        if self.config.option.wb_browser:
            yield InLab.from_parent(self, name="JupyterLab")


class Cell(IPyNbCell):
    """One code cell, run under the cell's and the notebook's timeouts, in a watched kernel."""

    parent: Notebook

    def runtest(self) -> None:
        nb, opt = self.parent, self.config.option
        if nb.died:
            pytest.skip(nb.died)
        left = nb.deadline - time.monotonic()
        if left <= 0:
            pytest.skip(f"the notebook's {opt.wb_notebook_timeout:g} s ran out before this cell")
        limit = min(opt.wb_cell_timeout, opt.nbval_cell_timeout)
        saved = opt.nbval_cell_timeout
        opt.nbval_cell_timeout = min(limit, left)  # nbval reads its option for each cell
        try:
            super().runtest()
        except KernelDied as e:
            nb.died = f"{e} (cell {self.cell_num})"
            self.raise_cell_error(str(e))
        except NbCellError as e:
            if nb.timed_out and left < limit:
                raise NbCellError(
                    self.cell_num,
                    f"the notebook ran past its {opt.wb_notebook_timeout:g} s "
                    "(--wb-notebook-timeout) in this cell",
                    self.cell.source,
                    e.inner_traceback,
                ) from None
            if nb.timed_out:
                raise NbCellError(
                    self.cell_num,
                    f"the cell ran past {limit:g} s (--wb-cell-timeout)",
                    self.cell.source,
                    e.inner_traceback,
                ) from None
            raise
        finally:
            opt.nbval_cell_timeout = saved


class InLab(pytest.Item):
    """The notebook once more, in JupyterLab in headless chromium (``--wb-browser``)."""

    def runtest(self) -> None:
        from .browser import SESSION, missing, run_in_lab

        why = missing()
        if why and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"--wb-browser under CI=true, but {why}", pytrace=False)
        if why:
            pytest.skip(f"--wb-browser: {why}")
        opt = self.config.option
        found = run_in_lab(SESSION, Path(self.fspath), min(opt.wb_notebook_timeout, 1800.0))
        if found:
            pytest.fail(
                f"{Path(self.fspath).name} in JupyterLab:\n  " + "\n  ".join(found), pytrace=False
            )

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.fspath, 0, f"{Path(self.fspath).name}::JupyterLab"
