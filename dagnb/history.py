"""Run history: what each run did, kept in the cache's metadata, compared and restored.

Every run of a graph is recorded in its store (SQLite for a disk cache,
signed and bounded by :mod:`dagnb.cache.runlog`), in the graph's scope (its
notebook, or its working folder: :mod:`dagnb.scope`): start and end, and for
each task its status, reason, key, output fingerprint, duration and worker.
:class:`History` lists recent runs, :func:`diff_runs` says which tasks
changed key or output between two runs, and ``Graph.restore(run)`` binds
exactly the values a past run had (each task's recorded output), from the
cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from html import escape
from typing import Any

from dagnb.cache.base import RunRecord
from dagnb.status import ENDED, WITH_VALUE, word

__all__ = ["History", "RunDiff", "diff_runs"]


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
    """Which tasks changed key or output between two runs (``%dag history --diff A B``)."""

    first: int
    second: int
    changes: list[tuple[str, str]]

    def render_text(self) -> str:
        head = f"from run {self.first} to run {self.second}: "
        if not self.changes:
            return head + "no task changed key or output"
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
    """Tasks whose key or output differs between ``first`` and ``second`` (or that only one of them ran)."""
    before = {t.task: t for t in first.tasks}
    after = {t.task: t for t in second.tasks}
    changes = []
    for task in [*before, *(t for t in after if t not in before)]:
        a, b = before.get(task), after.get(task)
        if a is None or b is None:
            changes.append((task, f"only in run {first.id if b is None else second.id}"))
            continue
        what = [w for w, x, y in (("key changed", a.key, b.key), ("output changed", a.output, b.output)) if x != y]
        if what:
            changes.append((task, ", ".join(what)))
    return RunDiff(first.id, second.id, changes)
