"""The trace of a run: who ran what, when, on which lane, and its critical path.

:class:`TraceRecorder` subscribes to a session's events and keeps the
:class:`Trace` of the latest run. Times in a trace are seconds since the run
started. The critical path is the chain of tasks, each an upstream of the
next, whose work adds up to the most time: the lower bound on the wall time
of that run with unlimited workers, and where speeding up helps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from .events import Event, RunFinished, RunStarted, TaskFinished

__all__ = ["Span", "Trace", "TraceRecorder", "critical_path"]


class Span(NamedTuple):
    """One bar of the Gantt chart: a task body (``run``) or a cache load (``load``).

    A named tuple rather than a dataclass: one is made per task per run.
    """

    task: str
    lane: str
    start: float
    end: float
    status: str
    kind: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Trace:
    """What one run did over time."""

    run_id: int
    tasks: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    wall_time: float = 0.0
    saved: float = 0.0
    items: dict[str, tuple[int, int]] = field(default_factory=dict)  # map tasks: (elements computed, elements)
    upstream: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False, compare=False)
    _critical: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def critical(self) -> list[str]:
        """The critical path over the edges the run had (computed when first asked: most runs are never drawn)."""
        if self._critical is None:
            self._critical = critical_path(self.spans, lambda t: self.upstream.get(t, ()))
        return self._critical

    @property
    def lanes(self) -> list[str]:
        """Lanes in order of first use, ``main`` first."""
        seen = dict.fromkeys(["main"] if any(s.lane == "main" for s in self.spans) else [])
        seen.update(dict.fromkeys(s.lane for s in sorted(self.spans, key=lambda s: s.start)))
        return list(seen)

    @property
    def task_time(self) -> float:
        """Sum of the time spent in task bodies (not cache loads)."""
        return sum(s.duration for s in self.spans if s.kind == "run")

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)


def critical_path(spans: Iterable[Span], upstream: Callable[[str], Iterable[str]]) -> list[str]:
    """The upstream-first chain of spanned tasks with the largest total duration."""
    spans = sorted(spans, key=lambda s: (s.end, s.start, s.task))
    weight = {s.task: s.duration for s in spans}
    best: dict[str, tuple[float, str | None]] = {}
    for span in spans:  # by end time: every upstream ended before its dependent did
        before = [(best[u][0], u) for u in upstream(span.task) if u in best]
        total, prev = max(before, default=(0.0, None))
        best[span.task] = (total + weight[span.task], prev)
    if not best:
        return []
    task: str | None = max(best, key=lambda t: (best[t][0], t))
    path = []
    while task is not None:
        path.append(task)
        task = best[task][1]
    return path[::-1]


class TraceRecorder:
    """Keeps the trace of the latest run of one session (an event subscriber)."""

    def __init__(self) -> None:
        self._current: Trace | None = None
        self._origin = 0.0
        self.last: Trace | None = None

    def __call__(self, event: Event) -> None:
        current = self._current
        if type(event) is TaskFinished:  # the common case first: one per task
            if current is not None and event.run_id == current.run_id:
                self._add(current, event)
        elif isinstance(event, RunStarted):
            self._current, self._origin = Trace(event.run_id, list(event.tasks), upstream=event.upstream), event.time
        elif isinstance(event, RunFinished) and current is not None and event.run_id == current.run_id:
            self._current = None
            current.wall_time = event.duration
            self.last = current

    def _add(self, trace: Trace, event: TaskFinished) -> None:
        trace.statuses[event.task] = event.status
        if event.items is not None:
            trace.items[event.task] = event.items
        trace.saved += event.saved
        if event.started and event.duration > 0 or event.status in ("done", "failed"):
            start = max(0.0, event.started - self._origin)
            kind = "load" if event.status == "cached" else "run"
            trace.spans.append(Span(event.task, event.worker, start, start + event.duration, event.status, kind))
