"""`Graph`: tasks, their values and their cache, in one session.

This is the Python API the magics are glue over: ``graph.task`` defines,
``graph.run`` brings targets up to date, ``graph.plan`` and ``graph.why``
explain. Values live in ``graph.results`` and, when a namespace is given
(the notebook's), are bound there under each task's name.
"""

from __future__ import annotations

import functools
import itertools
import os
import sqlite3
import time
import warnings
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from .capture import OutputLog, capture_streams, replay_streams
from .codehash import helper_sources
from .costs import measure, value_nbytes
from .errors import (
    CommandError,
    InputDamaged,
    DagnbCacheWarning,
    DagnbSaveWarning,
    InputMutated,
    TaskFailed,
    Unfingerprintable,
    UnfingerprintableWarning,
    UnpicklableOutputWarning,
)
from .events import Event, EventBus, GraphChanged, RunFinished, RunStarted, TaskFinished, TaskProgress
from .history import History, RunDiff, diff_runs
from .mapping import ItemProgress, MapPlan, assemble, await_items, call_items, plan_items
from .backends import DaskBackend, ThreadBackend, Work
from .aio import complete_now
from .executor import Backend, Outcome, RunReport, execute, execute_async, make_backend
from .graph import TaskGraph, TaskSpec, spec_from_function
from .hashing import fingerprint
from .plan import Decision, Plan, Result, decide, plan_run
from .runlog import ForgedRun
from .store import CacheEntry, CacheMiss, MemoryStore, Pruned, RunRecord, Store, TaskRecord, open_store
from .trace import Trace, TraceRecorder

if TYPE_CHECKING:
    from .overview import Overview

__all__ = ["Graph", "Why"]

_OWN = frozenset({"python", "code"})  # key parts that name no helper, global or module


@dataclass(frozen=True)
class Why:
    """The answer to ``%dag why TASK``."""

    task: str
    stale: bool
    reasons: tuple[str, ...]

    def render_text(self) -> str:
        if not self.stale:
            return f"{self.task} is up to date: its key is unchanged."
        return f"{self.task} is stale: " + "; ".join(self.reasons) + "."

    __str__ = render_text

    def __repr__(self) -> str:
        return self.render_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": f"<code>{escape(self.render_text())}</code>"}


def _fingerprint_or_none(value: Any) -> str | None:
    try:
        return fingerprint(value)
    except Unfingerprintable:
        return None


