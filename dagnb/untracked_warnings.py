"""Telling the user, once, that a task reads what its key does not cover.

:mod:`dagnb.fingerprints.untracked` finds the reads (a file opened by a
path no parameter carries, a module-level value changed in place, ...);
this module decides when to analyse a task again and when to warn.

Invariants (each one a bug it prevents):

* An analysis that fails never stops a definition: it says nothing.
* The same findings are told once per task: re-running an unchanged cell
  says nothing; a volatile task is never told.
* A task is analysed again only when something its findings depend on
  changed: its normalized code, its options, its tracked parameters, and
  the objects the names of its code and of its helpers' code stand for.
  Those objects are held, compared by identity, so that no other object
  can take their ``id`` and pass for them.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dagnb.errors import UntrackedWarning
from dagnb.fingerprints.scopes import FunctionNode, function_tree, holds_files
from dagnb.fingerprints.untracked import Untracked, task_findings

if TYPE_CHECKING:
    from dagnb.taskspec import TaskSpec

__all__ = ["UntrackedWarnings", "tracked_params"]

Told = frozenset[tuple[str, str, str | None]]  # (what, code, helper) of each finding


class UntrackedWarnings:
    """The untracked-read findings of a session's tasks, and what each task was told.

    Responsibilities:
        * analyse a task when it is defined, unless nothing its findings depend on changed;
        * warn (:class:`~dagnb.errors.UntrackedWarning`) when a task's findings differ from what it was told;
        * forget a task that is dropped.
    """

    def __init__(self) -> None:
        self._said: dict[str, Told] = {}  # per task: what it was told
        self._seen: dict[str, tuple[tuple[Any, ...], list[Untracked]]] = {}  # per task: its last analysis

    def say(
        self,
        spec: TaskSpec,
        specs: Mapping[str, TaskSpec],
        namespace: Mapping[str, Any],
        node: FunctionNode | None = None,
        line_offset: int | None = None,
    ) -> list[Untracked]:
        """Warn once if ``spec`` reads what its key does not cover (see ``Graph.say_untracked``); the findings."""
        try:  # an analysis that fails must never stop a definition: say nothing
            tracked = tracked_params(spec, specs, namespace)
            seen = _same_reads_key(spec, tracked)
            last = self._seen.get(spec.name)
            if last is not None and _same_reads(last[0], seen):  # an unchanged cell: nothing to analyse again
                return last[1]
            findings = [] if spec.volatile else task_findings(spec.func, tracked, node)
        except Exception:  # noqa: BLE001 - bookkeeping fails soft
            return []
        self._seen[spec.name] = (seen, findings)
        told = frozenset((f.what, f.code, f.helper) for f in findings)
        if findings and self._said.get(spec.name) != told:
            _warn_untracked(spec, findings, node, line_offset)
        self._said[spec.name] = told
        return findings

    def forget(self, name: str) -> None:
        """Task ``name`` is gone: a task defined again under its name is analysed and told afresh."""
        self._said.pop(name, None)
        self._seen.pop(name, None)


def tracked_params(spec: TaskSpec, specs: Mapping[str, TaskSpec], namespace: Mapping[str, Any]) -> list[str]:
    """Parameters that carry a tracked path: an upstream task, or a ``dagnb.file`` default or variable."""
    tracked = []
    for param in spec.params:
        if param in specs and param != spec.name:
            tracked.append(param)
        elif holds_files(spec.defaults[param] if param in spec.defaults else namespace.get(param)):
            tracked.append(param)
    return tracked


def _same_reads_key(spec: TaskSpec, tracked: list[str]) -> tuple[Any, ...]:
    """What the untracked-read findings of ``spec`` depend on: its code (normalized), its options, and
    the objects the names of its code and of its helpers' code stand for now (held, so that no other
    object can take their identity)."""
    namespace = getattr(spec.func, "__globals__", {})
    names: list[str] = []
    codes, helpers = [_code(spec)], set()
    while codes:
        code = codes.pop()
        names.extend(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
        for name in code.co_names:
            obj: Any = namespace.get(name)
            if getattr(obj, "__globals__", None) is namespace and name not in helpers:
                helpers.add(name)
                codes.append(obj.__code__)
    return (spec.code_digest, spec.volatile, tuple(tracked), tuple(names), tuple(namespace.get(n) for n in names))


def _same_reads(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    return bool(old[:4] == new[:4]) and all(a is b for a, b in zip(old[4], new[4]))


def _warn_untracked(
    spec: TaskSpec, findings: list[Untracked], node: FunctionNode | None, line_offset: int | None
) -> None:
    """The warning, pointed at the task's own code (its first finding there, else its ``def``)."""
    code = _code(spec)
    tree = node if node is not None else function_tree(code)
    first = min([tree.lineno, *(d.lineno for d in tree.decorator_list)]) if tree is not None else 1
    to_file = code.co_firstlineno - first  # tree lines -> lines of the code's file (or cell)
    own = [f.line for f in findings if f.helper is None]
    lineno = (own[0] if own else first) + to_file
    shown = UntrackedWarning(spec.name, findings, to_file if line_offset is None else line_offset)
    warnings.warn_explicit(shown, UntrackedWarning, code.co_filename, lineno, module=spec.func.__module__)


def _code(spec: TaskSpec) -> types.CodeType:
    """The task function's code (a task is always a plain function: see ``spec_from_function``)."""
    code: types.CodeType = spec.func.__code__
    return code
