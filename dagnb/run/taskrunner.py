"""The per-run :class:`TaskRunner`: what the executor calls back during one run of a session.

A :class:`~dagnb.api.Graph` makes one for each ``run``/``arun`` and hands it
to the executor as its :class:`~dagnb.run.executor.RunContext`. The runner
owns what lives for one run only; the graph keeps what outlives it
(definitions, values, statuses, freshness, the input guard).

Invariants:

* The session's bookkeeping (:meth:`TaskRunner.record`) is an explicit call
  the executor makes before observers hear of the event; no observer can
  stop it.
* A task's decision is kept from :meth:`~TaskRunner.decide` until its end is
  recorded, when it may mark the task fresh.
* A map task's plan (its elements, which of them the cache lacks) is kept
  from :meth:`~TaskRunner.prepare` until its outcome is committed.
* A value changed in place that could not be put back is forgotten when
  the run ends, so the next run recomputes it.
* Only the caller's thread commits (see :mod:`dagnb.run.commit`).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from dagnb.cache.base import CacheEntry, CacheMiss, MemoryStore, TaskRecord
from dagnb.errors import DagnbCacheWarning, InputDamaged, InputMutated, InputUnreadable, RunInterrupted
from dagnb.events import Event, EventBus, RunFinished, RunStarted, TaskFinished, TaskProgress
from dagnb.plan import Decision, Result, decide
from dagnb.run import commit as committing
from dagnb.run.backends import Backend, CountingWhenArmed, ThreadBackend
from dagnb.run.body import run_body, run_body_async
from dagnb.run.executor import RunReport, execute, execute_async
from dagnb.run.map_work import map_slices, plan_map, slice_sizes
from dagnb.run.mapping import ItemProgress, MapPlan, await_items, call_items
from dagnb.run.work import Committed, Outcome, Work
from dagnb.status import WITH_VALUE, Status

if TYPE_CHECKING:
    from dagnb.graph import TaskSpec
    from dagnb.run.host import Host

__all__ = ["TaskRunner"]


class _How(TypedDict):
    """How a run goes: the keyword arguments of ``execute`` and ``execute_async``."""

    backend: Backend
    bus: EventBus
    force: frozenset[str]
    keep_going: bool
    run_id: int


class TaskRunner:
    """One run of a session, as the executor sees it (its ``RunContext``).

    Responsibilities:
        * decide each task (its key from its upstream's actual fingerprints, the
          input guard, a ``--when`` condition), load a cached value, prepare
          a task body (split into slices for a map task), commit an outcome;
        * keep the run's own state: decisions, cache hits, damaged values,
          map plans, the run's start and finished tasks;
        * record the run in the session: statuses, freshness, the history.
    """

    def __init__(self, graph: Host, run_id: int = 0, jobs: int = 1) -> None:
        self.graph = graph
        self.run_id = run_id
        self.jobs = jobs  # workers of the run's backend: a map task splits its elements over them
        self.decided: dict[str, Decision] = {}  # until each task's end is recorded
        self.touched: list[tuple[str, float]] = []  # cache loads: (key, time saved)
        self.damaged: set[str] = set()  # values changed in place by a task, to forget when the run ends
        self.maps: dict[str, MapPlan] = {}  # a running map task's items, from prepare to commit
        self.started = 0.0
        self.finished: list[TaskFinished] = []  # for the history
        self.report: RunReport | None = None  # the run's report once it ended, complete or not
        self._interrupts = CountingWhenArmed()  # Ctrl-C counted from the first task body on (see `prepare`)

    async def execute(
        self, order: list[str], backend: Backend, force: frozenset[str], keep_going: bool, awaited: bool
    ) -> RunReport:
        """Run ``order`` (upstream first); the session's ``last_run`` is its report, also when it stops early."""
        graph = self.graph
        how = _How(backend=backend, bus=graph.bus, force=force, keep_going=keep_going, run_id=self.run_id)
        try:
            with self._interrupts:
                report = await execute_async(self, order, **how) if awaited else execute(self, order, **how)
        except RunInterrupted as stop:  # Ctrl-C (TaskInterrupted: a task caught it): the report is complete
            graph.last_run = stop.report
            raise
        except asyncio.CancelledError:  # an awaited run, cancelled: its report came with RunFinished
            graph.last_run = self.report
            raise
        finally:
            if isinstance(backend, ThreadBackend):
                backend.shutdown()
        graph.last_run = report
        return report

    # ------------------------------------------------------- what it reads

    def upstream(self, task: str) -> list[str]:
        return self.graph.tasks.upstream(task)

    def optional(self, task: str, param: str) -> bool:
        return param in self.graph.tasks.specs[task].defaults

    def is_async(self, task: str) -> bool:
        return self.graph.tasks.specs[task].is_async

    def estimates(self, tasks: Sequence[str]) -> dict[str, float]:
        return self.graph.estimates(tasks)

    # -------------------------------------------------------------- decide

    def decide(self, task: str, force: frozenset[str], skipped: frozenset[str] = frozenset()) -> Decision:
        graph = self.graph
        spec = graph.tasks.specs[task]
        upstream = graph.tasks.upstream(task)
        damaged = [u for u in upstream if u in self.damaged] if self.damaged else []
        if damaged:  # a task changed it in place and there is no copy to put back: do not feed it on
            raise InputDamaged(task, damaged[0])
        defaulted = frozenset(skipped & spec.defaults.keys()) if skipped else frozenset()
        ups = {u: graph.results[u].fingerprint for u in upstream if u not in defaulted}
        decision = self._decide(task, ups, force, defaulted)
        if upstream and (decision.action == "run" or spec.when):
            read = [u for u in upstream if u not in defaulted]
            graph._guard.iterators(task, read)
            if graph.verify_inputs and graph._guard.before(task, read):  # recomputed with another fingerprint: new key
                decision = self._decide(task, {u: graph.results[u].fingerprint for u in read}, force, defaulted)
        if spec.when and decision.key is not None:
            from dagnb.run.condition import condition_holds

            if not condition_holds(task, spec.when, self._inputs(task, decision)):
                return Decision(task, "skip", (f"condition `{spec.when}` is false",), decision.key)
        self.decided[task] = decision
        return decision

    def _decide(self, task: str, ups: dict[str, str], force: frozenset[str], defaulted: frozenset[str]) -> Decision:
        try:
            return decide(self.graph, task, ups, force, defaulted)
        except InputUnreadable as exc:  # an input file could not be read: this task's failure, not the run's
            raise InputUnreadable(exc.path, exc.error, task) from None

    def _inputs(self, task: str, decision: Decision) -> dict[str, Any]:
        assert decision.key is not None
        tasks, results = self.graph.tasks, self.graph.results
        upstream, hidden = tasks.upstream(task), tasks.hidden(task)
        params = upstream[: len(upstream) - len(hidden)]  # tasks read as globals are not arguments
        kwargs = {p: results[p].value for p in params if p not in decision.key.values}
        kwargs.update(decision.key.values)
        return kwargs

    # ---------------------------------------------------------------- load

    def load(self, decision: Decision) -> bool:
        graph = self.graph
        if decision.action == "fresh":  # rebind: the user may have overwritten the variable
            graph._bind(decision.task, graph.results[decision.task])
            self._resave(decision.task)
            return True
        assert decision.entry is not None and decision.key is not None
        try:
            value = graph.store.load(decision.entry)
        except CacheMiss as miss:
            committing.warn_about(
                graph.tasks.specs.get(decision.task),
                f"The cached value of task `{decision.task}` cannot be used: {miss.reason}. dagnb recomputes it.",
                DagnbCacheWarning,
            )
            return False
        self.touched.append((decision.key.key, decision.entry.duration))
        graph._bind(decision.task, Result(decision.key.key, decision.entry.fingerprint, value, decision.entry.captured))
        self._resave(decision.task)
        return True

    def _resave(self, task: str) -> None:
        """On a hit, a ``--save`` copy is written again unless this session wrote this value there, unchanged since."""
        graph = self.graph
        spec = graph.tasks.specs[task]
        if spec.save:
            result = graph.results[task]
            if graph._saved.get(spec.save.format(name=spec.name)) != committing.copy_stamp(spec, result.fingerprint):
                committing.save(graph, spec, result.value, result.fingerprint)

    # ------------------------------------------------------------- prepare

    def prepare(self, decision: Decision) -> Work:
        self._interrupts.arm()  # a body is about to run: one that catches Ctrl-C must be noticed
        graph = self.graph
        spec = graph.tasks.specs[decision.task]
        kwargs = self._inputs(decision.task, decision)
        before = _input_fingerprints(kwargs) if graph.check_mutation else None
        func, slices, progress = spec.func, None, None
        is_async = spec.is_async
        if spec.map:  # only the elements the cache lacks are sent to run, split across the workers
            plan = self.maps[spec.name] = plan_map(graph.store, spec, decision, kwargs.pop(spec.map))
            missing = [plan.items[i] for i in plan.missing]
            before = {p: d for p, d in (before or {}).items() if p != spec.map} or None
            sizes = (
                [len(missing)] if is_async else slice_sizes(len(missing), self.jobs)
            )  # async: all at once on the loop
            progress = ItemProgress(sizes, functools.partial(self._progressed, spec.name))
            func = functools.partial(await_items if is_async else call_items, spec.func, spec.map, missing, progress)
            if len(sizes) > 1:
                slices = map_slices(
                    spec, kwargs, missing, sizes, progress, functools.partial(self._body, spec, kwargs, None)
                )
        work = Work(
            spec.name,
            func,
            kwargs,
            functools.partial(self._body, spec, kwargs, before, func),
            spec.timeout,
            spec.retries,
        )
        work.slices, work.progress = slices, progress
        if is_async:
            work.run_async = functools.partial(run_body_async, func, kwargs, graph.capture)
        return work

    def _body(self, spec: TaskSpec, kwargs: dict[str, Any], before: dict[str, str] | None, func: Any) -> Outcome:
        """A task body run here, then (``check_mutation``) its inputs fingerprinted again."""
        outcome = run_body(func, kwargs, self.graph.capture)
        if before and outcome.error is None and not outcome.interrupted:
            changed = [p for p, fp in before.items() if committing.fingerprint_or_none(kwargs[p]) != fp]
            if changed:
                return Outcome(error=InputMutated(spec.name, changed), costs=outcome.costs.time_only())
        return outcome

    def _progressed(self, task: str, done: int, total: int) -> None:
        self.graph.bus.emit(TaskProgress(self.run_id, time.perf_counter(), task=task, done=done, total=total))

    # -------------------------------------------------------------- commit

    def commit(self, decision: Decision, outcome: Outcome) -> Committed:
        return committing.commit(self, decision, outcome)

    # ---------------------------------------------------------- bookkeeping

    def record(self, event: Event) -> None:
        """The session's bookkeeping of the run (the executor calls it before the observers hear of the event)."""
        self.graph._epoch.saw(event)  # a run ends the epoch's plan; a task body, its fingerprints too
        if isinstance(event, TaskFinished):  # the common case first: one per task
            self._task_finished(event)
        elif isinstance(event, RunStarted):
            self.started, self.finished = time.time(), []
            self.graph.store.begin_batch()  # values are written off the run loop, and are durable when it returns
        elif isinstance(event, RunFinished):
            self._run_finished(event)

    def _task_finished(self, event: TaskFinished) -> None:
        statuses = self.graph.statuses
        self.finished.append(event)
        if isinstance(event.error, InputMutated):
            for param in event.error.params:
                self._restore(param)
        kept = event.in_memory and statuses.get(event.task) in WITH_VALUE
        if not kept:  # a value already in memory keeps saying how it got there
            statuses[event.task] = event.status
        self._settle(event.task, event.status)

    def _run_finished(self, event: RunFinished) -> None:
        graph = self.graph
        self.report = event.report
        for param in self.damaged:  # not restorable: forgotten everywhere, so the next run recomputes it
            result = graph.results.pop(param, None)
            graph.freshness.changed(param)
            graph.namespace.pop(param, None)
            if result is not None:
                graph.store.discard_value(result.fingerprint)
        self.damaged.clear()
        for entry, exc in graph.store.flush():
            committing.not_stored(graph, entry, exc)
        hits, self.touched = self.touched, []
        try:
            graph.store.settle_run(hits, self.started, time.time(), self._history_rows(), later=graph.record_later)
        except sqlite3.Error as exc:  # a full disk: the values are fine, the bookkeeping waits
            warnings.warn(
                f"dagnb could not record this run in the cache ({exc}); values are unaffected.",
                DagnbCacheWarning,
                stacklevel=2,
            )

    def _history_rows(self) -> list[TaskRecord]:
        rows = []
        for e in self.finished:
            result = self.graph.results.get(e.task) if e.status in WITH_VALUE else None
            rows.append(
                TaskRecord(
                    e.task,
                    e.status,
                    e.reason,
                    result.key if result else None,
                    result.fingerprint if result else None,
                    e.duration,
                    e.worker,
                )
            )
        return rows

    def _settle(self, task: str, status: Status) -> None:
        """A task's end in a run: fresh when its bound value is what its key gives and it may be (see freshness.py)."""
        graph = self.graph
        decision = self.decided.pop(task, None)
        result = graph.results.get(task)
        if status not in WITH_VALUE or decision is None or decision.key is None or result is None:
            graph.freshness.changed(task)
            return
        spec = graph.tasks.specs.get(task)
        info = decision.key
        if spec is None or spec.volatile or info.untracked or info.key != result.key:
            graph.freshness.changed(task)
            return
        if graph.freshness.mark(task, graph._reads(task, spec)):
            graph._fresh[task] = Decision(
                task, "fresh", ("cached",), info, CacheEntry(info.key, task, result.fingerprint)
            )

    def _restore(self, task: str) -> None:
        """Put back the value a task damaged in place, from the disk cache when it has a copy."""
        graph = self.graph
        result = graph.results.get(task)
        if result is not None and not isinstance(graph.store, MemoryStore):
            try:  # by the fingerprint it had: a volatile task's key may since hold another
                value = graph.store.load(CacheEntry(result.key, task, result.fingerprint))
                graph._bind(task, Result(result.key, result.fingerprint, value, result.captured))
                return
            except CacheMiss:
                pass
        self.damaged.add(task)


def _input_fingerprints(kwargs: dict[str, Any]) -> dict[str, str]:
    """What each input's fingerprint is before the task runs (unfingerprintable inputs are left out)."""
    found = {}
    for param, value in kwargs.items():  # the value as it is now: an earlier task may have damaged it
        digest = committing.fingerprint_or_none(value)
        if digest is not None:
            found[param] = digest
    return found
