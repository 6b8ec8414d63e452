"""One plan per epoch, in a real kernel: a ``%%task`` cell fingerprints each notebook input once.

The notebook input is a value of a type registered with
``dagnb.register_fingerprint`` whose fingerprint function counts its calls
(``Counted.calls``, which no task reads). Each count is read by a plain
cell, which itself plans once after it (the status lines on the page): the
deltas below include that one fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .live_kernel import LiveKernel, loaded_kernel

pytestmark = pytest.mark.kernel

SETUP = """
import dagnb

class Counted:
    calls = 0

    def __init__(self, items):
        self.items = items

def _counted(value):
    Counted.calls += 1
    return value.items

dagnb.register_fingerprint(Counted, _counted)

def note(name):
    with open(LOG, "a") as handle:
        handle.write(name + "\\n")

x = Counted([1, 2, 3])
"""

USE = "%%task\ndef use(x):\n    note('use')\n    return len(x.items)\n"
BELOW = "%%task\ndef below(use, x):\n    note('below')\n    return use + x.items[0]\n"


@pytest.fixture()
def kernel(tmp_path: Path) -> Iterator[LiveKernel]:
    for live in loaded_kernel(tmp_path):
        live.ok(f"LOG = {str(tmp_path / 'log.txt')!r}\n{SETUP}")
        yield live


def _calls(kernel: LiveKernel) -> int:
    return int(kernel.text("print(Counted.calls)"))


def _runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    return log.read_text().split() if log.exists() else []


def test_a_cached_task_cell_with_a_live_view_and_status_lines_fingerprints_its_input_once(
    kernel: LiveKernel, tmp_path: Path
) -> None:
    kernel.ok("%dag")  # a live view: it plans at the end of every run, and after every cell
    kernel.ok(USE)
    kernel.ok(BELOW)
    assert _runs(tmp_path) == ["use", "below"]
    before = _calls(kernel)
    assert _calls(kernel) - before == 1  # a plain cell: the plan after it, once
    before = _calls(kernel)
    cell = kernel.ok(USE)  # cached: its run, the stale check below it, the view and the lines share one epoch
    assert "use: cached" in [m.text for m in cell.displays]
    assert _calls(kernel) - before == 1 + 1  # the task cell once, the counting cell's plan once
    assert _runs(tmp_path) == ["use", "below"]


def test_a_change_in_place_in_a_plain_cell_is_still_seen_by_the_next_plan(kernel: LiveKernel, tmp_path: Path) -> None:
    kernel.ok(USE)
    assert "use  up to date" in kernel.text("%dag plan")
    cell = kernel.ok("x.items.append(4)")  # no task ran: the plan after the cell sees the change all the same
    assert [m.text for m in cell.updates] == ["use: stale (input x changed)"]
    assert "use  run  (input x changed)" in kernel.text("%dag plan")
    cell = kernel.ok("%dag run")
    assert _runs(tmp_path) == ["use", "use"]
    assert cell.status == "ok"
    assert kernel.text("print(use)").strip() == "4"
