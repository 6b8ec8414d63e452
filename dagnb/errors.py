"""Errors and warnings a dagnb user can meet.

Every error carries the fields a view needs (``task``, ``param``,
``candidates``, ``cycle``) and builds its one-paragraph message from them:
what is wrong, what was found, how to fix it. Nothing here imports IPython.

The exceptions live here; the warning categories in
:mod:`dagnb.warning_kinds` and the sentences both are built from in
:mod:`dagnb.messages`. Every name of ``__all__`` imports from this module,
as it always has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagnb.messages import all_of, close_matches, interrupt_summary, suggest, untracked_message
from dagnb.warning_kinds import (
    DagnbCacheWarning,
    DagnbSaveWarning,
    LocalModuleChangedWarning,
    UnfingerprintableWarning,
    UnpicklableOutputWarning,
    UntrackedWarning,
    ValueChangedWarning,
    warn_at,
)

__all__ = [
    "CommandError",
    "CycleError",
    "DagnbCacheWarning",
    "DagnbSaveWarning",
    "DagnbError",
    "DuplicateTask",
    "InputDamaged",
    "InputMutated",
    "InputUnreadable",
    "IteratorReused",
    "LocalModuleChangedWarning",
    "RunInterrupted",
    "SavePathTaken",
    "SaveRefused",
    "TaskDefinitionError",
    "TaskFailed",
    "TaskFailedCondition",
    "TaskInterrupted",
    "TaskNotRun",
    "TaskTimedOut",
    "UsedBeforeDefinition",
    "UnfingerprintableWarning",
    "Unfingerprintable",
    "UnknownOption",
    "UnknownTask",
    "UnpicklableOutputWarning",
    "UnresolvedParameter",
    "UntrackedWarning",
    "ValueChangedWarning",
    "close_matches",
    "interrupt_summary",
    "untracked_message",
    "warn_at",
]


class DagnbError(Exception):
    """Base class of every error dagnb raises on purpose."""


class CommandError(DagnbError):
    """A magic or command given arguments it does not take."""


class UnknownOption(CommandError, TypeError):
    """A task defined with an option it does not have (``%%task --fast``, ``@task(fast=True)``).

    A ``TypeError`` too, as Python raises for an unexpected keyword argument.
    """

    def __init__(self, where: str, unknown: Sequence[str], taken: Sequence[str], hint: str = "") -> None:
        self.where, self.unknown, self.taken = where, list(unknown), list(taken)
        message = f"`{where}` has no option {', '.join(f'`{o}`' for o in unknown)}; it takes {all_of(taken)}."
        super().__init__(f"{message} {hint}" if hint else message)


class TaskDefinitionError(DagnbError):
    """A task cell or function that cannot define a task."""

    def __init__(self, problem: str, fix: str, task: str | None = None) -> None:
        self.task, self.problem, self.fix = task, problem, fix
        where = f"Task `{task}`: " if task else ""
        super().__init__(f"{where}{problem} {fix}")


class UnresolvedParameter(DagnbError):
    """A parameter that is neither a task, a default, nor a notebook variable."""

    def __init__(self, task: str, param: str, candidates: Sequence[str] = ()) -> None:
        self.task, self.param, self.candidates = task, param, list(candidates)
        super().__init__(
            f"Task `{task}` has a parameter `{param}` that is neither a task, a default, "
            f"nor a notebook variable.{suggest(self.candidates)} Define it in a cell above, "
            f"give it a default, or add a `%%task def {param}(...)`."
        )


class CycleError(DagnbError):
    """Tasks that depend on each other in a loop."""

    def __init__(self, cycle: Sequence[str], hidden: Sequence[tuple[str, str]] = ()) -> None:
        self.cycle = list(cycle)
        self.task = self.cycle[0]
        self.hidden = list(hidden)  # (reader, task) edges of the loop that are reads of a global, not parameters
        loop = " -> ".join([*self.cycle, self.cycle[0]])
        if len(self.cycle) == 1:
            msg = (
                f"Task `{self.task}` depends on itself: its parameter `{self.task}` names "
                f"the task. Rename the parameter, or rename the function."
            )
        elif self.hidden:
            reads = "; ".join(
                f"`{reader}` reads the variable `{read}` of task `{read}`" for reader, read in self.hidden
            )
            msg = (
                f"Tasks form a cycle: {loop} ({reads}). A task cannot depend on its own output; "
                f"rename a parameter, or stop reading that variable, to break the loop."
            )
        else:
            msg = (
                f"Tasks form a cycle: {loop}. A task cannot depend on its own output; "
                f"rename a parameter to break the loop."
            )
        super().__init__(msg)


class DuplicateTask(DagnbError):
    """Two cells that define a task of the same name."""

    def __init__(self, task: str) -> None:
        self.task = task
        super().__init__(
            f"Task `{task}` is already defined in another cell. Rename one of the two "
            f"functions, or run `%dag drop {task}` to remove the other definition first."
        )


class UsedBeforeDefinition(DagnbError):
    """A task read above the cell that defines it (``dagnb check``)."""

    def __init__(self, task: str, reader: str, defined_in: int) -> None:
        self.task, self.reader, self.defined_in = task, reader, defined_in
        super().__init__(
            f"{reader} uses task `{task}` before cell {defined_in} defines it; run top to bottom "
            f"in a new kernel, the name does not exist yet. Move the `%%task def {task}` cell above, "
            f"or this code below it."
        )


class UnknownTask(DagnbError):
    """A command named a task that does not exist."""

    def __init__(self, task: str, candidates: Sequence[str] = ()) -> None:
        self.task, self.candidates = task, list(candidates)
        super().__init__(
            f"There is no task `{task}`.{suggest(self.candidates)} `%dag plan` lists the tasks defined so far."
        )


class TaskFailed(DagnbError):
    """A task raised; ``__cause__`` is the user's exception."""

    def __init__(self, task: str, error: BaseException) -> None:
        self.task, self.error = task, error
        if isinstance(error, DagnbError):  # dagnb's own finding (a mutated input, a timeout) says it all
            super().__init__(str(error))
            return
        kind, said = type(error).__name__, str(error)
        end = "" if said.endswith((".", "!", "?")) else "."  # "workers." must not read "workers.. Fix"
        super().__init__(
            f"Task `{task}` raised {kind}: {said}{end} Fix the task (or its inputs) and "
            f"run it again; the values of other tasks are kept."
        )


