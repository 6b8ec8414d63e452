"""One epoch: a stretch of a session in which nothing but dagnb itself changes the values tasks read.

Planning fingerprints each notebook input a key reads (a parameter fed by a
notebook variable, a global, a helper's default). A ``%%task`` cell plans
several times (its run, the downstream tasks it made stale, the live views
at the run's end, the status lines after the cell), and a notebook input can
be a 2-million-string list that takes most of a second to fingerprint. Within
one epoch each input is fingerprinted once and a full plan is taken once.

Invariants (each one a stale answer it prevents):

* An epoch ends at a definition (a cell's code ran and the graph changed),
  at the end of any task body that ran (it may have changed any value in
  place), and wherever the namespace may have changed: the start of each
  cell, and each planning call of the Python API outside ``Graph.epoch()``.
* A fingerprint is reused only for the very object it was taken of: the
  object is held until the epoch ends, so no other object can take its id
  (in a notebook every cell starts with a new epoch, so a cell that deletes
  a large value frees it).
* A value that holds files (``dagnb.file``) is never remembered: a file can
  change on disk without anything running in the kernel.
* The epoch's plan is forgotten at every event a run records and at every
  value bound outside a run, besides the ends above.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from dagnb.errors import Unfingerprintable
from dagnb.events import Event, TaskFinished
from dagnb.fingerprints.scopes import holds_files
from dagnb.fingerprints.values import fingerprint

__all__ = ["Epoch"]

_NO_BODY = frozenset({"cached", "skipped", "cancelled"})  # statuses a task ends with when its body never ran


class Epoch:
    """The fingerprints and the plan of the current epoch of one session.

    Responsibilities:
        * remember each notebook input's fingerprint (by identity) until the epoch ends;
        * keep the epoch's full plan until anything it depends on changes;
        * say whether a task body ran since the epoch began (the namespace may have changed).
    """

    def __init__(self, take: Callable[[Any], str] = fingerprint) -> None:
        self._take = take
        self._seen: dict[int, tuple[Any, str | Unfingerprintable]] = {}  # id -> (the object, its fingerprint)
        self.plan: Any = None  # the full plan of this epoch, once taken
        self.held = 0  # how many `Graph.epoch()` scopes are open
        self.body_ran = False  # a task body ran since the epoch began: its namespace may have changed

    @contextlib.contextmanager
    def hold(self, begin: Callable[[], None]) -> Iterator[None]:
        """Hold one epoch over what runs inside (``Graph.epoch``): ``begin()`` starts it, unless one is held."""
        if self.held:
            yield
            return
        begin()
        self.held += 1
        try:
            yield
        finally:
            self.held -= 1

    def may_have_changed(self) -> bool:
        """Whether the namespace may have changed since the epoch began: always, unless one is held; inside a
        held epoch, only after a task body ran."""
        return not self.held or self.body_ran

    def end(self) -> None:
        """A new epoch begins: every fingerprint and the plan are taken again."""
        self._seen.clear()
        self.plan = None
        self.body_ran = False

    def fingerprint(self, value: Any) -> str:
        """``value``'s fingerprint, taken once per epoch (raises :class:`Unfingerprintable` as it would)."""
        known = self._seen.get(id(value))
        if known is not None and known[0] is value:
            found = known[1]
        else:
            try:
                found = self._take(value)
            except Unfingerprintable as exc:  # told again at each ask, without walking the value again
                found = exc
            if not holds_files(value):
                self._seen[id(value)] = (value, found)
        if isinstance(found, Unfingerprintable):
            raise found.with_traceback(None)
        return found

    def saw(self, event: Event) -> None:
        """A run recorded ``event``: its plan is void; after a task body, so are the fingerprints."""
        self.plan = None
        if isinstance(event, TaskFinished) and event.status not in _NO_BODY:
            self._seen.clear()
            self.body_ran = True
