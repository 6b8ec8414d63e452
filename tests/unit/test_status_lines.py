"""What each task cell's status line says as the session changes, driven by real runs (no IPython).

The lines of ``a -> b -> c`` are shown as their cells would show them; then
notebook variables change, tasks are edited and runs go, and each step
checks which lines change and to what. Executions are counted in the log.
"""

from __future__ import annotations

from pathlib import Path

from notebook_cells import Notebook, runs

from dagnb.notebook.status_lines import StatusLines
from dagnb.overview import planned

A = "def a():\n    note('a')\n    return 1\n"
B = "def b(a, threshold):\n    note('b')\n    return a + threshold\n"
C = "def c(b):\n    note('c')\n    return b * 2\n"
C_FAILS = "def c(b):\n    note('c')\n    return b / 0\n"


class Page:
    """A session whose task cells showed their lines, and every line change since."""

    def __init__(self, tmp_path: Path) -> None:
        self.nb = Notebook(tmp_path)
        self.nb.cell("threshold = 3")
        for source in (A, B, C):
            self.nb.task(source)
        self.lines = StatusLines()
        report = self.nb.graph.run()
        for task in "abc":
            self.lines.shown(task, report.statuses[task], report.line(task), {"format": 1, "task": task})
        self.changes: list[tuple[str, str, str]] = []
        self.nb.graph.bus.subscribe(self._on_event)

    def _on_event(self, event: object) -> None:
        line = self.lines.on_event(event)  # type: ignore[arg-type]
        if line is not None:
            self.changes.append((line.task, line.status, line.text))

    def after_cell(self) -> list[tuple[str, str, str]]:
        now = planned(self.nb.graph)
        return [(line.task, line.status, line.text) for line in self.lines.on_plan(now.statuses, now.reasons())]

    def run(self) -> list[tuple[str, str, str]]:
        self.changes = []
        self.nb.graph.run(raise_errors=False)
        return self.changes


def test_a_changed_variable_makes_lines_stale_and_a_run_updates_them(tmp_path: Path) -> None:
    page = Page(tmp_path)
    assert page.after_cell() == [], "nothing changed: no line is sent"

    page.nb.cell("threshold = 4")
    assert page.after_cell() == [
        ("b", "stale", "b: stale (input threshold changed)"),
        ("c", "stale", "c: stale (upstream b reruns first)"),
    ]
    assert page.after_cell() == [], "a line changes once"
    assert page.run() == [
        ("b", "running", "b: running"),
        ("b", "done", "b: ran (input threshold changed)"),
        ("c", "running", "c: running"),
        ("c", "done", "c: ran (upstream b changed)"),
    ]
    assert page.after_cell() == []

    page.nb.cell("threshold = 3")  # back to values the cache holds
    reason = "its value for these inputs is in the cache"
    assert page.after_cell() == [("b", "stale", f"b: stale ({reason})"), ("c", "stale", f"c: stale ({reason})")]
    assert page.run() == [("b", "cached", "b: cached"), ("c", "cached", "c: cached")]
    assert runs(page.nb.log) == ["a", "b", "c", "b", "c"], "lines never run anything"


def test_a_failure_stays_until_the_task_is_up_to_date_again(tmp_path: Path) -> None:
    page = Page(tmp_path)
    page.nb.task(C_FAILS)
    assert page.after_cell() == [("c", "stale", "c: stale (code changed)")]
    assert page.run() == [("c", "running", "c: running"), ("c", "failed", "c: failed (ZeroDivisionError)")]
    assert page.after_cell() == [], "the plan cannot tell more than the failure"

    page.nb.task(C)  # the edit undone: the value in memory is current again
    assert page.after_cell() == [("c", "done", "c: ran (new)")]
    assert page.run() == [], "a value already in memory changes no line"
    assert runs(page.nb.log) == ["a", "b", "c", "c"]


def test_a_cell_that_runs_again_has_no_line_until_it_shows_one(tmp_path: Path) -> None:
    page = Page(tmp_path)
    page.lines.forget("b")
    page.nb.cell("threshold = 4")
    assert page.after_cell() == [("c", "stale", "c: stale (upstream b reruns first)")]
    assert [change[0] for change in page.run()] == ["c", "c"]


def test_a_never_run_task_is_pending_and_its_line_says_why(tmp_path: Path) -> None:
    page = Page(tmp_path)
    page.nb.task("def d(c):\n    note('d')\n    return c\n")
    page.lines.shown("d", "pending", "d: defined (not run) · stale: d", {"task": "d"}, "new")
    assert page.after_cell() == [], "pending for the reason it was shown with"
    page.nb.cell("threshold = 4")
    assert ("d", "pending", "d: pending (upstream c reruns first)") in page.after_cell()
    assert page.run()[-2:] == [("d", "running", "d: running"), ("d", "done", "d: ran (new)")]
