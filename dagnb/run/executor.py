"""Runs tasks: a ready queue fed by completions, over a pluggable backend.

A task is submitted as soon as every upstream task is done (never level by
level). Before it starts, its key is computed from the *actual* output
fingerprints of its upstream tasks, so a rerun that produced an identical
output lets its dependents load from cache (early cutoff). With more than
one worker, the ready task on the longest remaining path goes first, paths
measured with the durations of earlier runs (cost-aware).

Invariants:

* Each task is decided, then loaded or run, at most once per run (plus its
  retries, each one counted).
* A task whose upstream failed, timed out, was skipped or cancelled is
  ``skipped``.
* After the first failure no new task starts unless ``keep_going``; tasks
  that never started are ``cancelled``. The same on KeyboardInterrupt, which
  becomes :class:`~dagnb.errors.RunInterrupted` (a KeyboardInterrupt that
  carries the complete report); every finished result is kept, and the task
  that was running is ``cancelled`` with the reason ``it was running``.
* A task that caught a Ctrl-C and returned is ``interrupted``: its value is
  bound but never cached, nothing new starts, and the run raises
  :class:`~dagnb.errors.TaskInterrupted` (a KeyboardInterrupt) at the end.
* A task past its timeout is ``timed-out``: an inline one is interrupted, one
  on another worker is abandoned (its result is ignored).
* Only the caller's thread commits results (cache writes, namespace binding).
"""

from __future__ import annotations

import asyncio
import heapq
import queue
import time
import warnings
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from typing import Any, Protocol

from dagnb.errors import RunInterrupted, TaskInterrupted, TaskNotRun, TaskTimedOut
from dagnb.events import Event, EventBus, RunFinished, RunStarted, TaskFinished, TaskStarted
from dagnb.plan import Decision, priorities
from dagnb.report import RunReport  # moved to dagnb.report; importable from here too
from dagnb.run.aio import complete_now
from dagnb.run.backends import (
    Backend,
    InlineBackend,
    ThreadBackend,
    async_runner,
    current_lane,
    gather,
    keyboard_interrupts,
    make_backend,
)
from dagnb.run.costs import Costs
from dagnb.run.work import Committed, Outcome, Work
from dagnb.status import ENDED_BADLY, Status

__all__ = [
    "Backend",
    "InlineBackend",
    "Outcome",
    "RunReport",
    "ThreadBackend",
    "Work",
    "current_lane",
    "execute",
    "execute_async",
    "make_backend",
]


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


NO_COSTS = Costs()  # a task that ended without work in this run (skipped, cancelled, failed before it ran)


class _Ready:
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
class _Attempt:
    decision: Decision
    work: Work
    number: int
    submitted: float
    deadline: float | None


class _Run:
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
        self.ready = _Ready(rank)
        for t in order:
            if not self.waiting[t]:
                self.ready.push(t)
        self.order = list(order)
        self.running: dict[Any, _Attempt] = {}  # a backend's Future, or the event loop's Task of an async task
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


def execute(
    ctx: RunContext,
    order: Sequence[str],
    *,
    backend: Backend | None = None,
    bus: EventBus | None = None,
    force: frozenset[str] = frozenset(),
    keep_going: bool = False,
    run_id: int = 0,
) -> RunReport:
    """Bring every task of ``order`` (upstream first) up to date, waiting in this thread.

    Async tasks run on dagnb's own event loop thread.
    """
    backend = backend or InlineBackend()
    run = _Run(ctx, order, bus or EventBus(), run_id, backend.jobs)
    return complete_now(_drive(run, backend, _Blocking(), force, keep_going))


