"""Which tasks' in-memory values are known to be up to date, so a cell need not check them again.

A cached ``%%task`` cell asks for its own task. Without this, every cell
would decide its whole upstream cone again (a key per ancestor: about 35 µs
each, so the 1,000th cell of a chain paid 35 ms). A task is *fresh* when a
run of this session decided it (it ran, was loaded, or its value was
already in memory under its current key) and nothing its key depends on
may have changed since; a run that asks for a task stops walking upstream
at fresh tasks.

Invariants (each one a class of stale values it prevents):

* Every upstream task of a fresh task is fresh, so looking at a task's
  direct upstream is enough: the walk never needs to go above a fresh one.
* Forgetting a task forgets everything downstream of it, along the edges
  of the moment (a definition forgets along the edges before *and* after
  it changes them).
* A task that reads anything besides its upstream values and immutable
  defaults (notebook variables, globals, helpers, modules, files) stays
  fresh across the start of a cell or a run only when each name it reads
  is still bound to the very object it was (compared by identity), and
  that object's part of the key cannot change while bound to it (an
  immutable value, a library module or function, a notebook function's
  code and defaults: see ``codehash.same_key_while_bound``); otherwise the
  start of each cell and each run forgets it. So is a task whose value
  changed in memory.
* Only tasks whose key holds nothing untracked, that are not volatile and
  not forced, are ever marked.
* Every task marked, changed or forgotten (with what was below it then) is
  *touched* until :meth:`Freshness.take_touched`: the plan after a cell
  decides again only touched tasks, tasks below them and tasks that read
  the namespace (``Graph.plan_since``).

What a key reads from the namespace is found here too
(:func:`namespace_reads`, :func:`still_bound`, :class:`NamespaceReaders`),
so that the rule above and the reads it compares live in one module.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Container, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagnb.fingerprints.code import is_immutable, same_key_while_bound

if TYPE_CHECKING:
    from dagnb.graph import TaskGraph
    from dagnb.plan import Result
    from dagnb.taskspec import TaskSpec

__all__ = [
    "Freshness",
    "NamespaceReaders",
    "Reads",
    "bind_fresh_upstream",
    "namespace_reads",
    "reads_namespace",
    "still_bound",
]


@dataclass(frozen=True)
class Reads:
    """What a fresh task's key read from the namespace when it was marked."""

    seen: tuple[tuple[str, Any, Any, Any], ...] = ()  # (name, object, its code, its defaults), compared by identity
    always: bool = False  # something that can change in place: forgotten at every cell and run


class Freshness:
    """The fresh tasks of one session.

    ``downstream(task)`` lists the tasks below ``task`` (the graph's edges
    of the moment); ``upstream(task)`` those it reads directly.
    """

    def __init__(self, upstream: Callable[[str], Iterable[str]], downstream: Callable[[str], Iterable[str]]) -> None:
        self._upstream, self._downstream = upstream, downstream
        self._fresh: set[str] = set()
        self._readers: dict[str, Reads] = {}  # fresh tasks that read the namespace: checked at each cell and run
        self._touched: set[str] = set()  # tasks whose decision may have changed since `take_touched`
        self._touched_all = False

    def __contains__(self, task: object) -> bool:
        return task in self._fresh

    def mark(self, task: str, reads: Reads | None) -> bool:
        """``task`` was just decided and its value is bound: fresh, if all its upstream are. Returns whether.

        ``reads``: what its key read from the namespace (``None``: nothing).
        """
        self._touched.add(task)
        if not all(up in self._fresh for up in self._upstream(task)):
            return False
        self._fresh.add(task)
        if reads is not None:
            self._readers[task] = reads
        return True

    def forget(self, task: str) -> None:
        """``task`` and everything downstream of it are no longer known fresh (edges may have just changed)."""
        below = self._downstream(task)
        self._touched.add(task)
        self._touched.update(below)
        if not self._fresh:
            return
        self._drop(task)
        for name in below:
            self._drop(name)

    def changed(self, task: str) -> None:
        """``task``'s value changed in memory, its edges did not: forget it and below, if it was fresh.

        When it was not, nothing below it is (the first invariant), so there is nothing to walk.
        """
        self._touched.add(task)
        if task in self._fresh:
            self.forget(task)

    def forget_readers(self, unchanged: Callable[[Reads], bool]) -> None:
        """The namespace may have changed (a cell or a run starts): forget the tasks whose reads did not stay
        ``unchanged``, and everything below them."""
        for task, reads in list(self._readers.items()):
            if reads.always or not unchanged(reads):
                self.changed(task)

    def to_decide(
        self, names: Iterable[str], forced: Container[str], ran_before: Callable[[str], bool] | None = None
    ) -> set[str]:
        """``names`` and the tasks upstream of them a run must decide: the walk stops at fresh tasks (unless
        ``forced``) and, given ``ran_before``, at a task that never ran (it must run, so what is below waits)."""
        need, stack = set(names), list(names)
        while stack:
            for up in self._upstream(stack.pop()):
                if up in need or (up in self._fresh and up not in forced):
                    continue
                if ran_before is not None and not ran_before(up):
                    continue
                need.add(up)
                stack.append(up)
        return need

    def clear(self) -> None:
        self._fresh.clear()
        self._readers.clear()
        self.touch_all()

    def touch_all(self) -> None:
        """Every task's decision may have changed (values bound from outside a run, the graph rebuilt)."""
        self._touched_all = True

    def take_touched(self) -> set[str] | None:
        """The tasks touched since the last call (``None``: every task), and start again with none."""
        touched = None if self._touched_all else self._touched
        self._touched, self._touched_all = set(), False
        return touched

    def _drop(self, task: str) -> None:
        self._fresh.discard(task)
        self._readers.pop(task, None)


