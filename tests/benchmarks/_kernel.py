"""A real ipykernel driven over ZMQ, the way a notebook frontend drives it.

The benchmarks of the user's path (``bench_kernel.py``) send cells to a
kernel started by ``jupyter_client``, one ``execute_request`` at a time,
and read the shell reply and every iopub message of the cell, as nbclient
and JupyterLab do. Two clocks: the wall time at the client, from sending
the request to the kernel's idle status (what a user waits for), and the
kernel's own time for the cell, from its ``execute_input`` message to its
``execute_reply`` (the header timestamps nbclient records as a cell's
duration; it leaves out the messaging).

Invariants:

* A kernel started here is always shut down: :func:`kernel` is a context
  manager, and a kernel that does not answer a shutdown request is killed.
* Nothing waits forever: every cell has a timeout; when it passes, the
  cell raises :class:`KernelTimeout` and the kernel is killed on the way
  out of the ``with`` block.
* A cell that fails raises :class:`CellFailed` with the kernel's error, so
  a benchmark never times an error message instead of the work.

Bytes on the iopub channel are counted as the JSON frames of each message
(header, parent header, metadata, content) plus its binary buffers: what
the kernel's iopub socket sends, minus the HMAC signature and ZMQ framing.
"""

from __future__ import annotations

import json
import queue
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import user_environment

STARTUP_TIMEOUT = 120.0  # seconds; the machine may be loaded
SHUTDOWN_TIMEOUT = 10.0
POLL = 1.0  # seconds between checks that the kernel is alive and the cell within its time


class KernelTimeout(RuntimeError):
    """A cell (or the kernel's start) took longer than its timeout."""


class CellFailed(RuntimeError):
    """A cell ended with an error: the benchmark's cells must all succeed."""


@dataclass
class Cell:
    """What one executed cell cost and sent back."""

    seconds: float  # at the client: request sent -> idle status received (the reply was sent before it)
    status: str
    kernel_seconds: float = 0.0  # the kernel's own clock: execute_input sent -> execute_reply sent
    stdout: str = ""
    shown: str = ""  # the text/plain of what the cell displayed (dagnb's reports are displays, not prints)
    error: str = ""
    messages: Counter[str] = field(default_factory=Counter)  # iopub messages by type
    nbytes: int = 0  # iopub bytes (JSON frames + buffers)
    dagnb: list[dict[str, Any]] = field(default_factory=list)  # the `dagnb` metadata of displayed outputs
    started: Any = None  # the kernel's timestamp of execute_input (a datetime)