class TaskNotRun(DagnbError):
    """A task that could not start, for a reason of its own (its inputs, its condition); other tasks run on."""


class InputUnreadable(TaskNotRun):
    """An input file (``dagnb.file``) that cannot be read to fingerprint it."""

    def __init__(self, path: str, error: OSError, task: str | None = None) -> None:
        self.path, self.error, self.task = path, error, task
        who = f"Task `{task}` did not run: its input file" if task else "The input file"
        reason = error.strerror or str(error)
        super().__init__(
            f"{who} `{path}` cannot be read ({type(error).__name__}: {reason}). Fix the file's permissions or "
            f"the path given to `dagnb.file(...)`; the other tasks are not affected."
        )


class IteratorReused(TaskNotRun):
    """A second task reading an iterator (a generator) that another task already used up."""

    def __init__(self, task: str, param: str, first: str) -> None:
        self.task, self.param, self.first = task, param, first
        super().__init__(
            f"Task `{task}` did not run: its input `{param}` is an iterator (a generator, a `map`) that task "
            f"`{first}` already read, so it is used up and `{task}` would see nothing. Make task `{param}` "
            f"return a list (`return list(...)`), so that every task reading it gets all of it."
        )


class InputMutated(DagnbError):
    """A task changed one of its inputs in place (found by ``%dag config --check-mutation``)."""

    def __init__(self, task: str, params: Sequence[str]) -> None:
        self.task, self.params = task, list(params)
        names = ", ".join(f"`{p}`" for p in self.params)
        first = self.params[0]
        super().__init__(
            f"Task `{task}` changed its input {names} in place (for example `{first}.dropna(inplace=True)` "
            f"or `{first}.append(...)`), which silently changes it for every other task too. Work on a copy "
            f"(`{first} = {first}.copy()`) or build a new value; dagnb reloads `{first}` from the cache on "
            f"the next run."
        )


