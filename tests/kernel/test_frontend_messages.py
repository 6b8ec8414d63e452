"""What a frontend receives from a real kernel, message by message (see ``live_kernel.py``).

Executions are counted in a log file the task bodies append to (``note``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .live_kernel import LiveKernel, kernel_for, wait_for

pytestmark = pytest.mark.kernel

NOTE = """
def note(name):
    with open(LOG, "a") as handle:
        handle.write(name + "\\n")
"""


@pytest.fixture()
def kernel(tmp_path: Path) -> Iterator[LiveKernel]:
    env = dict(os.environ, DAGNB_CACHE_DIR=str(tmp_path / "cache"))
    for live in kernel_for(tmp_path, env):
        live.ok("%load_ext dagnb")
        live.ok(f"LOG = {str(tmp_path / 'log.txt')!r}\nHOLD = {str(tmp_path / 'hold')!r}\n{NOTE}")
        yield live


def runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    return log.read_text().split() if log.exists() else []


# ------------------------------------------------------------------ Ctrl-C

def test_kernel_interrupt_during_dag_run_ends_in_one_paragraph_and_the_run_resumes(
    kernel: LiveKernel, tmp_path: Path
) -> None:
    """Kernel → Interrupt while ``slow`` blocks the kernel (an awaited run: ``test_async_kernel.py``)."""
    kernel.ok("%%task --no-run\ndef first():\n    note('first')\n    return 1\n")
    kernel.ok("%%task --no-run\ndef slow(first):\n    note('slow')\n    import os, time\n"
              "    while os.path.exists(HOLD):\n        time.sleep(0.01)\n    return first + 1\n")
    kernel.ok("%%task --no-run\ndef last(slow):\n    note('last')\n    return slow * 10\n")
    (tmp_path / "hold").touch()
    started = kernel.start("%dag run")
    wait_for(lambda: "slow" in runs(tmp_path))
    kernel.interrupt()
    cell = kernel.collect(started)
    assert cell.status == "error"
    assert [m.content["ename"] for m in cell.errors] == ["RunInterrupted"]
    assert cell.errors[0].content["traceback"] == [
        "RunInterrupted: The run was interrupted. Finished and kept: `first` (ran). Cancelled: `slow` (it was "
        "running) and `last` (not started). Run `%dag run` again to resume: only the 2 unfinished tasks run, "
        "the others are kept."
    ]
    assert runs(tmp_path) == ["first", "slow"]

    (tmp_path / "hold").unlink()
    resumed = kernel.ok("%dag run")
    assert runs(tmp_path) == ["first", "slow", "slow", "last"]
    assert resumed.displays[-1].text.startswith("run: 2 ran, 1 cached")
    assert kernel.ok("print(last)").stdout == "20\n"
