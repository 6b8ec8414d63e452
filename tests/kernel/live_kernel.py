"""A real ipykernel driven over the Jupyter protocol, message by message.

nbclient keeps only what a notebook saves; these tests need what a frontend
receives: every iopub message of a cell (``update_display_data`` included,
with its display id), a cell started but not awaited, and an interrupt sent
while it runs (Kernel → Interrupt). Given a cell id, an execute request
carries it in its metadata (``cellId``), as JupyterLab sends it.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel


@dataclass
class Message:
    """One iopub message of a cell: its type, content and (for displays) display id."""

    msg_type: str
    content: dict[str, Any]

    @property
    def display_id(self) -> str | None:
        return (self.content.get("transient") or {}).get("display_id")

    @property
    def text(self) -> str:
        """The ``text/plain`` of a display, the text of a stream, or the traceback of an error."""
        if self.msg_type == "stream":
            return str(self.content["text"])
        if self.msg_type == "error":
            return "\n".join(self.content["traceback"])
        return str(self.content.get("data", {}).get("text/plain", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.content.get("metadata") or {})


@dataclass
class Cell:
    """What one execution sent: its messages in order, and the reply's status."""

    messages: list[Message] = field(default_factory=list)
    status: str = ""

    def of(self, *types: str) -> list[Message]:
        return [m for m in self.messages if m.msg_type in types]

    @property
    def displays(self) -> list[Message]:
        return self.of("display_data", "execute_result")

    @property
    def updates(self) -> list[Message]:
        return self.of("update_display_data")

    @property
    def errors(self) -> list[Message]:
        return self.of("error")

    def widget_values(self) -> list[str]:
        """The string ``value`` of every widget state update the cell sent (an HTML widget's markup)."""
        found = []
        for m in self.of("comm_msg"):
            state = m.content.get("data", {}).get("state", {})
            if m.content["data"].get("method") == "update" and isinstance(state.get("value"), str):
                found.append(state["value"])
        return found

    @property
    def stdout(self) -> str:
        return "".join(m.text for m in self.of("stream") if m.content["name"] == "stdout")


class LiveKernel:
    """One kernel for one test; ``run`` executes a cell and returns every message it caused."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(cwd), env=env)

    def start(self, code: str, cell_id: str | None = None) -> str:
        """Send an execute request; return its id without waiting."""
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        metadata = {"cellId": cell_id} if cell_id else {}  # nbclient and jupyter_client send none
        msg = self.client.session.msg("execute_request", content, metadata=metadata)
        self.client.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def collect(self, msg_id: str, timeout: float = 120) -> Cell:
        """The messages of request ``msg_id`` until the kernel is idle again."""
        cell, deadline = Cell(), time.monotonic() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=0.05)
            except queue.Empty:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the cell did not finish in {timeout} s") from None
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "status" and msg["content"]["execution_state"] == "idle":
                break
            if kind not in ("status", "execute_input"):
                cell.messages.append(Message(kind, msg["content"]))
        reply = self.client.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:  # a reply to an earlier request (kernel info)
            reply = self.client.get_shell_msg(timeout=timeout)
        cell.status = reply["content"]["status"]
        return cell

    def run(self, code: str, cell_id: str | None = None, timeout: float = 120) -> Cell:
        return self.collect(self.start(code, cell_id), timeout)

    def ok(self, code: str, cell_id: str | None = None) -> Cell:
        """Run a cell that must succeed."""
        cell = self.run(code, cell_id)
        assert cell.status == "ok" and not cell.errors, [m.text for m in cell.errors]
        return cell

    def text(self, code: str) -> str:
        """Run a cell that must succeed; return its streams and displayed ``text/plain``, in order."""
        return "".join(m.text for m in self.ok(code).of("stream", "display_data", "execute_result"))

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def kernel_for(cwd: Path, env: dict[str, str]) -> Iterator[LiveKernel]:
    kernel = LiveKernel(cwd, env)
    try:
        yield kernel
    finally:
        kernel.shutdown()


def loaded_kernel(folder: Path) -> Iterator[LiveKernel]:
    """A kernel started in ``folder`` with dagnb loaded, its disk cache at ``folder / "cache"`` (shut down after)."""
    for live in kernel_for(folder, dict(os.environ, DAGNB_CACHE_DIR=str(folder / "cache"))):
        live.ok("%load_ext dagnb")
        yield live


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition never held")
        time.sleep(0.01)
