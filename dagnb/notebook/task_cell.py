"""IPython glue: the body of a ``%%task`` cell, defined and brought up to date.

The cell's one function becomes a task (:func:`dagnb.graph.spec_from_function`,
``Graph.define``); the cell then brings it up to date as the engine decides
(``Graph.run_defined``: in auto mode, its downstream tasks too) and shows one
status line (:func:`dagnb.report.cell_line`), which the follower keeps true
afterwards. With ``--no-run`` the line says what the task would do
(``Graph.status_now``).

Invariants:

* The cell is compiled by IPython's compiler, so a traceback shows its lines.
* Imports in the cell become notebook variables, as in a plain cell.
* A definition that does not check leaves the last good one in place
  (``Graph.define`` decides); the cell's line is shown anew either way.
"""

from __future__ import annotations

import ast
from typing import Any

from dagnb.graph import parse_task_module, spec_from_function
from dagnb.notebook.outputs import replay
from dagnb.notebook.running import CellGlue, Run
from dagnb.options import TaskLine
from dagnb.report import cell_line, run_metadata

__all__ = ["TaskCell"]


class TaskCell(CellGlue):
    """``%%task``: define the cell's task, run it, show its line.

    Responsibilities: compile the cell, define its task (noting a rename),
    bring it up to date, and say what it is now, with or without a run.
    """

    cell_id: str | None

    def _cell_label(self, what: str) -> str:
        """``[7] %dag run``: the cell that runs now, by its execution count, as the trace names its runs."""
        return f"[{getattr(self.shell, 'execution_count', '?')}] {what}".rstrip()

    def _define(self, cell: str, args: TaskLine) -> tuple[str, str]:
        tree, node = parse_task_module(cell, line_offset=1)  # the `%%task` line is line 1 of the cell
        name, cell_id = node.name, self.cell_id
        self.follower.forget(name)  # this cell shows its line anew
        self.graph.origin = self._cell_label(f"%%task {name}")
        func = self._compile(cell, tree, node)
        # the digest takes the docstrings out of `tree`: after the compile, which keeps them; the untracked-reads
        # check below reads `node` without them (it looks at names and calls, never at strings)
        spec = spec_from_function(func, source=cell, cell_id=cell_id, options=args.options, parsed=tree)
        renamed = self.graph.define(spec)  # the last good definition stays if this one does not check
        self.graph.say_untracked(name, node, line_offset=1)  # the `%%task` line is line 1 of the cell
        if renamed is None:
            return name, ""
        self.follower.forget(renamed)
        return name, f" · replaces `{renamed}`"

    def _compile(self, cell: str, tree: ast.Module, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Any:
        # IPython's compiler registers the source so tracebacks can show it.
        filename = self.shell.compile.cache(cell, self.shell.execution_count)
        code = compile(tree, filename, "exec")
        scratch: dict[str, Any] = {}
        exec(code, self.shell.user_ns, scratch)
        for key, value in scratch.items():  # imports in the cell become notebook globals
            if key != node.name:
                self.shell.user_ns[key] = value
        return scratch[node.name]

    async def _bring_up_to_date(self, name: str, notes: str, run: Run) -> None:
        """Run the cell's task (and, in auto mode, its downstream tasks); show one line."""
        report = await self.graph.run_defined(name, run)
        self._replay_loaded(report, but=name)
        result = self.graph.results.get(name)  # none when skipped by its condition
        if report.statuses[name] == "cached" and result is not None:
            replay(result.captured)
        text = cell_line(report, name, self.graph.tasks.downstream(name), notes)
        self.follower.show_line(name, report.statuses[name], text, run_metadata(report, name))