class Kernel:
    """One running kernel and its client; use :func:`kernel` to start one."""

    def __init__(self, manager: Any, client: Any, log: Path) -> None:
        self.manager, self.client, self.log = manager, client, log

    def run(self, code: str, timeout: float = 600.0) -> Cell:
        """Execute ``code`` as a notebook cell; raise :class:`CellFailed` if it fails."""
        cell = self.execute(code, timeout)
        if cell.status != "ok":
            raise CellFailed(f"cell failed: {code[:200]!r}\n{cell.error}")
        return cell

    def execute(self, code: str, timeout: float = 600.0) -> Cell:
        """Send one ``execute_request``; read its iopub messages up to idle, then its reply.

        ipykernel sends the reply before it publishes idle, so once idle has
        arrived the reply is waiting: blocking on iopub alone wastes no CPU
        that the kernel (on a 2-core machine) could use.
        """
        started = time.perf_counter()
        msg_id = self.client.execute(code, store_history=True, allow_stdin=False, stop_on_error=True)
        deadline = started + timeout
        cell = Cell(seconds=0.0, status="")
        while not self._iopub(msg_id, cell, deadline):
            pass
        cell.seconds = time.perf_counter() - started
        while not self._reply(msg_id, cell, deadline):
            pass
        return cell

    def drain(self, quiet: float) -> Cell:
        """Read iopub until nothing arrives for ``quiet`` seconds (messages sent after a cell ended)."""
        cell = Cell(seconds=0.0, status="ok")
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=quiet)
            except queue.Empty:
                return cell
            self._count(msg, cell)

    def _reply(self, msg_id: str, cell: Cell, deadline: float) -> bool:
        try:
            msg = self.client.get_shell_msg(timeout=POLL)
        except queue.Empty:
            self._check(deadline)
            return False
        if msg["parent_header"].get("msg_id") != msg_id:
            return False
        content = msg["content"]
        cell.status = content["status"]
        if cell.started is not None:
            cell.kernel_seconds = (msg["header"]["date"] - cell.started).total_seconds()
        if cell.status != "ok":
            cell.error = f"{content.get('ename')}: {content.get('evalue')}\n{cell.error}"
        return True

    def _iopub(self, msg_id: str, cell: Cell, deadline: float) -> bool:
        """One iopub message (or none within POLL); True once the cell's idle status arrived."""
        try:
            msg = self.client.get_iopub_msg(timeout=POLL)
        except queue.Empty:
            self._check(deadline)
            return False
        self._count(msg, cell)
        if msg["parent_header"].get("msg_id") != msg_id:
            return False
        kind, content = msg["msg_type"], msg["content"]
        if kind == "execute_input":
            cell.started = msg["header"]["date"]
        elif kind == "stream" and content.get("name") == "stdout":
            cell.stdout += content["text"]
        elif kind == "error":
            cell.error += "\n".join(content.get("traceback", []))
        elif kind in ("display_data", "execute_result"):
            cell.shown += str(content.get("data", {}).get("text/plain", "")) + "\n"
            meta = content.get("metadata", {}).get("dagnb")
            if meta:
                cell.dagnb.append(meta)
        return kind == "status" and content["execution_state"] == "idle"

    def _count(self, msg: dict[str, Any], cell: Cell) -> None:
        cell.messages[msg["msg_type"]] += 1
        frames = (msg["header"], msg["parent_header"], msg["metadata"], msg["content"])
        cell.nbytes += sum(len(json.dumps(f, default=str)) for f in frames)
        cell.nbytes += sum(memoryview(b).nbytes for b in msg.get("buffers") or ())

    def _check(self, deadline: float) -> None:
        if time.perf_counter() > deadline:
            raise KernelTimeout(f"the cell did not finish in time; kernel log: {self.log}")
        if not self.manager.is_alive():
            raise CellFailed(f"the kernel died; its log: {self.log}\n{_tail(self.log)}")


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@contextmanager
def kernel(cwd: Path, env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[Kernel]:
    """A new ipykernel (``python3``: this interpreter) in ``cwd``; always shut down on exit.

    ``env`` is added to this process's environment (``DAGNB_CACHE_DIR``,
    for one); the kernel's stdout and stderr go to ``log``.
    """
    from jupyter_client import KernelManager

    log = log or cwd / "kernel.log"
    manager = KernelManager(kernel_name="python3")
    with open(log, "ab") as sink:
        manager.start_kernel(cwd=str(cwd), env=user_environment(**(env or {})), stdout=sink, stderr=sink,
                             stdin=subprocess.DEVNULL)
    client = manager.client()
    try:
        client.start_channels()
        try:
            client.wait_for_ready(timeout=STARTUP_TIMEOUT)
        except RuntimeError as exc:
            raise KernelTimeout(f"the kernel did not start: {exc}; its log: {log}\n{_tail(log)}") from None
        yield Kernel(manager, client, log)
    finally:
        _stop(manager, client)


def _stop(manager: Any, client: Any) -> None:
    """Ask the kernel to shut down; jupyter_client kills it after SHUTDOWN_TIMEOUT seconds without an answer."""
    try:
        client.stop_channels()
    finally:
        manager.shutdown_wait_time = SHUTDOWN_TIMEOUT
        try:
            manager.shutdown_kernel(now=False)
        except Exception:  # noqa: BLE001 - a kernel that cannot shut down cleanly is killed below
            if manager.has_kernel:
                manager.shutdown_kernel(now=True)
