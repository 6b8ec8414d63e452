"""The state of one run: each task's status, the ready queue, what is running.

The executor (:mod:`dagnb.run.executor`) drives a :class:`RunState`; the
session behind the run is its :class:`RunContext` (a
:class:`~dagnb.run.taskrunner.TaskRunner`).

Invariants:

* A task enters the ready queue once, when the last of its upstream tasks in
  the run ended (:meth:`RunState.finish`), whatever their status.
* Every end of a task or of the run is recorded in the session
  (``RunContext.record``) before the event bus tells the observers, and an
  error in that bookkeeping is said and never stops the run.
* With a priority, the ready task on the longest remaining path goes first;
  ties, and runs without priorities, keep the upstream-first order.
"""

from __future__ import annotations

import heapq
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dagnb.events import Costs, Event, EventBus, TaskFinished
from dagnb.plan import Decision, priorities
from dagnb.report import RunReport
from dagnb.run.work import Committed, Outcome, Work
from dagnb.status import ENDED_BADLY, Status

__all__ = ["NO_COSTS", "Attempt", "Ready", "RunContext", "RunState"]

NO_COSTS = Costs()  # a task that ended without work in this run (skipped, cancelled, failed before it ran)


class RunContext(Protocol):
    """What the executor needs from a run of a session (:class:`~dagnb.run.taskrunner.TaskRunner`)."""

    def upstream(self, task: str) -> list[str]: ...

    def decide(self, task: str, force: frozenset[str], skipped: frozenset[str] = frozenset()) -> Decision: ...

    def optional(self, task: str, param: str) -> bool: ...

    def is_async(self, task: str) -> bool: ...

    def load(self, decision: Decision) -> bool: ...

    def prepare(self, decision: Decision) -> Work: ...

    def commit(self, decision: Decision, outcome: Outcome) -> Committed: ...

    def estimates(self, tasks: Sequence[str]) -> dict[str, float]: ...

    def record(self, event: Event) -> None:
        """The session's own bookkeeping of a run's start, each task's end and the run's end."""


class Ready:
    """Tasks whose upstream is done: first in, first out; by priority when given."""

    def __init__(self, rank: dict[str, float] | None) -> None:
        self.rank = rank
        self._fifo: deque[str] = deque()
        self._heap: list[tuple[float, int, str]] = []
        self._count = 0

    def push(self, task: str) -> None:
        if self.rank is None:
            self._fifo.append(task)
        else:
            self._count += 1  # ties keep arrival (upstream-first) order
            heapq.heappush(self._heap, (-self.rank.get(task, 0.0), self._count, task))

    def pop(self) -> str:
        return self._fifo.popleft() if self.rank is None else heapq.heappop(self._heap)[2]

    def peek(self) -> str:
        return self._fifo[0] if self.rank is None else self._heap[0][2]

    def __bool__(self) -> bool:
        return bool(self._fifo or self._heap)


@dataclass
class Attempt:
    decision: Decision
    work: Work
    number: int
    submitted: float
    deadline: float | None


class RunState:
    """The state of one run: statuses, the ready queue, in-flight futures."""

    def __init__(self, ctx: RunContext, order: Sequence[str], bus: EventBus, run_id: int, jobs: int) -> None:
        self.ctx, self.bus, self.run_id = ctx, bus, run_id
        self.report = RunReport(run_id=run_id)
        members = set(order)
        self.waiting = {t: {u for u in ctx.upstream(t) if u in members} for t in order}
        self.children: dict[str, list[str]] = {t: [] for t in order}
        for t in order:
            for u in self.waiting[t]:
                self.children[u].append(t)
        rank = priorities(order, self.children, ctx.estimates(order)) if jobs > 1 else None
        self.ready = Ready(rank)
        for t in order:
            if not self.waiting[t]:
                self.ready.push(t)
        self.order = list(order)
        self.running: dict[Any, Attempt] = {}  # a backend's Future, or the event loop's Task of an async task
        self.waiter: Any = None  # how tasks are submitted and awaited: set by the driver
        self.stopped = False
        self.interrupted: str | None = None  # a task that caught Ctrl-C: the run stops, then raises
        self.submitting: str | None = None  # the task being handed to the backend (run there, if inline)
        self.by_condition: set[str] = set()  # tasks skipped because their `--when` was false
        self.any_async = any(ctx.is_async(t) for t in order)

    def finish(self, task: str, status: Status, reason: str = "", costs: Costs = NO_COSTS, **extra: Any) -> None:
        self.report.statuses[task] = status
        self.report.durations[task] = costs.duration
        if reason:
            self.report.reasons[task] = reason
        if extra.get("saved"):
            self.report.saved[task] = extra["saved"]
        if extra.get("items"):
            self.report.items[task] = extra["items"]
        self.announce(
            TaskFinished(
                self.run_id, time.perf_counter(), task=task, status=status, reason=reason, costs=costs, **extra
            )
        )
        for child in self.children[task]:
            self.waiting[child].discard(task)
            if not self.waiting[child]:
                self.ready.push(child)

    def announce(self, event: Event) -> None:
        """Record ``event`` in the session (an explicit call, not an observer), then tell the observers.

        Observers (the trace, views, hooks) may fail and be dropped by the
        bus; the session's bookkeeping is never dropped: an error in it is
        said, and the next event is recorded again.
        """
        try:
            self.ctx.record(event)
        except Exception as exc:
            warnings.warn(
                f"dagnb could not record {type(event).__name__} of run {event.run_id} ({exc!r}); the "
                f"run goes on, and its next events are recorded.",
                RuntimeWarning,
                stacklevel=2,
            )
        self.bus.emit(event)

    def blocker(self, task: str) -> str | None:
        """The upstream task that keeps ``task`` from running, if any.

        A task skipped by its condition blocks only dependents whose parameter
        for it has no default; those receive the default instead.
        """
        for u in self.ctx.upstream(task):
            if self.report.statuses.get(u) in ENDED_BADLY and not (
                u in self.by_condition and self.ctx.optional(task, u)
            ):
                return u
        return None

    def busy(self) -> int:
        """How many running tasks hold a worker (async ones interleave on their own loop and hold none)."""
        if not self.any_async:
            return len(self.running)
        return sum(1 for a in self.running.values() if a.work.run_async is None)

    def skipped_upstream(self, task: str) -> frozenset[str]:
        """The upstream tasks of ``task`` that their condition skipped (none in most runs)."""
        if not self.by_condition:
            return frozenset()
        return frozenset(self.by_condition.intersection(self.ctx.upstream(task)))

    def blocked_by_failure(self, task: str) -> bool:
        return self.blocker(task) is not None

    def next_deadline(self) -> float | None:
        deadlines = [a.deadline for a in self.running.values() if a.deadline is not None]
        return min(deadlines) if deadlines else None
