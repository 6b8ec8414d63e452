"""Errors and warnings a dagnb user can meet.

Every error carries the fields a view needs (``task``, ``param``,
``candidates``, ``cycle``) and builds its one-paragraph message from them:
what is wrong, what was found, how to fix it. Nothing here imports IPython.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

from dagnb.status import RAISED, STOPPED, WITH_VALUE, word

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
    "untracked_message",
    "warn_at",
]


def close_matches(word: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names close to ``word``, best first."""
    return difflib.get_close_matches(word, sorted(set(names)), n=n, cutoff=0.6)


def _suggest(candidates: Sequence[str]) -> str:
    if not candidates:
        return ""
    quoted = ", ".join(f"`{c}`" for c in candidates)
    return f" Did you mean {quoted}?"


class DagnbError(Exception):
    """Base class of every error dagnb raises on purpose."""


class CommandError(DagnbError):
    """A magic or command given arguments it does not take."""


def _all_of(names: Sequence[str]) -> str:
    """```a`, `b` and `c```: every one of ``names``, quoted."""
    quoted = [f"`{n}`" for n in names]
    return ", ".join(quoted[:-1]) + f" and {quoted[-1]}" if len(quoted) > 1 else "".join(quoted)


class UnknownOption(CommandError, TypeError):
    """A task defined with an option it does not have (``%%task --fast``, ``@task(fast=True)``).

    A ``TypeError`` too, as Python raises for an unexpected keyword argument.
    """

    def __init__(self, where: str, unknown: Sequence[str], taken: Sequence[str], hint: str = "") -> None:
        self.where, self.unknown, self.taken = where, list(unknown), list(taken)
        message = f"`{where}` has no option {', '.join(f'`{o}`' for o in unknown)}; it takes {_all_of(taken)}."
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
            f"nor a notebook variable.{_suggest(self.candidates)} Define it in a cell above, "
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
            f"There is no task `{task}`.{_suggest(self.candidates)} `%dag plan` lists the tasks defined so far."
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


_KEPT = {**{s: word(s) for s in WITH_VALUE}, "interrupted": "interrupted: its value is partial, in memory only"}
_MOST_NAMED = 8  # a summary names this many tasks of a kind, then counts the rest


def _named(items: list[str]) -> str:
    """```a` (ran), `b` (cached) and 3 more``."""
    shown = items[:_MOST_NAMED]
    more = f" and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    if len(shown) > 1 and not more:
        return ", ".join(shown[:-1]) + f" and {shown[-1]}"
    return ", ".join(shown) + more


def interrupt_summary(statuses: dict[str, str], reasons: dict[str, str], resume: str) -> str:
    """One paragraph after Ctrl-C: what finished and is kept, what did not, how to resume.

    ``statuses`` and ``reasons`` are a run report's (upstream first). A task
    the run stopped before is ``cancelled`` (or ``skipped``: its upstream was
    cancelled); the executor gives the one that was running the reason
    ``it was running``.
    """
    kept = [f"`{t}` ({_KEPT[s]})" for t, s in statuses.items() if s in _KEPT]
    failed = [f"`{t}` ({s})" for t, s in statuses.items() if s in RAISED]
    stopped = [t for t, s in statuses.items() if s in STOPPED and "condition" not in reasons.get(t, "")]
    running = [f"`{t}` (it was running)" for t in stopped if reasons.get(t) == "it was running"]
    waiting = [f"`{t}`" for t in stopped if reasons.get(t) != "it was running"]
    parts = [f"Finished and kept: {_named(kept)}." if kept else "No task finished."]
    if failed:
        parts.append(f"Failed: {_named(failed)}.")
    if running or waiting:
        not_started = f"{_named(waiting)} (not started)" if waiting else ""
        parts.append(f"Cancelled: {_named(running + ([not_started] if not_started else []))}.")
        again = len(stopped) + sum(1 for s in statuses.values() if s == "interrupted")
        parts.append(
            f"{resume} to resume: only the {again} unfinished task{'s' if again != 1 else ''} run, the others are kept."
        )
    return " ".join(parts)


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


def warn_at(func: Any, message: str, category: type[Warning]) -> None:
    """A warning about a task (or a helper), shown at the cell or line that defines ``func``, not at dagnb's."""
    code = getattr(func, "__code__", None)
    if code is None:
        warnings.warn(message, category, stacklevel=3)
    else:
        warnings.warn_explicit(message, category, code.co_filename, code.co_firstlineno)


