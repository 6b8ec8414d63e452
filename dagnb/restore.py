"""Restore: bind again exactly the values a past run had, from the cache.

``%dag run --as-of RUN`` (``Graph.restore``) walks the rows
:func:`~dagnb.history.state_at` gives and binds each task's recorded
value. Each row is restored on its own and says why when it is not; the
outcomes come back as one :class:`Restored` table.

Invariants (each one a wrong value it prevents):

* A task gets the value its run recorded (by fingerprint), never merely the
  newest value of its key (a volatile or forced task's key may have got
  another value since), so restored values are consistent with each other.
* A history row that names a cache entry of another task is refused.
* A row that cannot be restored leaves the task's value as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from typing import TYPE_CHECKING, Any, Protocol

from dagnb.cache.base import CacheEntry, CacheMiss, TaskRecord
from dagnb.plan import Result

if TYPE_CHECKING:
    from dagnb.cache.base import Store
    from dagnb.graph import TaskGraph
    from dagnb.status import Status

__all__ = ["Restorable", "Restored", "restore_rows"]


class Restorable(Protocol):
    """What restoring needs of a graph (:class:`dagnb.Graph` is one): its tasks, store and statuses."""

    tasks: TaskGraph
    store: Store
    statuses: dict[str, Status]

    def _bind(self, task: str, result: Result) -> None: ...


class Restored(dict[str, str]):
    """What restoring run ``run_id`` did, task by task: ``restored``, or why not (``Graph.restore``).

    A dict of task to outcome, so it compares equal to one; its text is the
    table ``%dag run --as-of RUN`` shows.
    """

    def __init__(self, run_id: int, outcomes: Mapping[str, str]) -> None:
        super().__init__(outcomes)
        self.run_id = run_id

    def render_text(self) -> str:
        width = max((len(t) for t in self), default=0)
        lines = "\n".join(f"  {t.ljust(width)}  {outcome}" for t, outcome in self.items())
        return f"values of run {self.run_id}:\n{lines}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": f"<pre>{escape(self.render_text())}</pre>"}


def restore_rows(graph: Restorable, rows: Iterable[TaskRecord]) -> dict[str, str]:
    """Bind the value each of ``rows`` recorded for its task, as ``cached``; say per task whether it was restored,
    or why not. Their entries and values are read in one go."""
    rows = list(rows)
    entries = graph.store.entries(row.key for row in rows if _asks(graph, row) and row.key)
    refusals = [_refused(graph, row, entries.get(row.key or "")) for row in rows]
    loading = [row for row, refused in zip(rows, refusals) if refused is None]
    loaded = iter(graph.store.load_each([CacheEntry(r.key or "", r.task, r.fingerprint or "") for r in loading]))
    outcomes = {}
    for row, refused in zip(rows, refusals):  # bound in the rows' order
        outcomes[row.task] = refused or _bound(graph, row, entries[row.key or ""], *next(loaded))
    return outcomes


def _asks(graph: Restorable, row: TaskRecord) -> bool:
    """Whether restoring ``row`` looks its key up in the cache."""
    return row.task in graph.tasks and bool(row.key and row.fingerprint)


def _refused(graph: Restorable, row: TaskRecord, entry: CacheEntry | None) -> str | None:
    """Why ``row``, whose key has ``entry`` in the cache, is not restored (``None``: its value is to be loaded)."""
    if row.task not in graph.tasks:
        return "no longer a task"
    if not row.key or not row.fingerprint:
        return f"not restored: it had no value in that run ({row.status})"
    if entry is not None and entry.task != row.task:
        return (
            f"not restored: the history names a cache entry of task `{entry.task}` for it, so dagnb refuses "
            f"it (`dagnb cache verify` checks the cache)"
        )
    if entry is None or row.fingerprint.startswith("key "):
        return "not in the cache"
    return None


def _bound(graph: Restorable, row: TaskRecord, entry: CacheEntry, value: Any, miss: CacheMiss | None) -> str:
    """Bind ``value`` loaded for ``row`` as ``cached`` (``miss``: it could not be loaded, say why)."""
    if miss is not None:
        return f"not restored: {miss.reason}"
    key, fingerprint = row.key or "", row.fingerprint or ""
    captured = entry.captured if entry.fingerprint == fingerprint else []
    graph._bind(row.task, Result(key, fingerprint, value, captured))
    graph.statuses[row.task] = "cached"
    return "restored"
