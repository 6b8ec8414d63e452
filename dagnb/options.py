"""A task's options, declared once: the decorator, the ``%%task`` line and ``dagnb check`` derive from here.

Each option is a field of :class:`TaskOptions` whose metadata (:class:`Option`)
says how the ``%%task`` line spells it and what ``%%task --help`` says of it.
From those fields come the keywords ``@graph.task(...)`` and ``@dagnb.task(...)``
accept, the argument parser of the ``%%task`` line, the list of options an
unknown one is told, and the checks a definition must pass. So a new option
is one field here (and its use where tasks run), and ``dagnb check`` never
falls behind the kernel: it parses the line with the same parser.

Invariants:
    * :func:`parse_task_line` is the one reader of a ``%%task`` line; a
      problem with it raises :class:`~dagnb.errors.CommandError` whose message
      the magic shows and ``dagnb check`` reports, word for word;
    * :meth:`TaskOptions.check` is the one place option values are validated
      against a task (its name and parameters), for every way of defining it.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from dagnb.errors import CommandError, TaskDefinitionError, UnknownOption

__all__ = ["CELL_FLAGS", "Option", "TaskLine", "TaskOptions", "parse_task_line", "task_line_parser"]

PROG = "%%task"


@dataclass(frozen=True)
class Option:
    """How one option is written on the ``%%task`` line: ``--NAME METAVAR`` (a switch has no metavar)."""

    help: str
    metavar: str | None = None  # None: a switch, true when present
    parse: Callable[[str], Any] = str  # turns the word on the line into the value

    def flag(self, name: str) -> str:
        return f"--{name}"

    def spelled(self, name: str) -> str:
        """``--retries N``: the option as a list of options names it."""
        return self.flag(name) + (f" {self.metavar}" if self.metavar else "")


def _option(default: Any, text: str, metavar: str | None = None, parse: Callable[[str], Any] = str) -> Any:
    """A field of :class:`TaskOptions`: its default, and how the line writes it (``text``: its help)."""
    return field(default=default, metadata={"option": Option(text, metavar, parse)})


@dataclass(frozen=True, kw_only=True)
class TaskOptions:
    """The options of a task, each with its default.

    The order of the fields is the order in which messages and help list them.
    """

    volatile: bool = _option(False, "always rerun the task, never use its cache")
    retries: int = _option(0, "run it again up to N times if it fails", "N", int)
    timeout: float | None = _option(None, "give up after SECONDS (status timed-out)", "SECONDS", float)
    save: str | None = _option(  # a path pattern the value is also written to after each run
        None, "also write the value to PATH after each run ({name}: the task; .npy .parquet .csv .json .pkl)", "PATH"
    )
    when: str | None = _option(  # run only when this expression over the inputs is true
        None, "run only when EXPR (over the task's inputs) is true; else skipped (condition)", "EXPR"
    )
    map: str | None = _option(  # call once per element of this input, each element cached on its own
        None, "call the function once per element of input PARAM, caching each element's result", "PARAM"
    )

    @classmethod
    def declared(cls) -> list[tuple[str, Option]]:
        """Every option, by name, in the order of the fields."""
        return [(f.name, f.metadata["option"]) for f in fields(cls) if "option" in f.metadata]

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any], where: str = "@task") -> TaskOptions:
        """The options given as keywords (``@graph.task(retries=2)``); an unknown keyword is refused by name."""
        names = [name for name, _ in cls.declared()]
        unknown = [k for k in keywords if k not in names]
        if unknown:
            raise UnknownOption(where, unknown, [f"{name}=" for name in names])
        return cls(**keywords)

    def values(self) -> dict[str, Any]:
        """``{name: value}`` of every option (the keywords that would make these options)."""
        return {name: getattr(self, name) for name, _ in self.declared()}

    def check(self, task: str, params: Sequence[str]) -> None:
        """Refuse a value the task cannot run with, at definition (not after a long run).

        Raises:
            TaskDefinitionError: naming the task, the option and the fix.
        """
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise TaskDefinitionError(f"`retries` is {self.retries!r}.", "Give a whole number, 0 or more.", task)
        timeout = self.timeout
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise TaskDefinitionError(f"`timeout` is {timeout!r}.", "Give a number of seconds above 0.", task)
        if self.save is not None:
            from dagnb.run.save import check_save_path

            check_save_path(task, self.save)
        if self.when is not None:
            from dagnb.run.condition import check_condition

            check_condition(task, params, self.when)
        if self.map is not None and self.map not in params:
            fix = (
                f"Map over one of its inputs, e.g. `--map {params[0]}`." if params else "Give it the input to map over."
            )
            raise TaskDefinitionError(
                f"`--map {self.map}` names no parameter of the task (its parameters: {', '.join(params) or 'none'}).",
                fix,
                task,
            )


#: Options of the cell, not of the task: what the ``%%task`` line takes besides :class:`TaskOptions`.
CELL_FLAGS: dict[str, str] = {"no-run": "define (or redefine) the task without running it"}


@dataclass(frozen=True)
class TaskLine:
    """What a ``%%task`` line asks for."""

    options: TaskOptions
    no_run: bool = False
    help: bool = False


class _LineParser(argparse.ArgumentParser):
    """argparse that raises :class:`CommandError` instead of exiting (the magic shows it; check reports it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CommandError(f"{self.prog}: {message}. `{self.prog} --help` lists the options.")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise CommandError(message or f"{self.prog}: invalid arguments")


def task_line_parser() -> argparse.ArgumentParser:
    """The parser of the ``%%task`` line: ``-h``, the cell's flags, then every :class:`TaskOptions` field."""
    parser = _LineParser(prog=PROG, add_help=False, description="Define a task from the function in this cell.")
    parser.add_argument("-h", "--help", action="store_true", help="show this help")
    for name, text in CELL_FLAGS.items():
        parser.add_argument(f"--{name}", action="store_true", help=text)
    for name, option in TaskOptions.declared():
        if option.metavar is None:
            parser.add_argument(option.flag(name), action="store_true", help=option.help)
        else:
            parser.add_argument(
                option.flag(name), type=option.parse, default=None, metavar=option.metavar, help=option.help
            )
    return parser


def taken() -> list[str]:
    """Every option of the ``%%task`` line as a message lists them: ``--no-run``, ``--retries N`` ..."""
    return [f"--{name}" for name in CELL_FLAGS] + [option.spelled(name) for name, option in TaskOptions.declared()]


_PARSER: argparse.ArgumentParser | None = None  # built once: a notebook of 1,000 task cells reads 1,000 lines
_PARSED: dict[str, TaskLine] = {}  # line -> what it asks (frozen): most cells repeat a few lines, the empty one first


def parse_task_line(line: str) -> TaskLine:
    """The options of a ``%%task`` line (without the ``%%task`` itself).

    Raises:
        CommandError: the line cannot be split into words, has an option
            ``%%task`` does not take, or a value of the wrong kind.
    """
    parsed = _PARSED.get(line)
    if parsed is None:
        parsed = _parse_task_line(line)
        if len(_PARSED) < 256:
            _PARSED[line] = parsed
    return parsed


def _parse_task_line(line: str) -> TaskLine:
    global _PARSER
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise CommandError(f"The `{PROG}` line cannot be read ({exc}).") from None
    if _PARSER is None:
        _PARSER = task_line_parser()
    args, extra = _PARSER.parse_known_args(words)
    if extra:
        raise UnknownOption(PROG, extra, taken(), f"`{PROG} --help` says what each does.")
    chosen = {name: getattr(args, name) for name, _ in TaskOptions.declared() if getattr(args, name) is not None}
    return TaskLine(TaskOptions(**chosen), no_run=args.no_run, help=args.help)