def untracked_message(task: str, what: str, type_name: str, reason: str) -> str:
    """Why a task always reruns: something its key should cover has no fingerprint."""
    short = type_name.rsplit(".", 1)[-1]
    return (
        f"Task `{task}` reads {what}, a `{type_name}` that dagnb cannot fingerprint ({reason}). "
        f"So `{task}` reruns every time, like a `--volatile` task, rather than risk a stale result. "
        f"Pass something dagnb can fingerprint instead (the settings it is made from), or teach dagnb "
        f"the type with `dagnb.register_fingerprint({short}, fn)`."
    )


class DagnbCacheWarning(UserWarning):
    """A cache entry was unreadable or could not be written; dagnb recomputes."""


class DagnbSaveWarning(UserWarning):
    """A ``--save`` copy of a task's value could not be written."""


class UnfingerprintableWarning(UserWarning):
    """A value could not be fingerprinted; its producer's key stands in for it."""


class LocalModuleChangedWarning(UserWarning):
    """A file with user code (a module beside the notebook, a ``%run`` script) was edited after it was
    loaded; tasks keep using, and are keyed by, the code that was loaded."""


class ValueChangedWarning(UserWarning):
    """A task's value was changed in place after it was computed; dagnb put the original back."""

    def __init__(self, task: str, by: str, how: str, reader: str | None = None) -> None:
        self.task, self.by, self.how, self.reader = task, by, how, reader
        when = f"Before task `{reader}` read it" if reader else "As soon as that task finished"
        if by.startswith("task"):
            fix = f"Work on a copy in that task (`{task} = {task}.copy()`) or build a new value."
        else:
            fix = f"Change `{task}` in its own task, or work on a copy in the cell (`{task}.copy()`)."
        super().__init__(
            f"The value of task `{task}` was changed in place after it was computed, by {by}. {when}, dagnb "
            f"{how}, so no result is computed from the changed value. {fix}"
        )


class UnpicklableOutputWarning(UserWarning):
    """A task output could not be written to disk; it stays in memory only."""


class UntrackedWarning(UserWarning):
    """A task reads what its key does not cover (random numbers, the clock, the environment, plain files).

    Built from the task's name and its findings (:class:`dagnb.fingerprints.untracked.Untracked`:
    ``kind``, ``what``, ``code``, ``line``, ``helper``, ``path``); ``line_offset``
    turns a finding's line into the line the user sees (1 for a ``%%task``
    cell, whose magic line comes first).
    """

    def __init__(self, task: str, findings: Sequence[Any], line_offset: int = 0) -> None:
        self.task, self.findings = task, list(findings)
        groups: dict[str, list[str]] = {}
        for finding in self.findings:
            where = f"in helper `{finding.helper}`" if finding.helper else f"line {finding.line + line_offset}"
            groups.setdefault(finding.what, []).append(f"`{finding.code}` {where}")
        shown = [f"{what} ({_listed(places)})" for what, places in groups.items()]
        kinds = {f.kind for f in self.findings}
        path = next((repr(f.path) for f in self.findings if f.path), '"data.csv"')
        fixes = [_UNTRACKED_FIX[kind].format(task=task, path=path) for kind in _UNTRACKED_FIX if kind in kinds]
        super().__init__(
            f"Task `{task}` reads what its key does not cover: {', '.join(shown)}. dagnb cannot see "
            f"{'these' if len(self.findings) > 1 else 'it'} change, so a cached value is reused as if the task "
            f"were deterministic. To fix it: {'; '.join(fixes)}; or mark the task volatile "
            f"(`%%task --volatile`, `@task(volatile=True)`) to rerun it every time."
        )


_UNTRACKED_FIX = {  # in the order the fixes are listed
    "random": "take a seed as a parameter (`def {task}(seed=0)`, then `np.random.default_rng(seed)` "
    "or `random.Random(seed)`)",
    "clock": "pass the date or time as a parameter",
    "environment": "pass the setting as a parameter",
    "file": "declare the file as a parameter (`path=dagnb.file({path})`)",
}


def _listed(places: list[str], most: int = 3) -> str:
    if len(places) <= most:
        return ", ".join(places)
    return ", ".join(places[:most]) + f" and {len(places) - most} more"
