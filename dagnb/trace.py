"""The traces of a session's runs: who ran what, when, on which lane, and each run's critical path.

:class:`TraceRecorder` subscribes to a session's events and keeps the
:class:`Trace` of every run since the session started (the kernel's last
restart), oldest first, as a :class:`Timeline`: a notebook run cell by cell
(or Run All) is many runs, one per cell that ran tasks, and the timeline
shows them in order. Times in a trace are seconds since its run started. A
task's part in a run is named for what happened to it: it ``ran``, was
``loaded from cache``, or was ``already in memory`` (or failed, was skipped,
cancelled). The critical path is the chain of tasks, each an upstream of the
next, whose work adds up to the most time: the lower bound on the wall time
of that run with unlimited workers, and where speeding up helps.

Invariants:

* Bars never overlap: tasks that ran at the same time on one lane (async
  tasks, which share the event loop) get rows of their own (:meth:`Trace.rows`).
* The timeline keeps at most :data:`MAX_RUNS` runs; older ones are dropped
  and counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from dagnb.errors import CommandError
from dagnb.events import Event, RunFinished, RunStarted, TaskFinished
from dagnb.status import word

__all__ = ["MAX_RUNS", "Span", "Timeline", "Trace", "TraceRecorder", "critical_path"]

MAX_RUNS = 200  # runs a timeline keeps (a long session drops its oldest)
WHAT = {"done": word("done"), "timed-out": "timed out"}  # a task's part in a run, named (a phrase: "2 timed out")


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
    origin: str = ""  # what started the run (the notebook glue names the cell: `[7] %dag run`)
    in_memory: set[str] = field(default_factory=set)  # `cached` tasks whose value was already in memory
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

    def rows(self) -> list[tuple[str, list[Span]]]:
        """Each lane's spans on rows where none overlaps another: ``(label, spans)``, lanes in order."""
        return lane_rows(self.spans, self.lanes)

    @property
    def task_time(self) -> float:
        """Sum of the time spent in task bodies (not cache loads)."""
        return sum(s.duration for s in self.spans if s.kind == "run")

    def what(self, task: str) -> str:
        """``ran``, ``loaded from cache``, ``already in memory``, or the task's other final status."""
        status = self.statuses.get(task, "cancelled")
        if status == "cached":
            return "already in memory" if task in self.in_memory else "loaded from cache"
        return WHAT.get(status, status)

    def parts(self) -> dict[str, list[str]]:
        """The run's tasks grouped by what happened to them, groups and tasks in run order."""
        found: dict[str, list[str]] = {}
        for task in self.tasks:
            found.setdefault(self.what(task), []).append(task)
        return found

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)


def lane_rows(spans: Iterable[Span], lanes: list[str]) -> list[tuple[str, list[Span]]]:
    """Split each lane into rows so that spans on a row never overlap (first row that is free, in start order)."""
    rows: list[tuple[str, list[Span]]] = []
    for lane in lanes:
        mine: list[list[Span]] = []
        for span in sorted((s for s in spans if s.lane == lane), key=lambda s: (s.start, s.end, s.task)):
            free = next((row for row in mine if row[-1].end <= span.start), None)
            if free is None:
                mine.append([span])
            else:
                free.append(span)
        rows += [(lane if i == 0 else f"{lane} ·{i + 1}", row) for i, row in enumerate(mine)]
    return rows


@dataclass
class Timeline:
    """The runs of a session since it started, oldest first (``dropped``: older runs no longer kept)."""

    runs: list[Trace] = field(default_factory=list)
    dropped: int = 0

    def run(self, run_id: int) -> Trace | None:
        return next((t for t in self.runs if t.run_id == run_id), None)

    def trace_of(self, run_id: int) -> Trace:
        """The trace of run ``run_id``, or :class:`~dagnb.errors.CommandError` saying which runs are kept."""
        trace = self.run(run_id)
        if trace is None:
            raise CommandError(self._no_such_run(run_id))
        return trace

    def _no_such_run(self, run_id: int) -> str:
        kept = [t.run_id for t in self.runs]
        known = f"runs {kept[0]} to {kept[-1]}" if len(kept) > 1 else (f"run {kept[0]}" if kept else "no run yet")
        return (
            f"There is no run {run_id} in this session's trace: it has {known} (since the kernel started). "
            f"`%dag trace` shows them all."
        )

    @property
    def wall_time(self) -> float:
        """Time spent running, the gaps between cells left out."""
        return sum(t.wall_time for t in self.runs)

    @property
    def task_time(self) -> float:
        return sum(t.task_time for t in self.runs)

    @property
    def saved(self) -> float:
        return sum(t.saved for t in self.runs)


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
    """Keeps the trace of every run of one session (an event subscriber); ``origin`` names what started a run."""

    def __init__(self, origin: Callable[[], str] = lambda: "", keep: int = MAX_RUNS) -> None:
        self._current: Trace | None = None
        self._origin = 0.0
        self._name = origin
        self._runs: deque[Trace] = deque(maxlen=keep)
        self.dropped = 0

    @property
    def last(self) -> Trace | None:
        """The trace of the latest run that finished."""
        return self._runs[-1] if self._runs else None

    def timeline(self) -> Timeline:
        return Timeline(list(self._runs), self.dropped)

    def __call__(self, event: Event) -> None:
        current = self._current
        if type(event) is TaskFinished:  # the common case first: one per task
            if current is not None and event.run_id == current.run_id:
                self._add(current, event)
        elif isinstance(event, RunStarted):
            self._current, self._origin = Trace(event.run_id, list(event.tasks), upstream=event.upstream), event.time
            try:
                self._current.origin = self._name()
            except Exception:  # noqa: BLE001 - a label is never worth a failed run
                pass
        elif isinstance(event, RunFinished) and current is not None and event.run_id == current.run_id:
            self._current = None
            current.wall_time = event.duration
            if len(self._runs) == self._runs.maxlen:
                self.dropped += 1
            self._runs.append(current)

    def _add(self, trace: Trace, event: TaskFinished) -> None:
        trace.statuses[event.task] = event.status
        if event.in_memory:
            trace.in_memory.add(event.task)
        if event.items is not None:
            trace.items[event.task] = event.items
        trace.saved += event.saved
        if event.started and event.duration > 0 or event.status in ("done", "failed"):
            start = max(0.0, event.started - self._origin)
            kind = "load" if event.status == "cached" else "run"
            trace.spans.append(Span(event.task, event.worker, start, start + event.duration, event.status, kind))
