"""IPython glue: the ``%dag`` command line, its subcommands and their options.

Each subcommand here is handled by a ``_cmd_<name>`` method of
:class:`dagnb.notebook.dagmagics.DagMagics` (from the module of its group:
:mod:`.dag_run`, :mod:`.dag_history`, :mod:`.dag_settings`, :mod:`.dag_views`).

Invariants:

* Parsing never exits the kernel: argparse's errors become a
  :class:`CommandError` shown as one paragraph, and ``-h``/``--help`` is an
  option the handler answers, because argparse's own help calls ``sys.exit``.
* The order of the subcommands and of their options is the order ``%dag
  --help`` lists them in.
"""

from __future__ import annotations

import argparse

from dagnb.errors import CommandError
from dagnb.notebook.failures import cell_error

__all__ = ["dag_parser"]


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`CommandError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise cell_error(CommandError(f"{self.prog}: {message}. `{self.prog} --help` lists the options."))

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise cell_error(CommandError(message or f"{self.prog}: invalid arguments"))


def dag_parser() -> argparse.ArgumentParser:
    """The ``%dag`` parser; ``parser.subcommands`` maps each subcommand to its own parser (for its help)."""
    parser = _Parser(prog="%dag", add_help=False, description="Inspect and run the task graph.")
    parser.add_argument("-h", "--help", action="store_true", help="show this help")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    commands = {
        "show": "the live view: graph, plan, costs and trace (default)",
        "run": "bring targets (default: all) up to date, running only stale tasks",
        "plan": "dry run: what would run, what is cached, and why",
        "why": "which part of a task's key changed",
        "drop": "remove a task and its value",
        "cache": "inspect or clear the disk cache, or move it",
        "mode": "lazy (list stale downstream tasks) or auto (rerun them at once)",
        "config": "settings: --check-mutation fails tasks that change their inputs in place; --no-verify-inputs; "
        "--no-follow",
        "history": "recent runs of this cache; --diff A B: which tasks changed between two runs",
        "trace": "the runs since the kernel started on one timeline (--run N: one run's Gantt chart)",
        "costs": "per-task time, CPU, memory, bytes, cache hits and time saved",
    }
    subs = {name: sub.add_parser(name, help=text, description=text, add_help=False) for name, text in commands.items()}
    for p in subs.values():
        p.add_argument("-h", "--help", action="store_true", help="show this help")
    for name in ("run", "plan"):
        subs[name].add_argument("targets", nargs="*", metavar="TASK")
        subs[name].add_argument(
            "--force", action="append", default=[], metavar="TASK", help="rerun TASK even if cached"
        )
    subs["run"].add_argument(
        "--keep-going", action="store_true", help="run every branch that does not depend on a failure"
    )
    subs["run"].add_argument("--jobs", type=int, default=None, metavar="N", help="tasks to run at once")
    subs["run"].add_argument(
        "--backend", default=None, metavar="B", help="inline (default), threads, processes, dask, or dask://HOST:PORT"
    )
    subs["show"].add_argument("--static", action="store_true", help="render HTML only, no widget")
    subs["trace"].add_argument(
        "--run", type=int, default=None, metavar="N", help="show run N alone (the view's menu lists the runs)"
    )
    subs["run"].add_argument("--as-of", type=int, metavar="RUN", help="restore the values run RUN had, from the cache")
    subs["history"].add_argument("limit", nargs="?", type=int, default=10, metavar="N", help="how many runs (10)")
    subs["history"].add_argument("--diff", nargs=2, type=int, metavar=("A", "B"), help="compare run A with run B")
    subs["why"].add_argument("task", metavar="TASK")
    subs["drop"].add_argument("task", metavar="TASK")
    subs["cache"].add_argument("action", nargs="?", default="info", choices=["info", "verify", "clear", "prune"])
    subs["cache"].add_argument("task", nargs="?", metavar="TASK", help="with clear: only this task's entries")
    subs["cache"].add_argument("--dir", metavar="PATH", help="use the cache at PATH from now on")
    subs["cache"].add_argument(
        "--max-size", metavar="SIZE", help="with prune: the size to bring the cache under (500MB, 2GB)"
    )
    subs["mode"].add_argument("mode", nargs="?", choices=["lazy", "auto"])
    config = subs["config"]
    _on_off(
        config,
        "check-mutation",
        "after each task, check that it left its inputs unchanged (slower)",
        "stop checking",
    )
    _on_off(
        config,
        "verify-inputs",
        "before a task reads a value, check it was not changed in place (the default)",
        "trust values not to change in place (for very large object graphs)",
    )
    _on_off(
        config,
        "follow",
        "after each cell, re-plan once and update status lines and views (the default)",
        "update them only when tasks run (for notebook variables too large to fingerprint after every cell)",
    )
    parser.subcommands = subs  # type: ignore[attr-defined]
    return parser


def _on_off(parser: argparse.ArgumentParser, flag: str, on_help: str, off_help: str) -> None:
    """``--flag`` and ``--no-flag`` setting one setting; ``None`` when neither is given (leave it as it is)."""
    dest = flag.replace("-", "_")
    parser.add_argument(f"--{flag}", dest=dest, action="store_true", default=None, help=on_help)
    parser.add_argument(f"--no-{flag}", dest=dest, action="store_false", help=off_help)
