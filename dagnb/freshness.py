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
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Freshness", "Reads"]


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
