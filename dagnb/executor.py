"""Runs tasks: a ready queue fed by completions, over a pluggable backend.

A task is submitted as soon as every upstream task is done (never level by
level). Before it starts, its key is computed from the *actual* output
fingerprints of its upstream tasks, so a rerun that produced an identical
output lets its dependents load from cache (early cutoff).

Invariants:

* Each task is decided, then loaded or run, at most once per run.
* A task whose upstream failed, was skipped or cancelled is ``skipped``.
* After the first failure no new task starts unless ``keep_going``; tasks
  that never started are ``cancelled``. The same on KeyboardInterrupt, which
  is re-raised once the report is complete; every finished result is kept.
* Only the caller's thread commits results (cache writes, namespace binding).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from html import escape
from typing import Any, Protocol

from .events import EventBus, RunFinished, RunStarted, TaskFinished, TaskStarted
from .plan import Decision

__all__ = ["Backend", "InlineBackend", "Outcome", "RunReport", "ThreadBackend", "current_lane", "execute", "make_backend"]


@dataclass
class Outcome:
    """What running one task produced (in a worker)."""

    value: Any = None
    output: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    error: BaseException | None = None
    started: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    output_bytes: int = 0
    worker: str = "main"


def current_lane() -> str:
    """The trace lane of the calling thread: ``main`` for the caller's, else the thread's name."""
    thread = threading.current_thread()
    return "main" if thread is threading.main_thread() else thread.name


def _in_lane(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
    def call() -> Outcome:
        outcome = fn()
        outcome.worker = current_lane()
        return outcome

    return call


class Backend(Protocol):
    """Where task bodies run: ``submit`` returns a future of an :class:`Outcome`."""

    name: str
    jobs: int

    def submit(self, fn: Callable[[], Outcome]) -> Future[Outcome]: ...

    def shutdown(self) -> None: ...


class InlineBackend:
    """Runs each task at once in the caller's thread: the reference backend."""

    name = "inline"
    jobs = 1

    def submit(self, fn: Callable[[], Outcome]) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        future.set_result(fn())  # KeyboardInterrupt propagates to the run loop
        return future

    def shutdown(self) -> None:
        pass


class ThreadBackend:
    """Runs tasks on a pool of threads (for tasks that release the GIL or wait on I/O)."""

    name = "threads"

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="dagnb")

    def submit(self, fn: Callable[[], Outcome]) -> Future[Outcome]:
        return self._pool.submit(fn)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_backend(name: str | None, jobs: int = 1) -> Backend:
    """A backend by name: ``inline`` (default) or ``threads``."""
    if name in (None, "inline"):
        return InlineBackend()
    if name == "threads":
        return ThreadBackend(jobs)
    from .errors import DagnbError

    raise DagnbError(f"There is no backend `{name}`. Use `inline` (the default) or `threads`.")


class RunContext(Protocol):
    """What the executor needs from a session."""

    def upstream(self, task: str) -> list[str]: ...

    def decide(self, task: str, force: frozenset[str]) -> Decision: ...

    def load(self, decision: Decision) -> bool: ...

    def prepare(self, decision: Decision) -> Callable[[], Outcome]: ...

    def commit(self, decision: Decision, outcome: Outcome) -> int: ...


@dataclass
class RunReport:
    """What a run did, task by task (``statuses`` keeps upstream-first order)."""

    statuses: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    saved: dict[str, float] = field(default_factory=dict)  # compute time each cache load avoided
    run_id: int = 0
    wall_time: float = 0.0
    stale: list[str] = field(default_factory=list)

    def _with(self, status: str) -> list[str]:
        return [t for t, s in self.statuses.items() if s == status]

    @property
    def executed(self) -> list[str]:
        """Tasks whose function ran to completion in this run."""
        return self._with("done")

    @property
    def cached(self) -> list[str]:
        return self._with("cached")

    @property
    def failed(self) -> list[str]:
        return self._with("failed")

    @property
    def skipped(self) -> list[str]:
        return self._with("skipped")

    @property
    def cancelled(self) -> list[str]:
        return self._with("cancelled")

    @property
    def ok(self) -> bool:
        return not (self.failed or self.skipped or self.cancelled)

    def line(self, task: str) -> str:
        """``clean: ran (code changed)`` — deterministic, no timings."""
        status = self.statuses[task]
        word = {"done": "ran", "cached": "cached"}.get(status, status)
        reason = self.reasons.get(task, "")
        return f"{task}: {word} ({reason})" if reason and status != "cached" else f"{task}: {word}"

    def summary(self) -> str:
        counts = [(len(self.executed), "ran"), (len(self.cached), "cached")]
        counts += [(len(self._with(s)), s) for s in ("failed", "skipped", "cancelled")]
        return "run: " + ", ".join(f"{n} {word}" for n, word in counts if n or word in ("ran", "cached"))

    def render_text(self) -> str:
        lines = [self.summary(), *(f"  {self.line(t)}" for t in self.statuses)]
        if self.stale:
            lines.append(f"  now stale: {', '.join(self.stale)}")
        return "\n".join(lines)

    def render_html(self) -> str:
        items = "".join(f"<li><code>{escape(self.line(t))}</code></li>" for t in self.statuses)
        return f"<div class='dagnb-report'><b>{escape(self.summary())}</b><ul>{items}</ul></div>"

    def merge(self, later: RunReport) -> RunReport:
        """Add the tasks of a later run (auto mode's downstream run); this run's word wins."""
        for name in ("statuses", "reasons", "durations", "errors", "saved"):
            mine = getattr(self, name)
            for task, value in getattr(later, name).items():
                mine.setdefault(task, value)
        return self

    def __repr__(self) -> str:
        return self.render_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": self.render_html()}


