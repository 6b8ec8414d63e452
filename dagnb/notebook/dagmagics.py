"""IPython glue: ``%%task`` and ``%dag``. No logic lives here.

Each handler parses its arguments, calls the engine, binds values into the
user namespace and displays the result; errors reach the cell as
:mod:`.failures` says. The handlers come by role: the ``%%task`` cell
(:mod:`.task_cell`), the ``%dag`` subcommands by group (:mod:`.dag_run`,
:mod:`.dag_history`, :mod:`.dag_settings`, :mod:`.dag_views`, parsed by
:mod:`.dag_parser`), and what they share (:mod:`.running`). Registering them
on a shell is :mod:`.magics`.

Invariants:

* The magics (``task``, ``dag``) are methods of this class itself: IPython's
  ``@magics_class`` collects the decorated methods defined since its last
  use, so they are never decorated in another module.
* ``%dag COMMAND`` calls ``_cmd_COMMAND``, one method per subcommand.
"""

from __future__ import annotations

import shlex
from contextlib import AbstractContextManager
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand

from dagnb import session
from dagnb.notebook.dag_history import HistoryCommands
from dagnb.notebook.dag_parser import dag_parser
from dagnb.notebook.dag_run import RunCommands
from dagnb.notebook.dag_settings import SettingsCommands
from dagnb.notebook.dag_views import ViewCommands
from dagnb.notebook.displays import capture
from dagnb.notebook.failures import task_failures, usage_errors
from dagnb.notebook.follow import Follower
from dagnb.notebook.kernel_notebook import KernelNotebook
from dagnb.notebook.outputs import replay
from dagnb.notebook.task_cell import TaskCell
from dagnb.options import parse_task_line, task_line_parser
from dagnb.run.capture import OutputLog
from dagnb.status import WAITING

__all__ = ["DagMagics"]


@magics_class
class DagMagics(TaskCell, RunCommands, HistoryCommands, SettingsCommands, ViewCommands, Magics):
    """``%%task`` and ``%dag``: parse, call the core, bind, display."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.graph = session.current(namespace=shell.user_ns)
        self.graph.namespace = shell.user_ns
        self.graph.record_later = True  # a cell of cache hits does not wait for its bookkeeping to be written
        self.graph.capture = self._capture
        self.graph.replay = replay
        self.cell_id: str | None = None
        self.follower = Follower(self.graph, shell)
        self.notebook = KernelNotebook(self.graph, shell)  # whose heads and history: this notebook's
        self._dag_parser = dag_parser()

    def pre_run_cell(self, info: Any) -> None:
        self.notebook.settle()
        self.cell_id = getattr(info, "cell_id", None)
        source = getattr(info, "raw_cell", "") or ""
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        self.graph.origin = self._cell_label(first[:60])
        self.follower.before_cell(source)

    def _capture(self) -> AbstractContextManager[OutputLog]:
        """Tee streams and displays into a log; turn new matplotlib figures into displays."""
        return capture(self.shell)

    # ------------------------------------------------------------- %%task

    @no_var_expand  # `--save "out/{name}.csv"`: `{name}` is the task, never a notebook variable `name`
    @cell_magic
    def task(self, line: str, cell: str) -> Any:
        """Define a task from the one function in this cell and bring it up to date."""
        with usage_errors():
            args = parse_task_line(line)
        if args.help:
            print(task_line_parser().format_help())
            return
        with usage_errors(), task_failures(self.shell):
            name, notes = self._define(cell, args)
            if args.no_run:
                status, why = self.graph.status_now(name)
                stale = name if status in WAITING else "none"
                text = f"{name}: defined (not run){notes} · stale: {stale}"
                self.follower.show_line(name, status, text, {"dagnb": {"task": name}}, why)
                return None
        return self._running(lambda run: self._bring_up_to_date(name, notes, run), own=name)

    # --------------------------------------------------------------- %dag

    @line_magic
    def dag(self, line: str) -> Any:
        """Run, plan and explain the task graph; ``%dag --help`` lists the commands."""
        args = self._dag_parser.parse_args(shlex.split(line))
        command = args.command or "show"
        if args.help:
            parser = self._dag_parser.subcommands[command] if args.command else self._dag_parser  # type: ignore[attr-defined]
            print(parser.format_help())
            return None
        with usage_errors(), task_failures(self.shell):
            return getattr(self, f"_cmd_{command}")(args)
