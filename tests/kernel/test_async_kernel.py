"""Async tasks in a real ipykernel: on the kernel's own event loop, and Ctrl-C while they run.

The kernel is driven with jupyter_client, so the test can interrupt it the
way the notebook's stop button does (SIGINT to the kernel process) while a
cell is still running.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

pytestmark = pytest.mark.kernel


class Kernel:
    """A python3 kernel with dagnb loaded; cells are run one at a time."""

    def __init__(self, manager: Any, client: Any) -> None:
        self.manager, self.client = manager, client

    def start(self, code: str) -> str:
        return self.client.execute(code)

    def finish(self, msg_id: str, timeout: float = 60) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The execute reply of cell ``msg_id`` and the outputs it sent."""
        outputs = []
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] in ("stream", "error", "display_data", "execute_result"):
                outputs.append({"type": msg["msg_type"], **msg["content"]})
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        reply = self.client.get_shell_msg(timeout=timeout)
        return reply["content"], outputs

    def run(self, code: str) -> str:
        """Run a cell that must succeed; return its text."""
        reply, outputs = self.finish(self.start(code))
        assert reply["status"] == "ok", outputs
        return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in outputs)


@pytest.fixture()
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kernel]:
    monkeypatch.setenv("DAGNB_CACHE_DIR", str(tmp_path / "cache"))
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    kernel = Kernel(manager, client)
    kernel.run(f"%load_ext dagnb\nimport asyncio, os, threading, time\nLOG = {str(tmp_path / 'log.txt')!r}\n"
               f"HOLD = {str(tmp_path / 'hold')!r}\n"
               "def note(text):\n    with open(LOG, 'a') as fh:\n        fh.write(text + '\\n')\n")
    yield kernel
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def notes(tmp_path: Path) -> list[str]:
    path = tmp_path / "log.txt"
    return path.read_text().split() if path.exists() else []


def test_async_tasks_run_on_the_kernels_event_loop_together(kernel: Kernel, tmp_path: Path) -> None:
    for name in ("first_wait", "second_wait"):
        kernel.run(f"%%task --no-run\nasync def {name}():\n"
                   f"    note(f'{name}:{{threading.current_thread().name}}:{{id(asyncio.get_running_loop())}}')\n"
                   f"    await asyncio.sleep(0.3)\n    note('{name}:done')\n    return 1\n")
    text = kernel.run("%dag run")
    assert text.splitlines()[0] == "run: 2 ran, 0 cached"
    kernels_loop = kernel.run("print(id(asyncio.get_running_loop()))").strip()
    logged = notes(tmp_path)
    assert logged[:2] == [f"first_wait:MainThread:{kernels_loop}", f"second_wait:MainThread:{kernels_loop}"]
    assert sorted(logged[2:]) == ["first_wait:done", "second_wait:done"], "both started before either finished"


HELD = {
    "async": "async def held(quick):\n    note('held')\n    while os.path.exists(HOLD):\n"
             "        await asyncio.sleep(0.01)\n    return quick + 1\n",
    "sync": "def held(quick):\n    note('held')\n    while os.path.exists(HOLD):\n"
            "        time.sleep(0.01)\n    return quick + 1\n",
}


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_interrupting_an_awaited_run_keeps_what_finished_and_resumes(kernel: Kernel, tmp_path: Path,
                                                                    kind: str) -> None:
    """Ctrl-C reaches the task that holds the run, async or a sync one blocking the kernel's loop."""
    kernel.run("%%task --no-run\nasync def quick():\n    note('quick')\n    return 1\n")  # makes the run awaited
    kernel.run(f"%%task --no-run\n{HELD[kind]}")
    kernel.run("%%task --no-run\ndef after(held):\n    note('after')\n    return held * 10\n")
    (tmp_path / "hold").touch()
    msg_id = kernel.start("%dag run")
    deadline = time.monotonic() + 60
    while "held" not in notes(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.01)
    kernel.manager.interrupt_kernel()
    reply, _ = kernel.finish(msg_id)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt", reply
    assert notes(tmp_path) == ["quick", "held"]
    statuses = kernel.run("import dagnb\nprint(dagnb.current().statuses, quick, 'held' in dagnb.current().results)")
    assert statuses.strip() == "{'quick': 'done', 'held': 'cancelled', 'after': 'skipped'} 1 False"

    (tmp_path / "hold").unlink()
    assert kernel.run("%dag run").splitlines()[:4] == ["run: 2 ran, 1 cached", "  quick: cached",
                                                      "  held: ran (new)", "  after: ran (new)"]
    assert kernel.run("print(after)").strip() == "20"
    assert notes(tmp_path) == ["quick", "held", "held", "after"]
