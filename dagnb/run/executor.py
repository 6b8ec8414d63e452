"""Runs tasks: a ready queue fed by completions, over a pluggable backend.

A task is submitted as soon as every upstream task is done (never level by
level). Before it starts, its key is computed from the *actual*
fingerprints of its upstream tasks, so a rerun that produced an identical
value lets its dependents load from cache (early cutoff). With more than
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

import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import replace

from dagnb.errors import RunInterrupted, TaskInterrupted, TaskNotRun, TaskTimedOut
from dagnb.events import Costs, EventBus, RunFinished, RunStarted, TaskFinished, TaskStarted
from dagnb.plan import Decision
from dagnb.report import RunReport  # moved to dagnb.report; importable from here too
from dagnb.run.aio import complete_now
from dagnb.run.backends import (
    Backend,
    InlineBackend,
    ThreadBackend,
    current_lane,
    gather,
    make_backend,
)
from dagnb.run.heap import run_heap
from dagnb.run.state import Attempt, RunContext, RunState
from dagnb.run.waiters import Blocking, OnLoop
from dagnb.run.work import Outcome, Work
from dagnb.status import Status

__all__ = [
    "Backend",
    "InlineBackend",
    "Outcome",
    "RunContext",
    "RunReport",
    "ThreadBackend",
    "Work",
    "current_lane",
    "execute",
    "execute_async",
    "make_backend",
]


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
    run = RunState(ctx, order, bus or EventBus(), run_id, backend.jobs)
    with run_heap(len(order)):
        return complete_now(_drive(run, backend, Blocking(), force, keep_going))


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
    run = RunState(ctx, order, bus or EventBus(), run_id, backend.jobs)
    with run_heap(len(order)):
        return await _drive(run, backend, OnLoop(), force, keep_going)


async def _drive(
    run: RunState, backend: Backend, waiter: Blocking | OnLoop, force: frozenset[str], keep_going: bool
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


def _start_ready(run: RunState, backend: Backend, force: frozenset[str], keep_going: bool) -> None:
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


def _fail_now(run: RunState, task: str, error: BaseException, keep_going: bool) -> None:
    """A failure before the task body ran (its condition raised, an input could not be used)."""
    run.report.errors[task] = error
    run.stopped = run.stopped or not keep_going
    run.finish(task, "failed", reason=str(error), error=error)


def _submit(run: RunState, backend: Backend, decision: Decision, work: Work, number: int) -> None:
    now = time.perf_counter()
    if run.bus.wants(TaskStarted):  # only views and hooks take it
        run.bus.emit(
            TaskStarted(
                run.run_id, now, task=decision.task, reason=decision.reason, backend=backend.name, attempt=number
            )
        )
    deadline = now + work.timeout if work.timeout else None
    attempt = Attempt(decision, work, number, now, deadline)
    run.submitting = decision.task  # an inline backend runs it inside `submit`: Ctrl-C may land there
    if work.slices:  # a map task's elements, on several workers at once
        settle = work.progress.settle if work.progress is not None else None
        future = gather([backend.submit(slice_) for slice_ in work.slices], on_slice=settle)
    else:
        future = run.waiter.submit(backend, work)
    run.submitting = None
    run.running[future] = attempt


def _load(run: RunState, decision: Decision) -> bool:
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


def _complete(run: RunState, backend: Backend, future: Future[Outcome], keep_going: bool) -> None:
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


def _failed(run: RunState, backend: Backend, attempt: Attempt, outcome: Outcome, keep_going: bool) -> None:
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


def _expire(run: RunState, backend: Backend, keep_going: bool) -> None:
    """Give up on tasks past their deadline (a worker cannot be interrupted; its result is ignored)."""
    now = time.perf_counter()
    for future, attempt in list(run.running.items()):
        if attempt.deadline is not None and now >= attempt.deadline and not future.done():
            future.cancel()
            del run.running[future]
            error = TaskTimedOut(attempt.decision.task, attempt.work.timeout or 0.0)
            outcome = Outcome(error=error, costs=Costs(attempt.submitted, now - attempt.submitted))
            _failed(run, backend, attempt, outcome, keep_going)


def _cancel_rest(run: RunState) -> None:
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


def _stop(run: RunState, task: str, status: Status, reason: str) -> None:
    run.report.statuses[task] = status
    run.report.reasons[task] = reason
    run.announce(TaskFinished(run.run_id, time.perf_counter(), task=task, status=status, reason=reason))
