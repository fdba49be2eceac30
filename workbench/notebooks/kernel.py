"""The kernel a checked notebook runs in: nbval's, started on IPC sockets (no TCP ports, so
parallel kernels never collide) with the notebook named in its environment, and watched, so a
kernel that dies is reported at once with the cell it was running instead of after the timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from queue import Empty
from typing import Any

from jupyter_client.manager import KernelManager
from nbval.kernel import NbvalKernelspecManager, RunningKernel

from ..errors import WorkbenchError

__all__: list[str] = []

POLL_S = 1.0  # how often a cell's wait checks that the kernel is still alive


class KernelDied(WorkbenchError, RuntimeError):
    """The notebook's kernel ended (or aborted) while a cell ran: its exit code or signal named."""


class WatchedKernel(RunningKernel):
    """A :class:`nbval.kernel.RunningKernel` on IPC sockets in a folder of its own, whose waits
    notice a dead kernel within ``POLL_S``."""

    def __init__(
        self, kernel_name: str, cwd: str, startup_timeout: float, env: dict[str, str]
    ) -> None:
        self.sockets = tempfile.mkdtemp(prefix="wb-kernel-")
        km = KernelManager(
            kernel_name=kernel_name,
            kernel_spec_manager=NbvalKernelspecManager(),
            transport="ipc",
            ip=os.path.join(self.sockets, "k"),
        )
        km.start_kernel(stderr=open(os.devnull, "w"), cwd=cwd, env=env)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=startup_timeout)
        except RuntimeError:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
            shutil.rmtree(self.sockets, ignore_errors=True)
            raise
        self.km, self.kc = km, kc
        self._ensure_iopub_up()

    def execute_cell_input(self, cell_input: str, allow_stdin: bool | None = None) -> str:
        """Run a cell as JupyterLab does: in the history, so a trailing ``;`` hides the result
        (nbval runs cells outside it, where IPython cannot see the ``;``).

        Parameters
        ----------
        cell_input : str
            The cell's source.
        allow_stdin : bool, optional
            Whether the kernel may ask for input (nbval says no).

        Returns
        -------
        str
            The execute request's message id.
        """
        return str(
            self.kc.execute(
                cell_input, store_history=True, allow_stdin=allow_stdin, stop_on_error=False
            )
        )

    def await_reply(self, msg_id: str, timeout: float | None = None) -> None:
        """Wait for the reply to ``msg_id`` as nbval does, checking the kernel between polls.

        Parameters
        ----------
        msg_id : str
            The execute request's id.
        timeout : float, optional
            Seconds to wait in all (None: no limit).

        Raises
        ------
        queue.Empty
            No reply within ``timeout`` (nbval then interrupts the kernel).
        KernelDied
            The kernel process ended while waiting.
        """
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Empty
            try:
                msg = self.get_message(stream="shell", timeout=min(POLL_S, left))
            except Empty:
                if not self.km.is_alive():
                    raise KernelDied(self.death()) from None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["status"] == "aborted":
                    raise KernelDied("the kernel aborted this cell's execute request")
                return

    def death(self) -> str:
        """How the kernel process ended, in words."""
        process: Any = getattr(self.km.provisioner, "process", None)
        code = None if process is None else process.poll()
        if code is None:
            return "the kernel died while this cell ran"
        if code < 0:
            name = signal.Signals(-code).name
            why = " (the OOM killer sends it when memory runs out)" if -code == 9 else ""
            return f"the kernel died while this cell ran: killed by {name}{why}"
        return f"the kernel died while this cell ran: it exited with code {code}"

    def stop(self) -> None:
        """Shut the kernel down and remove its sockets' folder."""
        try:
            super().stop()
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        """Remove the sockets' folder (the kernel is gone)."""
        shutil.rmtree(self.sockets, ignore_errors=True)