class _Run:
    """The state of one run: statuses, the ready queue, in-flight futures."""

    def __init__(self, ctx: RunContext, order: Sequence[str], bus: EventBus, run_id: int) -> None:
        self.ctx, self.bus, self.run_id = ctx, bus, run_id
        self.report = RunReport(run_id=run_id)
        members = set(order)
        self.waiting = {t: {u for u in ctx.upstream(t) if u in members} for t in order}
        self.children: dict[str, list[str]] = {t: [] for t in order}
        for t in order:
            for u in self.waiting[t]:
                self.children[u].append(t)
        self.ready = deque(t for t in order if not self.waiting[t])
        self.order = list(order)
        self.running: dict[Future[Outcome], tuple[Decision, float]] = {}
        self.stopped = False

    def finish(self, task: str, status: str, duration: float = 0.0, reason: str = "", **extra: Any) -> None:
        self.report.statuses[task] = status
        self.report.durations[task] = duration
        if reason:
            self.report.reasons[task] = reason
        if extra.get("saved"):
            self.report.saved[task] = extra["saved"]
        self.bus.emit(
            TaskFinished(self.run_id, time.perf_counter(), task=task, status=status, duration=duration, reason=reason, **extra)
        )
        for child in self.children[task]:
            self.waiting[child].discard(task)
            if not self.waiting[child]:
                self.ready.append(child)

    def blocked_by_failure(self, task: str) -> bool:
        bad = ("failed", "skipped", "cancelled")
        return any(self.report.statuses.get(u) in bad for u in self.ctx.upstream(task))


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
    """Bring every task of ``order`` (upstream first) up to date."""
    backend = backend or InlineBackend()
    run = _Run(ctx, order, bus or EventBus(), run_id)
    started = time.perf_counter()
    edges = {t: tuple(ups) for t, ups in run.waiting.items()}
    run.bus.emit(RunStarted(run_id, started, tasks=tuple(order), upstream=edges))
    try:
        while run.ready or run.running:
            _start_ready(run, backend, force, keep_going)
            if run.running:
                done, _ = wait(list(run.running), return_when=FIRST_COMPLETED)
                for future in done:
                    _complete(run, future, keep_going)
    except KeyboardInterrupt:
        _cancel_rest(run)
        raise
    finally:
        _cancel_rest(run)
        run.report.statuses = {t: run.report.statuses[t] for t in order}
        run.report.wall_time = time.perf_counter() - started
        run.bus.emit(RunFinished(run_id, time.perf_counter(), duration=run.report.wall_time))
    return run.report


def _start_ready(run: _Run, backend: Backend, force: frozenset[str], keep_going: bool) -> None:
    while run.ready and len(run.running) < backend.jobs:
        task = run.ready.popleft()
        if run.blocked_by_failure(task):
            run.finish(task, "skipped", reason="an upstream task failed")
            continue
        if run.stopped:
            run.finish(task, "cancelled", reason="the run stopped at a failure")
            continue
        decision = run.ctx.decide(task, force)
        if decision.action in ("fresh", "load") and _load(run, decision):
            continue
        if decision.action == "load":  # the load failed: the value is recomputed
            decision = type(decision)(task, "run", ("not in cache",), decision.key)
        run.bus.emit(TaskStarted(run.run_id, time.perf_counter(), task=task, reason=decision.reason, worker=backend.name))
        future = backend.submit(_in_lane(run.ctx.prepare(decision)))
        run.running[future] = (decision, time.perf_counter())


def _load(run: _Run, decision: Decision) -> bool:
    """Load a cached value; a ``fresh`` one (already in memory) takes no time and saves none."""
    started = time.perf_counter()
    if not run.ctx.load(decision):
        return False
    loaded = decision.action == "load"
    saved = decision.entry.duration if loaded and decision.entry is not None else 0.0
    duration = time.perf_counter() - started if loaded else 0.0
    run.finish(decision.task, "cached", duration, started=started, saved=saved, worker=current_lane(),
               in_memory=not loaded)
    return True


def _complete(run: _Run, future: Future[Outcome], keep_going: bool) -> None:
    decision, _ = run.running.pop(future)
    outcome = future.result()
    if outcome.error is not None:
        run.report.errors[decision.task] = outcome.error
        run.stopped = run.stopped or not keep_going
        run.finish(decision.task, "failed", outcome.duration, decision.reason, error=outcome.error,
                   started=outcome.started, worker=outcome.worker, cpu_time=outcome.cpu_time)
        return
    nbytes = run.ctx.commit(decision, outcome)
    run.finish(
        decision.task, "done", outcome.duration, decision.reason, nbytes=nbytes, started=outcome.started,
        worker=outcome.worker, cpu_time=outcome.cpu_time, peak_memory=outcome.peak_memory,
        output_bytes=outcome.output_bytes,
    )


def _cancel_rest(run: _Run) -> None:
    for future, (decision, _) in list(run.running.items()):
        future.cancel()
        run.report.statuses[decision.task] = "cancelled"
        run.bus.emit(TaskFinished(run.run_id, time.perf_counter(), task=decision.task, status="cancelled"))
    run.running.clear()
    for task in run.order:
        if task not in run.report.statuses:
            status = "skipped" if run.blocked_by_failure(task) else "cancelled"
            run.report.statuses[task] = status
            run.bus.emit(TaskFinished(run.run_id, time.perf_counter(), task=task, status=status))