class Graph:
    """A DAG of tasks with an incremental, cached ``run``.

    Args:
        cache_dir: where the disk cache lives; ``None`` keeps the cache in memory.
        namespace: a mapping to bind task values into (a notebook's ``user_ns``).
        store: a ready-made :class:`~dagnb.store.Store` (overrides ``cache_dir``).
    """

    def __init__(
        self,
        cache_dir: str | None = None,
        namespace: MutableMapping[str, Any] | None = None,
        store: Store | None = None,
    ) -> None:
        self.tasks = TaskGraph()
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.store = store if store is not None else open_store(cache_dir)
        self.results: dict[str, Result] = {}
        self.bus = EventBus()
        self.last_run: RunReport | None = None
        self.last_history_id = 0  # the id the history gives the latest run
        self.mode = "lazy"
        self.capture: Callable[[], AbstractContextManager[OutputLog]] = capture_streams
        self.replay: Callable[[list[dict[str, Any]]], None] = replay_streams
        self._run_ids = itertools.count(1)
        self._run_id = 0  # the current (or last) run's id
        self._unhashable_warned: set[str] = set()
        self._touched: list[tuple[str, float]] = []  # cache loads of the current run: (key, time saved)
        self.statuses: dict[str, str] = {}  # each task's status at the end of its latest run
        self.force_once: set[str] = set()  # tasks to rerun the next time a run reaches them
        self.check_mutation = False  # debug mode: re-fingerprint a task's inputs after it runs
        self._damaged: set[str] = set()  # values changed in place by a task, to forget when the run ends
        self._maps: dict[str, MapPlan] = {}  # a running map task's items, from prepare to commit
        self._run_jobs = 1  # workers of the current run's backend: a map task splits its elements over them
        self.backend: str | Backend = "inline"  # where `run` sends tasks when not told
        self.jobs = 1
        self._backends: dict[tuple[str, int], Backend] = {}  # worker pools and clusters, reused across runs
        self._run_started = 0.0
        self._run_tasks: list[TaskFinished] = []  # this run's finished tasks, for the history
        self._recorder = TraceRecorder()
        recorded = (RunStarted, TaskFinished, RunFinished)
        self.bus.subscribe(self._on_event, recorded)  # first, so views see a settled session
        self.bus.subscribe(self._recorder, recorded)

    # ------------------------------------------------------------ definition

    def task(
        self,
        func: Callable[..., Any] | None = None,
        *,
        volatile: bool = False,
        retries: int = 0,
        timeout: float | None = None,
        save: str | None = None,
        when: str | None = None,
        map: str | None = None,  # noqa: A002 - the option's name in `%%task --map`
    ) -> Any:
        """Decorator: ``@graph.task`` or ``@graph.task(retries=2, timeout=60, save="out/{name}.csv", when="n > 0")``."""

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            self.add(spec_from_function(fn, volatile=volatile, retries=retries, timeout=timeout, save=save, when=when,
                                        map=map))
            return fn

        return register(func) if func is not None else register

    def add(self, spec: TaskSpec) -> TaskSpec | None:
        """Add or replace a task; a replaced task's in-memory value is kept until it reruns."""
        replaced = self.tasks.add(spec)
        self._changed(spec.name)
        return replaced

    def _changed(self, *names: str) -> None:
        self.bus.emit(GraphChanged(0, time.perf_counter(), tasks=names))

    def check(self, name: str) -> None:
        """Raise now if any parameter of ``name`` (or of a task upstream) cannot resolve."""
        self._validate([name])

    def drop(self, name: str) -> TaskSpec:
        """Remove a task, its value and its binding (its cache entries stay)."""
        spec = self.tasks.drop(name)
        if self.results.pop(name, None) is not None:
            self.namespace.pop(name, None)
        self.statuses.pop(name, None)
        self._changed(name)
        return spec

    def __getitem__(self, name: str) -> Any:
        """The current value of task ``name`` (run it first)."""
        self.tasks.get(name)
        return self.results[name].value

    # -------------------------------------------------------------- planning

    def upstream(self, task: str) -> list[str]:
        return self.tasks.upstream(task)

    @property
    def trace(self) -> Trace | None:
        """The trace (Gantt data and critical path) of the latest run."""
        return self._recorder.last

    def prune(self, max_bytes: int) -> Pruned:
        """Bound the disk cache to ``max_bytes``, least recently used values first.

        Values this session holds for its tasks are never evicted.
        """
        return self.store.prune(max_bytes, keep={r.output for r in self.results.values()})

    def current_entry(self, task: str) -> CacheEntry | None:
        """The cache entry of the value ``task`` has now, else of the key it last had."""
        result = self.results.get(task)
        if result is not None:
            return self.store.entry(result.key)
        return self.store.head(task)

    def overview(self) -> Overview:
        """A snapshot for display: statuses, plan, costs and the latest trace."""
        from .overview import overview

        return overview(self)

    def plan(self, targets: Iterable[str] | None = None, force: Iterable[str] = ()) -> Plan:
        """What ``run`` would do, without running or loading anything."""
        targets = None if targets is None else list(targets)
        self._validate(targets)
        return plan_run(self, targets, force)

    def why(self, name: str) -> Why:
        """Which part of ``name``'s key changed since it last ran."""
        self.tasks.get(name)
        plan = self.plan([name])
        decision = plan[name]
        if decision.action in ("fresh", "load"):
            return Why(name, False, ())
        return Why(name, True, decision.reasons)  # run, or pending behind a rerunning upstream

    def stale(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` that the next run would (or might) execute."""
        names = list(names)
        if not names:
            return []
        plan = plan_run(self, names)
        wanted = set(names)
        return [t for t in plan.to_run if t in wanted]

    def _validate(self, targets: Iterable[str] | None) -> list[str]:
        """The run order for ``targets``, once every parameter in it resolves."""
        order = self.tasks.order(None if targets is None else list(targets))
        for task in order:
            self.tasks.resolve(task, self.namespace)
        return order

    # --------------------------------------------------------------- running

    def run(
        self,
        targets: Iterable[str] | None = None,
        *,
        force: Iterable[str] = (),
        keep_going: bool = False,
        backend: str | Backend | Any | None = None,
        jobs: int | None = None,
        raise_errors: bool = True,
    ) -> RunReport:
        """Bring ``targets`` (default: every task) up to date, running only stale tasks.

        ``backend`` is ``inline`` (the default), ``threads``, ``processes``,
        ``dask`` (a LocalCluster on 127.0.0.1), ``dask://HOST:PORT``, a
        ``distributed.Client``, or a :class:`~dagnb.backends.Backend`;
        ``jobs`` is how many tasks run at once. Pools and clusters are kept
        for the next run; :meth:`close` ends them.

        Raises:
            TaskFailed: a task raised (after every other result is committed),
                unless ``raise_errors`` is false; the report is ``error.report``.
        """
        return complete_now(self._run(targets, force, keep_going, backend, jobs, raise_errors, awaited=False))

    async def arun(
        self,
        targets: Iterable[str] | None = None,
        *,
        force: Iterable[str] = (),
        keep_going: bool = False,
        backend: str | Backend | Any | None = None,
        jobs: int | None = None,
        raise_errors: bool = True,
    ) -> RunReport:
        """:meth:`run`, awaited: async tasks run on the running event loop (the kernel's, in a notebook).

        Other tasks run as with :meth:`run`; an inline one blocks the loop
        while it runs. Cancelling the awaiting task stops the run (tasks that
        never started are ``cancelled``, every finished result is kept) and
        raises CancelledError.
        """
        return await self._run(targets, force, keep_going, backend, jobs, raise_errors, awaited=True)

    async def _run(self, targets: Iterable[str] | None, force: Iterable[str], keep_going: bool,
                   backend: str | Backend | Any | None, jobs: int | None, raise_errors: bool,
                   awaited: bool) -> RunReport:
        order = self._validate(targets)
        forced = frozenset(self.tasks.get(f).name for f in force) | (self.force_once & set(order))
        chosen = self._backend(backend if backend is not None else self.backend, jobs or self.jobs)
        self._run_jobs = chosen.jobs
        self._run_id = next(self._run_ids)
        how = dict(backend=chosen, bus=self.bus, force=forced, keep_going=keep_going, run_id=self._run_id)
        try:
            report = await execute_async(self, order, **how) if awaited else execute(self, order, **how)
        finally:
            if isinstance(chosen, ThreadBackend):
                chosen.shutdown()
        self.last_run = report
        self.force_once -= set(report.executed)
        if raise_errors and report.errors:
            task, error = next(iter(report.errors.items()))
            failure = TaskFailed(task, error)
            failure.report = report  # type: ignore[attr-defined]
            raise failure from error
        return report

    def _backend(self, backend: str | Backend | Any, jobs: int) -> Backend:
        if not isinstance(backend, str):
            return DaskBackend(backend) if hasattr(backend, "scheduler_info") else backend
        if backend in ("inline", "threads"):
            return make_backend(backend, jobs)
        if (backend, jobs) not in self._backends:
            self._backends[(backend, jobs)] = make_backend(backend, jobs)
        return self._backends[(backend, jobs)]

    def close(self) -> None:
        """End worker pools and clusters this graph started; close the cache."""
        for backend in self._backends.values():
            backend.shutdown()
        self._backends.clear()
        self.store.close()

    def estimates(self, tasks: Sequence[str]) -> dict[str, float]:
        """How long each task took when it last ran (for scheduling); unknown ones are left out."""
        return self.store.last_durations(tasks)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, TaskFinished):  # the common case first: one per task
            self._run_tasks.append(event)
            if isinstance(event.error, InputMutated):
                for param in event.error.params:
                    self._restore(param)
            kept = event.in_memory and self.statuses.get(event.task) in ("done", "cached")
            if not kept:  # a value already in memory keeps saying how it got there
                self.statuses[event.task] = event.status
        elif isinstance(event, RunStarted):
            self._run_started, self._run_tasks = time.time(), []
        elif isinstance(event, RunFinished):
            for param in self._damaged:  # not restorable: forgotten everywhere, so the next run recomputes it
                result = self.results.pop(param, None)
                self.namespace.pop(param, None)
                if result is not None:
                    self.store.discard_value(result.output)
            self._damaged.clear()
            hits, self._touched = self._touched, []
            try:
                self.store.touch(hits)  # one transaction per run
                self.last_history_id = self.store.record_run(self._run_started, time.time(), self._history_rows())
            except sqlite3.Error as exc:  # a full disk: the values are fine, the bookkeeping waits
                warnings.warn(f"dagnb could not record this run in the cache ({exc}); values are unaffected.",
                              DagnbCacheWarning, stacklevel=2)

    # RunContext: what the executor calls back.

    def decide(self, task: str, force: frozenset[str], skipped: frozenset[str] = frozenset()) -> Decision:
        spec = self.tasks.specs[task]
        upstream = self.tasks.upstream(task)
        damaged = [u for u in upstream if u in self._damaged] if self._damaged else []
        if damaged:  # a task changed it in place and there is no copy to put back: do not feed it on
            raise InputDamaged(task, damaged[0])
        defaulted = frozenset(skipped & spec.defaults.keys()) if skipped else frozenset()
        ups = {u: self.results[u].output for u in upstream if u not in defaulted}
        decision = decide(self, task, ups, force, defaulted)
        if spec.when and decision.key is not None:
            from .condition import condition_holds

            if not condition_holds(task, spec.when, self._inputs(task, decision)):
                return Decision(task, "skip", (f"condition `{spec.when}` is false",), decision.key)
        return decision

    def optional(self, task: str, param: str) -> bool:
        return param in self.tasks.specs[task].defaults

    def is_async(self, task: str) -> bool:
        return self.tasks.specs[task].is_async

    def _inputs(self, task: str, decision: Decision) -> dict[str, Any]:
        assert decision.key is not None
        kwargs = {p: self.results[p].value for p in self.tasks.upstream(task) if p not in decision.key.values}
        kwargs.update(decision.key.values)
        return kwargs

    def load(self, decision: Decision) -> bool:
        if decision.action == "fresh":  # rebind: the user may have overwritten the variable
            self._bind(decision.task, self.results[decision.task])
            self._resave(decision.task)
            return True
        assert decision.entry is not None and decision.key is not None
        try:
            value = self.store.load(decision.entry)
        except CacheMiss as miss:
            warnings.warn(
                f"The cached value of task `{decision.task}` cannot be used: {miss.reason}. "
                f"dagnb recomputes it.",
                DagnbCacheWarning,
                stacklevel=2,
            )
            return False
        self._touched.append((decision.key.key, decision.entry.duration))
        self._bind(decision.task, Result(decision.key.key, decision.entry.output, value, decision.entry.outputs))
        self._resave(decision.task)
        return True

    def _resave(self, task: str) -> None:
        """A ``--save`` copy that was deleted (or never written on this machine) is written again on a hit."""
        spec = self.tasks.specs[task]
        if spec.save and not os.path.exists(spec.save.format(name=spec.name)):
            self._save(spec, self.results[task].value)

    def prepare(self, decision: Decision) -> Work:
        spec = self.tasks.specs[decision.task]
        kwargs = self._inputs(decision.task, decision)
        before = self._input_fingerprints(kwargs) if self.check_mutation else None
        func, parts, progress = spec.func, None, None
        is_async = spec.is_async
        if spec.map:  # only the elements the cache lacks are sent to run, split across the workers
            plan = self._maps[spec.name] = self._plan_items(spec, decision, kwargs.pop(spec.map))
            missing = [plan.items[i] for i in plan.missing]
            before = {p: d for p, d in (before or {}).items() if p != spec.map} or None
            sizes = [len(missing)] if is_async else self._part_sizes(len(missing))  # async: all at once on the loop
            progress = ItemProgress(sizes, functools.partial(self._progressed, spec.name))
            func = functools.partial(await_items if is_async else call_items, spec.func, spec.map, missing, progress)
            if len(sizes) > 1:
                parts = self._map_parts(spec, kwargs, missing, sizes, progress)
        work = Work(spec.name, func, kwargs, lambda: self._work(spec, kwargs, before, func), spec.timeout, spec.retries)
        work.parts, work.progress = parts, progress
        if is_async:
            work.run_async = lambda: self._awork(spec, kwargs, func)
        return work

    def _progressed(self, task: str, done: int, total: int) -> None:
        self.bus.emit(TaskProgress(self._run_id, time.perf_counter(), task=task, done=done, total=total))

    async def _awork(self, spec: TaskSpec, kwargs: dict[str, Any], func: Any) -> Outcome:
        """An async task's body, awaited (its prints and displays recorded like a sync task's).

        Its CPU time and peak memory are not measured: other tasks run on the
        same thread while it waits.
        """
        started = time.perf_counter()
        try:
            with self.capture() as log:
                value = await func(**kwargs)
        except Exception as exc:
            return Outcome(error=exc, duration=time.perf_counter() - started, started=started, worker="async")
        duration = time.perf_counter() - started
        return Outcome(value, _fingerprint_or_none(value), list(log), duration, None, started, 0.0, 0,
                       value_nbytes(value), "async")

    def _part_sizes(self, count: int) -> list[int]:
        """How many of ``count`` elements each worker of this run computes: contiguous, even slices."""
        if not count:
            return [0]
        size = -(-count // min(self._run_jobs, count))
        return [min(size, count - start) for start in range(0, count, size)]

    def _map_parts(self, spec: TaskSpec, kwargs: dict[str, Any], missing: list[Any], sizes: list[int],
                   progress: ItemProgress) -> list[Work]:
        """One work per worker, each a contiguous slice of the missing elements."""
        parts, start = [], 0
        for index, size in enumerate(sizes):
            part = functools.partial(call_items, spec.func, spec.map, missing[start : start + size], progress, index)
            parts.append(Work(spec.name, part, kwargs, functools.partial(self._work, spec, kwargs, None, part)))
            start += size
        return parts

    def _plan_items(self, spec: TaskSpec, decision: Decision, collection: Any) -> MapPlan:
        assert decision.key is not None and spec.map is not None
        base = "\0".join([*(f"{k}={v}" for k, v in sorted(decision.key.parts.items())),
                          *(f"{p}={f}" for p, f in sorted(decision.key.inputs.items()) if p != spec.map)])

        def lookup(key: str) -> tuple[bool, Any]:
            entry = self.store.entry(key)
            if entry is None or not entry.stored:
                return False, None
            try:
                return True, self.store.load(entry)
            except CacheMiss:
                return False, None

        return plan_items(collection, base, lookup)

    def _history_rows(self) -> list[TaskRecord]:
        rows = []
        for e in self._run_tasks:
            result = self.results.get(e.task) if e.status in ("done", "cached") else None
            rows.append(TaskRecord(e.task, e.status, e.reason, result.key if result else None,
                                   result.output if result else None, e.duration, e.worker))
        return rows

    def history(self, limit: int | None = 10) -> History:
        """Recent runs of this cache, newest first."""
        return History(self.store.runs(limit))

    def run_record(self, run_id: int) -> RunRecord:
        """One recorded run, by the id ``history`` shows (only that run is read)."""
        try:
            run = self.store.run(run_id)
        except ForgedRun:
            raise CommandError(
                f"Run {run_id} in the history of this cache is not signed with your cache key (it was altered, or "
                f"written by someone else), so dagnb does not use it. `dagnb cache verify` removes such runs."
            ) from None
        if run is None:
            known = ", ".join(str(r.id) for r in self.store.runs(10)) or "none yet"
            raise CommandError(f"There is no run {run_id} in the history of this cache. Recent runs: {known}.")
        return run

    def diff(self, first: int, second: int) -> RunDiff:
        """Which tasks changed key or output from run ``first`` to run ``second``."""
        return diff_runs(self.run_record(first), self.run_record(second))

    def restore(self, run_id: int) -> dict[str, str]:
        """Bind exactly the values run ``run_id`` had, from the cache; say per task whether it was restored.

        Each task gets the output its run recorded (a volatile or forced task
        whose key later got another output included), never merely the
        newest value of its key, so restored values are consistent with
        each other. A history row that names an entry of another task is
        refused.
        """
        outcome = {}
        for row in self.run_record(run_id).tasks:
            outcome[row.task] = self._restore_row(row)
        return outcome

    def _restore_row(self, row: TaskRecord) -> str:
        if row.task not in self.tasks:
            return "no longer a task"
        if not row.key or not row.output:
            return f"not restored: it had no value in that run ({row.status})"
        entry = self.store.entry(row.key)
        if entry is not None and entry.task != row.task:
            return (f"not restored: the history names a cache entry of task `{entry.task}` for it, so dagnb refuses "
                    f"it (`dagnb cache verify` checks the cache)")
        if entry is None or row.output.startswith("key "):
            return "not in the cache"
        try:
            value = self.store.load(CacheEntry(row.key, row.task, row.output))
        except CacheMiss as miss:
            return f"not restored: {miss.reason}"
        outputs = entry.outputs if entry.output == row.output else []
        self._bind(row.task, Result(row.key, row.output, value, outputs))
        self.statuses[row.task] = "cached"
        return "restored"

    def _restore(self, task: str) -> None:
        """Put back the value a task damaged in place, from the disk cache when it has a copy."""
        result = self.results.get(task)
        if result is not None and not isinstance(self.store, MemoryStore):
            try:  # by the output it had: a volatile task's key may since hold another
                value = self.store.load(CacheEntry(result.key, task, result.output))
                self._bind(task, Result(result.key, result.output, value, result.outputs))
                return
            except CacheMiss:
                pass
        self._damaged.add(task)

    def _input_fingerprints(self, kwargs: dict[str, Any]) -> dict[str, str]:
        """What each input's fingerprint is before the task runs (unfingerprintable inputs are left out)."""
        found = {}
        for param, value in kwargs.items():  # the value as it is now: an earlier task may have damaged it
            digest = _fingerprint_or_none(value)
            if digest is not None:
                found[param] = digest
        return found

    def _work(
        self, spec: TaskSpec, kwargs: dict[str, Any], before: dict[str, str] | None = None, func: Any = None
    ) -> Outcome:
        try:
            with self.capture() as log, measure() as cost:
                value = (func or spec.func)(**kwargs)
        except Exception as exc:
            return Outcome(error=exc, duration=cost.duration, started=cost.started, cpu_time=cost.cpu_time)
        changed = [p for p, fp in before.items() if _fingerprint_or_none(kwargs[p]) != fp] if before else []
        if changed:
            return Outcome(error=InputMutated(spec.name, changed), duration=cost.duration, started=cost.started)
        return Outcome(value, _fingerprint_or_none(value), list(log), cost.duration, None, cost.started, cost.cpu_time,
                       cost.peak_memory, value_nbytes(value))

    def commit(self, decision: Decision, outcome: Outcome) -> int:
        task, key = decision.task, decision.key
        if outcome.remote:  # printed in a worker: shown now, in the cell that ran it
            self.replay(outcome.outputs)
        assert key is not None
        spec = self.tasks.specs[task]
        if spec.map:
            self._commit_items(task, outcome)
        output = outcome.output or self._stand_in(task, key.key)
        entry = CacheEntry(key.key, task, output, key.parts, key.inputs, outcome.outputs, outcome.duration,
                           cpu_time=outcome.cpu_time, peak_memory=outcome.peak_memory,
                           value_bytes=outcome.output_bytes,
                           sources=helper_sources(spec.func, frozenset(spec.params)) if key.parts.keys() - _OWN else {})
        entry.stored = outcome.output is not None and self._store(entry, outcome.value)
        try:
            if not entry.stored:
                self.store.put(entry, None)
            self.store.set_head(task, key.key)
        except sqlite3.Error as exc:  # the metadata could not be written (a full disk): keep the value in memory
            warnings.warn(f"The cache could not record task `{task}` ({exc}); its value is kept in memory only.",
                          DagnbCacheWarning, stacklevel=2)
        self._bind(task, Result(key.key, output, outcome.value, outcome.outputs))
        if spec.save:
            self._save(spec, outcome.value)
        return entry.nbytes

    def _commit_items(self, task: str, outcome: Outcome) -> None:
        """Cache each computed element on its own; the outcome becomes the whole collection."""
        plan = self._maps.pop(task)
        computed = dict(zip(plan.missing, outcome.value))
        outcome.items = (len(computed), len(plan.items))
        for i, value in computed.items():
            try:
                output = fingerprint(value)
            except Unfingerprintable:
                continue  # such an element is recomputed next time
            entry = CacheEntry(plan.keys[i], f"{task}[item]", output, duration=outcome.duration / max(1, len(computed)))
            self._store(entry, value)
        outcome.value = assemble(plan, computed)
        outcome.output = _fingerprint_or_none(outcome.value)
        outcome.output_bytes = value_nbytes(outcome.value)

    def _save(self, spec: TaskSpec, value: Any) -> None:
        """``--save``: a copy of the value in a named file; failing to write it is a warning, not a failed task."""
        from .save import save_value

        assert spec.save is not None
        try:
            save_value(spec.name, spec.save, value)
        except Exception as exc:  # writers raise many types (missing pyarrow, a value of the wrong kind)
            warnings.warn(
                f"The value of task `{spec.name}` could not be saved to `{spec.save.format(name=spec.name)}` "
                f"({type(exc).__name__}: {exc}). The task's value and cache are fine; fix the path or the format.",
                DagnbSaveWarning,
                stacklevel=2,
            )

    def _store(self, entry: CacheEntry, value: Any) -> bool:
        try:
            self.store.put(entry, value)
            return entry.stored  # false in a read-only cache: the value stays in memory
        except sqlite3.Error as exc:
            message = f"The value of task `{entry.task}` could not be recorded in the cache ({exc})"
            category: type[Warning] = DagnbCacheWarning
        except OSError as exc:
            message = f"The value of task `{entry.task}` could not be written to the cache ({exc.strerror or exc})"
            category = DagnbCacheWarning
        except Exception as exc:  # pickling failures come in many types
            message = f"The value of task `{entry.task}` cannot be pickled ({type(exc).__name__}: {exc})"
            category = UnpicklableOutputWarning
        entry.stored = False
        warnings.warn(f"{message}; it is kept in memory only and recomputed after a restart.", category, stacklevel=2)
        return False

    def _stand_in(self, task: str, key: str) -> str:
        if task not in self._unhashable_warned:
            self._unhashable_warned.add(task)
            warnings.warn(
                f"The output of task `{task}` cannot be fingerprinted; its key stands in for it, so "
                f"its dependents rerun whenever it does (no early cutoff). Register a fingerprint "
                f"with `dagnb.register_fingerprint` to enable it.",
                UnfingerprintableWarning,
                stacklevel=2,
            )
        return f"key {key}"

    def _bind(self, task: str, result: Result) -> None:
        self.results[task] = result
        self.namespace[task] = result.value


