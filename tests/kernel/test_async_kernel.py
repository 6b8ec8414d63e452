"""Async tasks in a real ipykernel: on the kernel's own event loop, and Ctrl-C while they run.

The kernel is driven with jupyter_client (``live_kernel.py``), so the test
can interrupt it the way the notebook's stop button does (SIGINT to the
kernel process) while a cell is still running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .live_kernel import LiveKernel, kernel_for, wait_for

pytestmark = pytest.mark.kernel


@pytest.fixture()
def kernel(tmp_path: Path) -> Iterator[LiveKernel]:
    env = dict(os.environ, DAGNB_CACHE_DIR=str(tmp_path / "cache"))
    for live in kernel_for(tmp_path, env):
        live.text(f"%load_ext dagnb\nimport asyncio, os, threading, time\nLOG = {str(tmp_path / 'log.txt')!r}\n"
                  f"HOLD = {str(tmp_path / 'hold')!r}\n"
                  "def note(text):\n    with open(LOG, 'a') as fh:\n        fh.write(text + '\\n')\n")
        yield live


def notes(tmp_path: Path) -> list[str]:
    path = tmp_path / "log.txt"
    return path.read_text().split() if path.exists() else []


def test_async_tasks_run_on_the_kernels_event_loop_together(kernel: LiveKernel, tmp_path: Path) -> None:
    for name in ("first_wait", "second_wait"):
        kernel.text(f"%%task --no-run\nasync def {name}():\n"
                   f"    note(f'{name}:{{threading.current_thread().name}}:{{id(asyncio.get_running_loop())}}')\n"
                   f"    await asyncio.sleep(0.3)\n    note('{name}:done')\n    return 1\n")
    text = kernel.text("%dag run")
    assert text.splitlines()[0] == "run: 2 ran, 0 cached"
    kernels_loop = kernel.text("print(id(asyncio.get_running_loop()))").strip()
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
def test_interrupting_an_awaited_run_keeps_what_finished_and_resumes(kernel: LiveKernel, tmp_path: Path,
                                                                    kind: str) -> None:
    """Ctrl-C reaches the task that holds the run, async or a sync one blocking the kernel's loop."""
    kernel.text("%%task --no-run\nasync def quick():\n    note('quick')\n    return 1\n")  # makes the run awaited
    kernel.text(f"%%task --no-run\n{HELD[kind]}")
    kernel.text("%%task --no-run\ndef after(held):\n    note('after')\n    return held * 10\n")
    (tmp_path / "hold").touch()
    msg_id = kernel.start("%dag run")
    wait_for(lambda: "held" in notes(tmp_path))
    kernel.interrupt()
    cell = kernel.collect(msg_id)
    assert cell.status == "error", cell
    assert [m.content["traceback"] for m in cell.errors] == [[
        "RunInterrupted: The run was interrupted. Finished and kept: `quick` (ran). Cancelled: `held` (it was "
        "running) and `after` (not started). Run `%dag run` again to resume: only the 2 unfinished tasks run, "
        "the others are kept."
    ]]
    assert notes(tmp_path) == ["quick", "held"]
    statuses = kernel.text("import dagnb\nprint(dagnb.current().statuses, quick, 'held' in dagnb.current().results)")
    assert statuses.strip() == "{'quick': 'done', 'held': 'cancelled', 'after': 'skipped'} 1 False"

    (tmp_path / "hold").unlink()
    assert kernel.text("%dag run").splitlines()[:4] == ["run: 2 ran, 1 cached", "  quick: cached",
                                                      "  held: ran (new)", "  after: ran (new)"]
    assert kernel.text("print(after)").strip() == "20"
    assert notes(tmp_path) == ["quick", "held", "held", "after"]