def bind_fresh_upstream(
    order: list[str],
    upstream: Callable[[str], Iterable[str]],
    results: Mapping[str, Result],
    namespace: MutableMapping[str, Any],
) -> None:
    """Fresh upstream tasks outside a run of ``order`` are bound again where the user overwrote their variable,
    as a decision would (a task may read them as globals)."""
    inside = set(order)
    for task in order:
        for up in upstream(task):
            if up not in inside and namespace.get(up) is not results[up].value:
                namespace[up] = results[up].value


# ------------------------------------------------------- reads of the namespace

_MISSING = object()  # a name not bound in the namespace (a builtin, or nothing yet)


def _code_and_defaults(obj: Any) -> tuple[Any, Any]:
    """A function's code object and defaults (compared by identity and equality): what rebinding them changes."""
    if isinstance(obj, types.FunctionType):
        return obj.__code__, (obj.__defaults__, tuple((obj.__kwdefaults__ or {}).items()))
    return None, None


def namespace_reads(tasks: TaskGraph, namespace: Mapping[str, Any], task: str, spec: TaskSpec) -> Reads | None:
    """What ``task``'s key reads from the namespace, to compare at the next cell (None: nothing)."""
    names = []
    for item in tasks.resolve(task, namespace):
        if item.kind == "external":
            names.append(item.param)
        elif item.kind == "constant" and not is_immutable(item.value):
            return Reads(always=True)
    if spec.fixed_code is None:
        names += [g for g in spec.global_names(tasks.specs) if g not in tasks.specs]
    if not names:
        return None
    seen = []
    for name in names:
        obj = namespace.get(name, _MISSING)
        if obj is not _MISSING and not same_key_while_bound(obj, namespace):
            return Reads(always=True)
        seen.append((name, obj, *_code_and_defaults(obj)))
    return Reads(tuple(seen))


def still_bound(namespace: Mapping[str, Any], reads: Reads) -> bool:
    """Whether every name of ``reads`` is still bound to the same object, with the same code and defaults."""
    get = namespace.get
    return all(
        get(name, _MISSING) is obj and _code_and_defaults(obj) == (code, defaults)
        for name, obj, code, defaults in reads.seen
    )


def reads_namespace(spec: TaskSpec, specs: Mapping[str, TaskSpec]) -> bool:
    """Whether ``spec``'s key may read a value a cell can change: a notebook variable, a global, a helper,
    a default that can change in place."""
    if spec.fixed_code is None:
        return True
    for param in spec.params:
        if param in specs and param != spec.name:
            continue
        if param not in spec.defaults or not is_immutable(spec.defaults[param]):
            return True
    return False


class NamespaceReaders:
    """The tasks whose key reads the namespace, kept as tasks are touched (for ``Graph.plan_since``).

    A cell may change in place any value such a task reads, so the plan
    after each cell decides it again unless it is known fresh.
    """

    def __init__(self) -> None:
        self._tasks: set[str] = set()

    def find_all(self, specs: Mapping[str, TaskSpec]) -> None:
        """Look at every task again (a plan from scratch)."""
        self._tasks = {name for name, spec in specs.items() if reads_namespace(spec, specs)}

    def not_fresh(self, touched: Iterable[str], specs: Mapping[str, TaskSpec], fresh: Freshness) -> set[str]:
        """Look again at the ``touched`` tasks; return the readers not known fresh."""
        for task in touched:
            if task in specs and reads_namespace(specs[task], specs):
                self._tasks.add(task)
            else:
                self._tasks.discard(task)
        return {t for t in self._tasks if t not in fresh}
