"""Run history: what each run did, kept in the cache's metadata, compared and restored.

Every run of a graph is recorded in its store (SQLite for a disk cache,
signed and bounded by :mod:`dagnb.cache.runlog`), in the graph's scope (its
notebook, or its working folder: :mod:`dagnb.scope`): start and end, and for
each task its status, reason, key, the fingerprint of its value, duration
and worker. :class:`History` lists recent runs, :func:`diff_runs` says which tasks
changed key or value between two runs, :func:`state_at` rebuilds every
value the session had when a run ended, and :mod:`dagnb.restore` binds
exactly those values again (each task's recorded fingerprint), from the cache.

Invariant: a run that is not signed with the user's secret is never used;
asking for it is an error the user can act on, and a walk back through
earlier runs stops at it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from dagnb.cache.base import RunRecord, TaskRecord
from dagnb.cache.runlog import ForgedRun
from dagnb.errors import CommandError
from dagnb.status import ENDED, WITH_VALUE, word

if TYPE_CHECKING:
    from dagnb.cache.base import Store
    from dagnb.graph import TaskGraph

__all__ = ["History", "RunDiff", "diff_runs", "run_record", "state_at"]


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


@dataclass
class History:
    """Recent runs, newest first (``%dag history``)."""

    runs: list[RunRecord]
    scope: str = ""  # whose runs: ``notebook `a.ipynb```, ``folder `project```

    def render_text(self) -> str:
        whose = f" of the {self.scope}" if self.scope else ""
        if not self.runs:
            return f"history{whose}: no runs recorded yet"
        lines = [f"history{whose} (newest first):"]
        for run in self.runs:
            counts = ", ".join(f"{run.count(s)} {word(s)}" for s in ENDED if run.count(s) or s in WITH_VALUE)
            noun = "task" if len(run.tasks) == 1 else "tasks"
            lines.append(
                f"  run {run.id}  {_when(run.started)}  {run.finished - run.started:.2f} s  "
                f"{len(run.tasks)} {noun}: {counts}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.render_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": f"<pre>{escape(self.render_text())}</pre>"}


@dataclass
class RunDiff:
    """Which tasks changed key or value between two runs (``%dag history --diff A B``)."""

    first: int
    second: int
    changes: list[tuple[str, str]]

    def render_text(self) -> str:
        head = f"from run {self.first} to run {self.second}: "
        if not self.changes:
            return head + "no task changed key or value"
        width = max(len(t) for t, _ in self.changes)
        noun = "task" if len(self.changes) == 1 else "tasks"
        return (
            head
            + f"{len(self.changes)} {noun} changed\n"
            + "\n".join(f"  {task.ljust(width)}  {what}" for task, what in self.changes)
        )

    def __repr__(self) -> str:
        return self.render_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": f"<pre>{escape(self.render_text())}</pre>"}


def diff_runs(first: RunRecord, second: RunRecord) -> RunDiff:
    """Tasks whose key or value differs between ``first`` and ``second`` (or that only one of them ran)."""
    before = {t.task: t for t in first.tasks}
    after = {t.task: t for t in second.tasks}
    changes = []
    for task in [*before, *(t for t in after if t not in before)]:
        a, b = before.get(task), after.get(task)
        if a is None or b is None:
            changes.append((task, f"only in run {first.id if b is None else second.id}"))
            continue
        what = [
            w for w, x, y in (("key changed", a.key, b.key), ("value changed", a.fingerprint, b.fingerprint)) if x != y
        ]
        if what:
            changes.append((task, ", ".join(what)))
    return RunDiff(first.id, second.id, changes)


def run_record(store: Store, run_id: int, whose: str) -> RunRecord:
    """One recorded run of ``store``, by the id ``history`` shows (only that run is read).

    ``whose`` names the history in messages (``Scope.describe()``: this notebook's, or a folder's).

    Raises:
        CommandError: the run is not signed with the user's secret, or there is no such run.
    """
    try:
        run = store.run(run_id)
    except ForgedRun:
        raise CommandError(
            f"Run {run_id} in the history of the {whose} is not signed with your secret (it was altered, or "
            f"written by someone else), so dagnb does not use it. `dagnb cache verify` removes such runs."
        ) from None
    if run is None:
        known = ", ".join(str(r.id) for r in store.runs(10)) or "none yet"
        raise CommandError(f"There is no run {run_id} in the history of the {whose}. Recent runs: {known}.")
    return run


def state_at(store: Store, tasks: TaskGraph, run_id: int, whose: str) -> RunRecord:
    """Run ``run_id`` with, for each of ``tasks`` it did not decide, the row of the latest earlier run that did
    (see ``Graph.state_at``); rows in run order. The walk back goes over the store's scope's runs only
    (``Store.runs_before``: another notebook's runs are not this one's) and stops at one not signed."""
    run = run_record(store, run_id, whose)
    rows = list(run.tasks)
    wanted = set(tasks.specs) - {row.task for row in rows}
    if wanted:
        rows += _latest_rows(store.runs_before(run_id), wanted)
    order = {task: i for i, task in enumerate(tasks.sort({r.task for r in rows} & tasks.specs.keys()))}
    rows.sort(key=lambda row: order.get(row.task, len(order)))
    return RunRecord(run.id, run.started, run.finished, rows)


def _latest_rows(earlier: Iterator[RunRecord], wanted: set[str]) -> list[TaskRecord]:
    """For each task of ``wanted``, its row in the first of the ``earlier`` runs that has one; to a forged run."""
    rows = []
    try:
        for found in earlier:
            for row in found.tasks:
                if row.task in wanted:
                    rows.append(row)
                    wanted.discard(row.task)
            if not wanted:
                break
    except ForgedRun:
        pass
    return rows
