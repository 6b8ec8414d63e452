"""Which cells the plan after a cell follows from the plan before, in a real kernel.

A cell that may have changed the cache outside a run (``%dag cache clear``,
``dagnb`` in Python) is followed by a plan of every task, which reads each
task's cache entry again; a cell of ``%dag`` commands that only read
(``history``, ``plan``, ``why``, ``show``, ``trace``, ``costs``) is followed
by the plan that starts from the one before. What that plan read is seen
in the store's SQL: the entry lookups made after the cell's own code (which
ends by clearing the record), before the next cell.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .live_kernel import LiveKernel, loaded_kernel

pytestmark = pytest.mark.kernel

TASKS = [
    "%%task{}\ndef a():\n    return 1\n",
    "%%task{}\ndef b(a):\n    return a + 1\n",
    "%%task{}\ndef c(b):\n    return b * 2\n",
]
TRACE = """
from dagnb.notebook import magics as _magics
_sql = []
_magics._magics.graph.store._db.set_trace_callback(_sql.append)
"""
LOOKUPS = "print(sum('FROM entries' in s for s in _sql)); _sql.clear()"


@pytest.fixture()
def kernel(tmp_path: Path) -> Iterator[LiveKernel]:
    """A kernel whose tasks a, b and c are defined (not run) over a cache an earlier session filled."""
    for filling in loaded_kernel(tmp_path):
        for source in TASKS:
            filling.ok(source.format(""))
        assert "run 3" in filling.text("%dag history")  # its runs written before the kernel goes
    for live in loaded_kernel(tmp_path):
        for source in TASKS:
            live.ok(source.format(" --no-run"))
        live.ok(TRACE)
        yield live


def _lookups_after(kernel: LiveKernel, source: str) -> int:
    """The entry lookups of the plan after a cell of ``source`` (what the cell itself read is not counted)."""
    kernel.ok(source + "\n_sql.clear()")
    return int(kernel.text(LOOKUPS))


@pytest.mark.parametrize(
    "source",
    ["%dag history", "%dag history --diff 1 2", "%dag why c", "%dag plan\n%dag costs", "x = 1\n%dag trace"],
)
def test_a_cell_of_commands_that_only_read_is_followed_by_the_plan_from_the_one_before(
    kernel: LiveKernel, source: str
) -> None:
    assert _lookups_after(kernel, source) == 0


@pytest.mark.parametrize("source", ["%dag cache info", "import dagnb", "%dag history\n%dag cache info"])
def test_a_cell_that_may_change_the_cache_is_followed_by_a_plan_of_every_task(kernel: LiveKernel, source: str) -> None:
    assert _lookups_after(kernel, source) >= 3, "each task's entry is read again"
