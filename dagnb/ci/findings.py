"""What ``dagnb check`` finds: the tasks as written, and the problems and notes at their cells.

Positions are 1-based over all cells (markdown included), as a notebook
shows them, and lines are 1-based within the cell's code. A
:class:`CheckResult` is filled by :mod:`dagnb.ci.check_cells` (cell by cell)
and :mod:`dagnb.ci.check` (across cells); :mod:`dagnb.ci.static_plan` reads it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["CheckResult", "Problem", "StaticTask"]


@dataclass(frozen=True)
class Problem:
    """One finding, at a cell (and line) of a notebook."""

    cell: int
    message: str
    line: int | None = None
    task: str | None = None

    def render(self, notebook: str) -> str:
        where = notebook + (f": cell {self.cell}" if self.cell else "") + (f", line {self.line}" if self.line else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class StaticTask:
    """A task as written: its cell, parameters and which of them have defaults."""

    name: str
    cell: int
    params: tuple[str, ...]
    defaults: frozenset[str]
    source: str = field(repr=False)
    node: ast.FunctionDef | ast.AsyncFunctionDef = field(repr=False, compare=False)
    volatile: bool = False
    reads: frozenset[str] = frozenset()  # global names its body reads (another task's, when hidden)


@dataclass
class CheckResult:
    """The tasks found, their upstream edges, and the problems."""

    notebook: str
    cells: int = 0
    tasks: dict[str, StaticTask] = field(default_factory=dict)
    upstream: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # told, but no problem: what a task's key does not cover
    saved_files: dict[str, str] = field(default_factory=dict)  # file a task writes with --save -> the task

    @property
    def ok(self) -> bool:
        return not self.problems

    def render_text(self) -> str:
        found = sorted([*self.problems, *self.notes], key=lambda p: (p.cell, p.line or 0))
        lines = [p.render(self.notebook) for p in found]
        if self.ok:
            tasks = f"{len(self.tasks)} task" + ("" if len(self.tasks) == 1 else "s")
            cells = f"{self.cells} cell" + ("" if self.cells == 1 else "s")
            saved = f"; writes {', '.join(sorted(self.saved_files))}" if self.saved_files else ""
            return "\n".join([*lines, f"{self.notebook}: ok ({tasks} in {cells}{saved})"])
        lines.append(f"{self.notebook}: {len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}")
        return "\n".join(lines)