async def execute_async(
    ctx: RunContext,
    order: Sequence[str],
    *,
    backend: Backend | None = None,
    bus: EventBus | None = None,
    force: frozenset[str] = frozenset(),
    keep_going: bool = False,
    run_id: int = 0,
) -> RunReport:
    """:func:`execute`, awaited: async tasks run on the running event loop, next to each other.

    Cancelling the awaiting task stops the run like KeyboardInterrupt does
    (tasks that never started are ``cancelled``) and raises CancelledError.
    """
    backend = backend or InlineBackend()
    run = _Run(ctx, order, bus or EventBus(), run_id, backend.jobs)
    return await _drive(run, backend, _OnLoop(), force, keep_going)


class _Blocking:
    """Waits by blocking the caller's thread; async tasks go to dagnb's own loop thread."""

    def __init__(self) -> None:
        self._completions: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
        self._watched: set[Future[Outcome]] = set()  # running futures that report to `_completions`

    def submit(self, backend: Backend, work: Work) -> Future[Outcome]:
        return async_runner().submit(work) if work.run_async is not None else backend.submit(work)

    async def wait(self, run: _Run, timeout: float | None) -> list[Future[Outcome]]:
        """The running futures that are done; when none is yet, wait up to ``timeout`` for the first.

        An inline task's future is done when submitted, so it is looked for
        first. Otherwise each running future reports to a queue when it
        finishes (one callback each, added the first time it is waited for):
        a queue get costs far less than ``concurrent.futures.wait``, which
        builds and removes a waiter on every running future at every call.
        """
        done = [future for future in run.running if future.done()]
        if done:
            return done
        self._watched.intersection_update(run.running)  # those handled since need no watching
        for future in run.running.keys() - self._watched:
            self._watched.add(future)
            future.add_done_callback(self._completions.put)
        ends = None if timeout is None else time.perf_counter() + timeout
        while True:  # a future already handled by the first look may still be queued: skip it
            try:
                future = self._completions.get(timeout=None if ends is None else max(0.0, ends - time.perf_counter()))
            except queue.Empty:
                return []
            if future in run.running:
                return [future for future in run.running if future.done()]