class InputDamaged(TaskNotRun):
    """A task whose input was changed in place, with no copy to restore."""

    def __init__(self, task: str, param: str, by: str = "another task in this run") -> None:
        self.task, self.param, self.by = task, param, by
        super().__init__(
            f"Task `{task}` did not run: its input `{param}` was changed in place by {by}, "
            f"and there is no intact copy to put back. Fix what changed it; "
            f"`{param}` is recomputed on the next run."
        )


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a run; ``report`` is the run's report (every finished result is kept).

    A KeyboardInterrupt, so whatever waits for the run stops as for any
    Ctrl-C. ``resume`` says how to run the rest (the magics name their own
    command); the message is built when shown, so it names it.
    """

    def __init__(self, report: Any = None, resume: str = "Run it again") -> None:
        super().__init__()
        self.report, self.resume = report, resume

    def _summary(self) -> str:
        if self.report is None:
            return ""
        return interrupt_summary(self.report.statuses, self.report.reasons, self.resume)

    def __str__(self) -> str:
        return f"The run was interrupted. {self._summary()}".rstrip()

    def paragraph(self) -> str:
        """The one paragraph a notebook shows instead of a traceback."""
        return str(self)

    def _render_traceback_(self) -> list[str]:
        """IPython shows this paragraph instead of a traceback from inside dagnb."""
        return [f"{type(self).__name__}: {self.paragraph()}"]


class TaskInterrupted(RunInterrupted):
    """Ctrl-C arrived while a task ran, and the task caught it and returned (its value may be partial).

    A KeyboardInterrupt, so the run stops as it does for any Ctrl-C; ``report``
    is the run's report.
    """

    def __init__(self, task: str, report: Any = None, resume: str = "Run it again") -> None:
        super().__init__(report, resume)
        self.task = task

    def __str__(self) -> str:
        task = self.task
        return (
            f"Task `{task}` was interrupted: it caught the KeyboardInterrupt and returned early, so its value "
            f"may be partial. The value is bound for you to look at, but not cached; its status is `interrupted`, "
            f"tasks after it did not start, and the next run runs `{task}` again."
        )

    def paragraph(self) -> str:
        return f"{self} {self._summary()}".rstrip()


class SaveRefused(DagnbError):
    """A ``--save`` copy that would not equal the value (or would use it up), so it is not written."""

    def __init__(self, task: str, path: str, reason: str, fix: str) -> None:
        self.task, self.path, self.reason, self.fix = task, path, reason, fix
        super().__init__(f"The value of task `{task}` was not saved to `{path}`: {reason}. {fix}")


class SavePathTaken(DagnbError):
    """Two tasks whose ``--save`` names the same file."""

    def __init__(self, task: str, path: str, other: str) -> None:
        self.task, self.path, self.other = task, path, other
        super().__init__(
            f"Task `{task}` saves to `{path}`, which task `{other}` also writes: each run would overwrite the "
            f"other's file. Give one of them another `--save` path (`{{name}}` in it stands for the task's name)."
        )


class TaskFailedCondition(TaskNotRun):
    """A ``--when`` condition that raised when evaluated."""

    def __init__(self, task: str, expr: str, error: BaseException) -> None:
        self.task, self.expr, self.error = task, expr, error
        super().__init__(
            f"The condition `--when {expr}` of task `{task}` raised {type(error).__name__}: {error}. "
            f"Fix the condition (it sees the task's inputs); the task did not run."
        )


class TaskTimedOut(DagnbError):
    """A task that ran past its ``timeout``."""

    def __init__(self, task: str, seconds: float) -> None:
        self.task, self.seconds = task, seconds
        super().__init__(
            f"Task `{task}` did not finish within its timeout of {seconds:g} s. Raise the timeout "
            f"(`%%task --timeout SECONDS`, `@task(timeout=...)`) or make the task faster; "
            f"its dependents were skipped."
        )


class Unfingerprintable(DagnbError):
    """A value dagnb cannot turn into a stable fingerprint."""

    def __init__(self, type_name: str, reason: str) -> None:
        self.type_name, self.reason = type_name, reason
        super().__init__(
            f"A value of type `{type_name}` cannot be fingerprinted ({reason}). Register a "
            f"fingerprint with `dagnb.register_fingerprint({type_name.rsplit('.', 1)[-1]}, fn)`."
        )