class _OnLoop:
    """Waits by awaiting on the running event loop; async tasks run on it."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._awaitable: dict[Any, asyncio.Future[Outcome]] = {}  # a backend's future -> the loop's view of it

    def submit(self, backend: Backend, work: Work) -> Any:
        if work.run_async is not None:
            return self._loop.create_task(work.run_async())
        with keyboard_interrupts():  # an inline task blocks the loop: Ctrl-C must reach it
            return backend.submit(work)

    async def wait(self, run: _Run, timeout: float | None) -> set[Any]:
        views = {f: f if isinstance(f, asyncio.Future) else self._view(f) for f in run.running}
        done, _ = await asyncio.wait(views.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finished = {f for f, view in views.items() if view in done}
        for f in finished:
            self._awaitable.pop(f, None)
        return finished

    def _view(self, future: Future[Outcome]) -> asyncio.Future[Outcome]:
        if future not in self._awaitable:
            self._awaitable[future] = asyncio.wrap_future(future, loop=self._loop)
        return self._awaitable[future]


async def _drive(
    run: _Run, backend: Backend, waiter: _Blocking | _OnLoop, force: frozenset[str], keep_going: bool
) -> RunReport:
    started = time.perf_counter()
    edges = {t: tuple(ups) for t, ups in run.waiting.items()}
    run.announce(RunStarted(run.run_id, started, tasks=tuple(run.order), upstream=edges))
    run.waiter = waiter
    try:
        while run.ready or run.running:
            _start_ready(run, backend, force, keep_going)
            if run.running:
                deadline = run.next_deadline()
                timeout = None if deadline is None else max(0.0, deadline - time.perf_counter())
                for future in await waiter.wait(run, timeout):
                    _complete(run, backend, future, keep_going)
                _expire(run, backend, keep_going)
    except KeyboardInterrupt as stop:  # Ctrl-C: the report (completed below) goes with it
        if isinstance(stop, RunInterrupted):
            raise
        raise RunInterrupted(run.report).with_traceback(stop.__traceback__) from None  # where Ctrl-C landed
    finally:  # also on KeyboardInterrupt and cancellation, which go on to the caller
        _cancel_rest(run)
        run.report.statuses = {t: run.report.statuses[t] for t in run.order}
        run.report.wall_time = time.perf_counter() - started
        run.announce(RunFinished(run.run_id, time.perf_counter(), duration=run.report.wall_time, report=run.report))
    if run.interrupted is not None:  # Ctrl-C was swallowed by a task: the run stops as for any Ctrl-C
        raise TaskInterrupted(run.interrupted, run.report)
    return run.report


def _start_ready(run: _Run, backend: Backend, force: frozenset[str], keep_going: bool) -> None:
    """Start ready tasks while the backend has room; async tasks need no room (they interleave)."""
    while run.ready:
        busy = run.busy()
        if busy >= backend.jobs and not (run.any_async and run.ctx.is_async(run.ready.peek())):
            break
        task = run.ready.pop()
        blocker = run.blocker(task)
        if blocker is not None:
            if blocker in run.by_condition:  # skipped by a condition, not by a failure
                run.by_condition.add(task)
                run.report.by_condition.append(task)
                run.finish(task, "skipped", reason=f"upstream {blocker} was skipped (condition)")
            else:
                run.finish(task, "skipped", reason=f"upstream {blocker} {run.report.statuses[blocker]}")
            continue
        if run.stopped:
            run.finish(task, "cancelled", reason="the run stopped at a failure")
            continue
        try:
            decision = run.ctx.decide(task, force, run.skipped_upstream(task))
        except TaskNotRun as error:  # its condition raised, an input cannot be read or was used up: its own failure
            _fail_now(run, task, error, keep_going)
            continue
        if decision.action == "skip":
            run.by_condition.add(task)
            run.report.by_condition.append(task)
            run.finish(task, "skipped", reason=decision.reason)
            continue
        if decision.action in ("fresh", "load") and _load(run, decision):
            continue
        if decision.action == "load":  # the load failed: the value is recomputed
            decision = type(decision)(task, "run", ("not in cache",), decision.key)
        _submit(run, backend, decision, run.ctx.prepare(decision), 1)


def _fail_now(run: _Run, task: str, error: BaseException, keep_going: bool) -> None:
    """A failure before the task body ran (its condition raised, an input could not be used)."""
    run.report.errors[task] = error
    run.stopped = run.stopped or not keep_going
    run.finish(task, "failed", reason=str(error), error=error)


def _submit(run: _Run, backend: Backend, decision: Decision, work: Work, number: int) -> None:
    now = time.perf_counter()
    if run.bus.wants(TaskStarted):  # only views and hooks take it
        run.bus.emit(
            TaskStarted(
                run.run_id, now, task=decision.task, reason=decision.reason, backend=backend.name, attempt=number
            )
        )
    deadline = now + work.timeout if work.timeout else None
    attempt = _Attempt(decision, work, number, now, deadline)
    run.submitting = decision.task  # an inline backend runs it inside `submit`: Ctrl-C may land there
    if work.slices:  # a map task's elements, on several workers at once
        settle = work.progress.settle if work.progress is not None else None
        future = gather([backend.submit(slice_) for slice_ in work.slices], on_slice=settle)
    else:
        future = run.waiter.submit(backend, work)
    run.submitting = None
    run.running[future] = attempt


def _load(run: _Run, decision: Decision) -> bool:
    """Load a cached value; a ``fresh`` one (already in memory) takes no time and saves none."""
    started = time.perf_counter()
    if not run.ctx.load(decision):
        return False
    loaded = decision.action == "load"
    saved = decision.entry.duration if loaded and decision.entry is not None else 0.0
    duration = time.perf_counter() - started if loaded else 0.0
    if loaded:
        run.report.loaded.append(decision.task)
    costs = Costs(started, duration)
    run.finish(decision.task, "cached", costs=costs, saved=saved, worker=current_lane(), in_memory=not loaded)
    return True


def _complete(run: _Run, backend: Backend, future: Future[Outcome], keep_going: bool) -> None:
    attempt = run.running.pop(future)
    decision, outcome = attempt.decision, future.result()
    costs = outcome.costs
    if outcome.remote:  # a worker's clock may not be ours: place the span by when the kernel saw it end
        costs = replace(costs, started=max(attempt.submitted, time.perf_counter() - costs.duration))
        outcome = replace(outcome, costs=costs)
    timeout = attempt.work.timeout
    if outcome.error is None and timeout and costs.duration > timeout:  # not interruptible: its result is late
        outcome = replace(outcome, error=TaskTimedOut(decision.task, timeout))
    if outcome.error is not None:
        _failed(run, backend, attempt, outcome, keep_going)
        return
    committed = run.ctx.commit(decision, outcome)
    if outcome.interrupted:  # its value is kept in memory, never cached; nothing new starts
        run.stopped, run.interrupted = True, run.interrupted or decision.task
        reason = "it caught Ctrl-C; not cached"
        run.finish(decision.task, "interrupted", reason, costs.time_only(), worker=outcome.lane, attempt=attempt.number)
        return
    run.finish(
        decision.task,
        "done",
        decision.reason,
        committed.outcome.costs,  # a map task's: the size of its assembled value
        nbytes=committed.nbytes,
        worker=outcome.lane,
        attempt=attempt.number,
        items=committed.outcome.items,
    )


def _failed(run: _Run, backend: Backend, attempt: _Attempt, outcome: Outcome, keep_going: bool) -> None:
    task, error = attempt.decision.task, outcome.error
    assert error is not None
    if attempt.number <= attempt.work.retries and not run.stopped:
        run.report.attempts[task] = attempt.number + 1
        _submit(run, backend, attempt.decision, run.ctx.prepare(attempt.decision), attempt.number + 1)
        return
    run.report.errors[task] = error
    run.stopped = run.stopped or not keep_going
    status: Status = "timed-out" if isinstance(error, TaskTimedOut) else "failed"
    costs = outcome.costs.time_only()
    run.finish(task, status, attempt.decision.reason, costs, error=error, worker=outcome.lane, attempt=attempt.number)


def _expire(run: _Run, backend: Backend, keep_going: bool) -> None:
    """Give up on tasks past their deadline (a worker cannot be interrupted; its result is ignored)."""
    now = time.perf_counter()
    for future, attempt in list(run.running.items()):
        if attempt.deadline is not None and now >= attempt.deadline and not future.done():
            future.cancel()
            del run.running[future]
            error = TaskTimedOut(attempt.decision.task, attempt.work.timeout or 0.0)
            outcome = Outcome(error=error, costs=Costs(attempt.submitted, now - attempt.submitted))
            _failed(run, backend, attempt, outcome, keep_going)


def _cancel_rest(run: _Run) -> None:
    """The run stopped early (Ctrl-C, cancellation): what was running and what never started is cancelled."""
    for future, attempt in list(run.running.items()):
        future.cancel()
        _stop(run, attempt.decision.task, "cancelled", "it was running")
    run.running.clear()
    if run.submitting is not None and run.submitting not in run.report.statuses:
        _stop(run, run.submitting, "cancelled", "it was running")
    for task in run.order:
        if task not in run.report.statuses:
            blocker = run.blocker(task)
            if blocker is not None:
                _stop(run, task, "skipped", f"upstream {blocker} {run.report.statuses[blocker]}")
            else:
                _stop(run, task, "cancelled", "the run was interrupted")


def _stop(run: _Run, task: str, status: Status, reason: str) -> None:
    run.report.statuses[task] = status
    run.report.reasons[task] = reason
    run.announce(TaskFinished(run.run_id, time.perf_counter(), task=task, status=status, reason=reason))
