"""`Graph`: tasks, their values and their cache, in one session.

This is the Python API the magics are glue over: ``graph.task`` defines,
``graph.run`` brings targets up to date, ``graph.plan`` and ``graph.why``
explain. Values live in ``graph.results`` and, when a namespace is given
(the notebook's), are bound there under each task's name.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import sqlite3
import time
import types
import warnings
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from dagnb.run.capture import OutputLog, capture_streams, replay_streams
from dagnb.fingerprints.code import helper_sources, is_immutable, same_key_while_bound
from dagnb.run.costs import measure, value_nbytes
from dagnb.errors import (
    CommandError,
    InputDamaged,
    DagnbCacheWarning,
    DagnbSaveWarning,
    InputMutated,
    InputUnreadable,
    RunInterrupted,
    SavePathTaken,
    SaveRefused,
    TaskFailed,
    UnfingerprintableWarning,
    UnpicklableOutputWarning,
    UntrackedWarning,
    warn_at,
)
from dagnb.events import Event, EventBus, GraphChanged, RunFinished, RunStarted, TaskFinished, TaskProgress
from dagnb.history import History, RunDiff, diff_runs
from dagnb.run.mapping import ItemProgress, MapPlan, assemble, await_items, call_items, plan_items
from dagnb.run.backends import DaskBackend, ThreadBackend, Work, counting_interrupts, interrupts_seen
from dagnb.run.aio import complete_now
from dagnb.run.executor import Backend, Outcome, RunReport, execute, execute_async, make_backend
from dagnb.freshness import Freshness, Reads
from dagnb.graph import TaskGraph, TaskSpec, spec_from_function
from dagnb.fingerprints.values import fingerprint
from dagnb.inplace import InputGuard
from dagnb.plan import Decision, Plan, Result, decide, plan_run
from dagnb.cache.runlog import ForgedRun
from dagnb.cache.store import CacheEntry, CacheMiss, MemoryStore, Pruned, RunRecord, Store, TaskRecord, open_store
from dagnb.trace import Timeline, Trace, TraceRecorder
from dagnb.fingerprints.scopes import FunctionNode, function_tree, holds_files
from dagnb.fingerprints.untracked import Untracked, task_findings

if TYPE_CHECKING:
    from dagnb.overview import Overview, Planned

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


def _copy_stamp(spec: TaskSpec, output: str) -> tuple[str, int, int] | None:
    """What identifies a ``--save`` copy of the value ``output``: the value, the file's size and mtime."""
    try:
        st = os.stat(spec.save.format(name=spec.name))  # type: ignore[union-attr]
    except OSError:
        return None
    return output, st.st_size, st.st_mtime_ns


def _warn_at(spec: TaskSpec | None, message: str, category: type[Warning]) -> None:
    """A warning about a task, shown at the cell that defines it (not at a line of dagnb)."""
    warn_at(getattr(spec, "func", None), message, category)


def _unpicklable(value: Any) -> str | None:
    """Why ``value`` cannot be pickled (``None`` if it can); whatever its ``__reduce__`` raises."""
    import pickle

    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _same_reads_key(spec: TaskSpec, tracked: list[str]) -> tuple[Any, ...]:
    """What the untracked-read findings of ``spec`` depend on: its code (normalized), its options, and
    the objects the names of its code and of its helpers' code stand for now (held, so that no other
    object can take their identity)."""
    namespace = getattr(spec.func, "__globals__", {})
    names: list[str] = []
    codes, helpers = [spec.func.__code__], set()  # type: ignore[attr-defined]
    while codes:
        code = codes.pop()
        names.extend(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, type(code)))
        for name in code.co_names:
            obj = namespace.get(name)
            if getattr(obj, "__globals__", None) is namespace and name not in helpers:
                helpers.add(name)
                codes.append(obj.__code__)
    return (spec.code_digest, spec.volatile, tuple(tracked), tuple(names), tuple(namespace.get(n) for n in names))


def _same_reads(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    return old[:4] == new[:4] and all(a is b for a, b in zip(old[4], new[4]))


def _warn_untracked(spec: TaskSpec, findings: list[Untracked], node: FunctionNode | None,
                    line_offset: int | None) -> None:
    """The warning, pointed at the task's own code (its first finding there, else its ``def``)."""
    code = spec.func.__code__  # type: ignore[attr-defined]
    tree = node if node is not None else function_tree(code)
    first = min([tree.lineno, *(d.lineno for d in tree.decorator_list)]) if tree is not None else 1
    to_file = code.co_firstlineno - first  # tree lines -> lines of the code's file (or cell)
    own = [f.line for f in findings if f.helper is None]
    lineno = (own[0] if own else first) + to_file
    shown = UntrackedWarning(spec.name, findings, to_file if line_offset is None else line_offset)
    warnings.warn_explicit(shown, UntrackedWarning, code.co_filename, lineno, module=spec.func.__module__)


_MISSING = object()  # a name not bound in the namespace (a builtin, or nothing yet)


def _code_and_defaults(obj: Any) -> tuple[Any, Any]:
    """A function's code object and defaults (compared by identity and equality): what rebinding them changes."""
    if isinstance(obj, types.FunctionType):
        return obj.__code__, (obj.__defaults__, tuple((obj.__kwdefaults__ or {}).items()))
    return None, None


def _fingerprint_or_none(value: Any) -> str | None:
    """A value's fingerprint, or ``None``: never an exception from the value's own pickling."""
    try:
        return fingerprint(value)
    except Exception:  # Unfingerprintable, or what a `__reduce__` raises (a multiprocessing.Queue)
        return None


class Graph:
    """A DAG of tasks with an incremental, cached ``run``.

    Args:
        cache_dir: where the disk cache lives; ``None`` keeps the cache in memory.
        namespace: a mapping to bind task values into (a notebook's ``user_ns``).
        store: a ready-made :class:`~dagnb.cache.store.Store` (overrides ``cache_dir``).
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
        self._untracked_said: dict[str, frozenset[tuple[str, str, str | None]]] = {}  # per task: what it was told
        self._untracked_seen: dict[str, tuple[tuple[Any, ...], list[Untracked]]] = {}  # per task: last analysis
        self._touched: list[tuple[str, float]] = []  # cache loads of the current run: (key, time saved)
        self.statuses: dict[str, str] = {}  # each task's status at the end of its latest run
        self.force_once: set[str] = set()  # tasks to rerun the next time a run reaches them
        self.check_mutation = False  # debug mode: re-fingerprint a task's inputs after it runs
        self.verify_inputs = True  # never let a task read a value changed in place since it was computed
        self._guard = InputGuard(self)
        self.interrupted: dict[str, Any] = {}  # values of tasks that caught Ctrl-C: in memory, never cached
        self._saved: dict[str, tuple[str, int, int] | None] = {}  # --save path -> (output, size, mtime) written
        self._damaged: set[str] = set()  # values changed in place by a task, to forget when the run ends
        self._maps: dict[str, MapPlan] = {}  # a running map task's items, from prepare to commit
        self._run_jobs = 1  # workers of the current run's backend: a map task splits its elements over them
        self.backend: str | Backend = "inline"  # where `run` sends tasks when not told
        self.jobs = 1
        self._backends: dict[tuple[str, int], Backend] = {}  # worker pools and clusters, reused across runs
        self._run_started = 0.0
        self._run_tasks: list[TaskFinished] = []  # this run's finished tasks, for the history
        self._finished: RunReport | None = None  # the report of the run that ended last, complete or not
        self.origin = ""  # what starts the next runs (the notebook glue names the cell), kept with their traces
        self._recorder = TraceRecorder(lambda: self.origin)
        self.bus.subscribe(self._recorder, (RunStarted, TaskFinished, RunFinished))  # an observer, like the views
        self.freshness = Freshness(self.tasks.upstream, self.tasks.below)  # values known up to date: see freshness.py
        self._decided: dict[str, Decision] = {}  # this run's decisions, until each task's end is recorded
        self._fresh: dict[str, Decision] = {}  # the decision of each fresh task, for plans
        self.tasks.watchers.append(self._definition_changed)
        self._ran_before: dict[str, bool] = {}  # see ran_before

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
            spec = spec_from_function(fn, volatile=volatile, retries=retries, timeout=timeout, save=save, when=when,
                                      map=map)
            self.add(spec)
            self.say_untracked(spec.name)
            return fn

        return register(func) if func is not None else register

    def add(self, spec: TaskSpec) -> TaskSpec | None:
        """Add or replace a task; a replaced task's in-memory value is kept until it reruns.

        Raises:
            SavePathTaken: another task already writes the file ``spec.save`` names.
        """
        if spec.save:
            self._check_save_path(spec)
        replaced = self.tasks.add(spec)
        self._changed(spec.name)
        return replaced

    def _check_save_path(self, spec: TaskSpec) -> None:
        from dagnb.run.save import saved_path

        assert spec.save is not None
        path = saved_path(spec.name, spec.save)
        for other in self.tasks.specs.values():
            if other.save and other.name != spec.name and saved_path(other.name, other.save).resolve() == path.resolve():
                raise SavePathTaken(spec.name, str(path), other.name)

    def _changed(self, *names: str) -> None:
        self.bus.emit(GraphChanged(0, time.perf_counter(), tasks=names))

    def _definition_changed(self, name: str | None) -> None:
        if name is None:
            self.freshness.clear()
        else:
            self.freshness.forget(name)

    def namespace_changed(self) -> None:
        """The namespace may have changed (each run and plan starts with this): tasks that read it are decided
        again, unless every name they read is still bound to the same unchanging object."""
        self.freshness.forget_readers(self._still_bound)

    def _still_bound(self, reads: Reads) -> bool:
        get = self.namespace.get
        return all(get(name, _MISSING) is obj and _code_and_defaults(obj) == (code, defaults)
                   for name, obj, code, defaults in reads.seen)

    def _reads(self, task: str, spec: TaskSpec) -> Reads | None:
        """What ``task``'s key reads from the namespace, to compare at the next cell (None: nothing)."""
        names = []
        for item in self.tasks.resolve(task, self.namespace):
            if item.kind == "external":
                names.append(item.param)
            elif item.kind == "constant" and not is_immutable(item.value):
                return Reads(always=True)
        if spec.fixed_code is None:
            names += [g for g in spec.global_names(self.tasks.specs) if g not in self.tasks.specs]
        if not names:
            return None
        seen = []
        for name in names:
            obj = self.namespace.get(name, _MISSING)
            if obj is not _MISSING and not same_key_while_bound(obj, self.namespace):
                return Reads(always=True)
            seen.append((name, obj, *_code_and_defaults(obj)))
        return Reads(tuple(seen))

    def ran_before(self, task: str) -> bool:
        """Whether ``task`` has a value in memory or a head in the cache (``stale`` rather than ``pending``).

        Asked for every task after each cell: the answer is kept, and forgotten when this session binds a
        value (another session's writes only turn a ``pending`` into ``stale`` later than they could).
        """
        if task in self.results:
            return True
        known = self._ran_before.get(task)
        if known is None:
            known = self._ran_before[task] = self.store.head(task) is not None
        return known

    def fresh_decision(self, task: str) -> Decision | None:
        """What a run would decide for ``task`` when its value is known up to date (see :mod:`dagnb.freshness`)."""
        return self._fresh.get(task) if task in self.freshness else None

    def check(self, name: str) -> None:
        """Raise now if any parameter of ``name``, or of an upstream task that ran before and is not known
        fresh, cannot resolve (one that never ran was checked when it was defined, and is when it runs)."""
        self.namespace_changed()
        self._not_fresh([name], new_runs=True)

    def say_untracked(self, name: str, node: FunctionNode | None = None, line_offset: int | None = None) -> list[Untracked]:
        """Warn once (:class:`UntrackedWarning`) if task ``name`` reads what its key does not cover.

        ``node`` is the task function's tree when the caller has parsed it
        (a ``%%task`` cell, ``line_offset=1``: its magic line comes first);
        otherwise its source is parsed here and lines count in its file. The
        same findings are not told twice (re-running an unchanged cell says
        nothing); a volatile task is never told. Returns the findings.
        """
        spec = self.tasks.get(name)
        try:  # an analysis that fails must never stop a definition: say nothing
            tracked = self._tracked_params(spec)
            seen = _same_reads_key(spec, tracked)
            last = self._untracked_seen.get(name)
            if last is not None and _same_reads(last[0], seen):  # an unchanged cell: nothing to analyse again
                return last[1]
            findings = [] if spec.volatile else task_findings(spec.func, tracked, node)
        except Exception:  # noqa: BLE001 - bookkeeping fails soft
            return []
        self._untracked_seen[name] = (seen, findings)
        told = frozenset((f.what, f.code, f.helper) for f in findings)
        if findings and self._untracked_said.get(name) != told:
            _warn_untracked(spec, findings, node, line_offset)
        self._untracked_said[name] = told
        return findings

    def _tracked_params(self, spec: TaskSpec) -> list[str]:
        """Parameters that carry a tracked path: an upstream task, or a ``dagnb.file`` default or variable."""
        tracked = []
        for param in spec.params:
            if param in self.tasks.specs and param != spec.name:
                tracked.append(param)
            elif holds_files(spec.defaults[param] if param in spec.defaults else self.namespace.get(param)):
                tracked.append(param)
        return tracked

    def drop(self, name: str) -> TaskSpec:
        """Remove a task, its value and its binding (its cache entries stay)."""
        spec = self.tasks.drop(name)
        self._untracked_said.pop(name, None)
        self._untracked_seen.pop(name, None)
        if self.results.pop(name, None) is not None or self.interrupted.pop(name, None) is not None:
            self.namespace.pop(name, None)
        self.statuses.pop(name, None)
        self._changed(name)
        return spec

    def __getitem__(self, name: str) -> Any:
        """The current value of task ``name`` (run it first; an interrupted task's partial value too)."""
        self.tasks.get(name)
        if name in self.interrupted:
            return self.interrupted[name]
        return self.results[name].value

    # -------------------------------------------------------------- planning

    def upstream(self, task: str) -> list[str]:
        return self.tasks.upstream(task)

    @property
    def trace(self) -> Trace | None:
        """The trace (Gantt data and critical path) of the latest run."""
        return self._recorder.last

    @property
    def timeline(self) -> Timeline:
        """The traces of every run since this session started, oldest first."""
        return self._recorder.timeline()

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

    def overview(self, now: Planned | None = None) -> Overview:
        """A snapshot for display: statuses, plan, costs and the latest trace (``now``: a plan just taken)."""
        from dagnb.overview import overview

        return overview(self, now)

    def plan(self, targets: Iterable[str] | None = None, force: Iterable[str] = (), skip_fresh: bool = False) -> Plan:
        """What ``run`` would do, without running or loading anything (``skip_fresh``: as from a cell, leaving
        out upstream tasks known fresh)."""
        targets = None if targets is None else list(targets)
        self.namespace_changed()
        if skip_fresh and targets is not None:
            return plan_run(self, force=force, order=self._not_fresh(targets, frozenset(force), new_runs=True))
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
        self.namespace_changed()
        plan = plan_run(self, order=self._not_fresh(names, new_runs=True))
        wanted = set(names)
        return [t for t in plan.to_run if t in wanted]

    def _not_fresh(self, targets: list[str], forced: frozenset[str] = frozenset(), new_runs: bool = False) -> list[str]:
        """``targets`` and the upstream tasks not known fresh, in run order, once every parameter among them
        resolves (the walk stops at fresh tasks, which resolved when they were decided).

        ``new_runs`` (planning only): the walk also stops at an upstream task that never ran in this cache,
        which must run, so everything below it waits (a plan then says ``pending`` without deciding it).
        """
        names = [self.tasks.get(t).name for t in targets]
        need, stack = set(names), list(names)
        while stack:
            for up in self.tasks.upstream(stack.pop()):
                if up in need or (up in self.freshness and up not in forced and up not in self.force_once):
                    continue
                if new_runs and not self.ran_before(up):
                    continue
                need.add(up)
                stack.append(up)
        order = self.tasks.sort(need)
        for task in order:
            self.tasks.resolve(task, self.namespace)
        return order

    def _bind_fresh_upstream(self, order: list[str]) -> None:
        """Fresh upstream tasks outside a run are bound again where the user overwrote their variable, as a
        decision would (a task may read them as globals)."""
        inside = set(order)
        for task in order:
            for up in self.tasks.upstream(task):
                if up not in inside and self.namespace.get(up) is not self.results[up].value:
                    self.namespace[up] = self.results[up].value

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
        skip_fresh: bool = False,
    ) -> RunReport:
        """Bring ``targets`` (default: every task) up to date, running only stale tasks.

        ``backend`` is ``inline`` (the default), ``threads``, ``processes``,
        ``dask`` (a LocalCluster on 127.0.0.1), ``dask://HOST:PORT``, a
        ``distributed.Client``, or a :class:`~dagnb.run.backends.Backend`;
        ``jobs`` is how many tasks run at once. Pools and clusters are kept
        for the next run; :meth:`close` ends them. With ``skip_fresh``, upstream
        tasks whose values are known up to date in memory (see
        :mod:`dagnb.freshness`) are not decided again and are not part of the
        run (what a ``%%task`` cell does).

        Raises:
            TaskFailed: a task raised (after every other result is committed),
                unless ``raise_errors`` is false; the report is ``error.report``.
        """
        return complete_now(self._run(targets, force, keep_going, backend, jobs, raise_errors, awaited=False,
                                      skip_fresh=skip_fresh))

    async def arun(
        self,
        targets: Iterable[str] | None = None,
        *,
        force: Iterable[str] = (),
        keep_going: bool = False,
        backend: str | Backend | Any | None = None,
        jobs: int | None = None,
        raise_errors: bool = True,
        skip_fresh: bool = False,
    ) -> RunReport:
        """:meth:`run`, awaited: async tasks run on the running event loop (the kernel's, in a notebook).

        Other tasks run as with :meth:`run`; an inline one blocks the loop
        while it runs. Cancelling the awaiting task stops the run (tasks that
        never started are ``cancelled``, every finished result is kept) and
        raises CancelledError.
        """
        return await self._run(targets, force, keep_going, backend, jobs, raise_errors, awaited=True,
                               skip_fresh=skip_fresh)

    async def _run(self, targets: Iterable[str] | None, force: Iterable[str], keep_going: bool,
                   backend: str | Backend | Any | None, jobs: int | None, raise_errors: bool,
                   awaited: bool, skip_fresh: bool = False) -> RunReport:
        self.namespace_changed()  # a cell or a task may have changed what they read since
        self._decided.clear()
        explicit = frozenset(self.tasks.get(f).name for f in force)
        if skip_fresh and targets is not None:
            order = self._not_fresh(list(targets), explicit)
            self._bind_fresh_upstream(order)
        else:
            order = self._validate(targets)
        forced = explicit | (self.force_once & set(order))
        chosen = self._backend(backend if backend is not None else self.backend, jobs or self.jobs)
        self._run_jobs = chosen.jobs
        self._run_id = next(self._run_ids)
        how = dict(backend=chosen, bus=self.bus, force=forced, keep_going=keep_going, run_id=self._run_id)
        try:
            with counting_interrupts():
                report = await execute_async(self, order, **how) if awaited else execute(self, order, **how)
        except RunInterrupted as stop:  # Ctrl-C (TaskInterrupted: a task caught it): the report is complete
            self.last_run = stop.report  # type: ignore[assignment]
            raise
        except asyncio.CancelledError:  # an awaited run, cancelled: its report came with RunFinished
            self.last_run = self._finished
            raise
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

    def record(self, event: Event) -> None:
        """The session's bookkeeping of a run (the executor calls it before the observers hear of the event)."""
        if isinstance(event, TaskFinished):  # the common case first: one per task
            self._run_tasks.append(event)
            if isinstance(event.error, InputMutated):
                for param in event.error.params:
                    self._restore(param)
            kept = event.in_memory and self.statuses.get(event.task) in ("done", "cached")
            if not kept:  # a value already in memory keeps saying how it got there
                self.statuses[event.task] = event.status
            self._settle(event.task, event.status)
        elif isinstance(event, RunStarted):
            self._run_started, self._run_tasks = time.time(), []
            self.store.begin_batch()  # values are written off the run loop, and are durable when the run returns
        elif isinstance(event, RunFinished):
            self._finished = event.report
            for param in self._damaged:  # not restorable: forgotten everywhere, so the next run recomputes it
                result = self.results.pop(param, None)
                self.freshness.changed(param)
                self.namespace.pop(param, None)
                if result is not None:
                    self.store.discard_value(result.output)
            self._damaged.clear()
            for entry, exc in self.store.flush():
                self._not_stored(entry, exc)
            hits, self._touched = self._touched, []
            try:
                self.store.touch(hits)  # one transaction per run
                self.last_history_id = self.store.record_run(self._run_started, time.time(), self._history_rows())
            except sqlite3.Error as exc:  # a full disk: the values are fine, the bookkeeping waits
                warnings.warn(f"dagnb could not record this run in the cache ({exc}); values are unaffected.",
                              DagnbCacheWarning, stacklevel=2)

    def _settle(self, task: str, status: str) -> None:
        """A task's end in a run: fresh when its bound value is what its key gives and it may be (see freshness.py)."""
        decision = self._decided.pop(task, None)
        result = self.results.get(task)
        if status not in ("done", "cached") or decision is None or decision.key is None or result is None:
            self.freshness.changed(task)
            return
        spec = self.tasks.specs.get(task)
        info = decision.key
        if spec is None or spec.volatile or info.untracked or info.key != result.key:
            self.freshness.changed(task)
            return
        if self.freshness.mark(task, self._reads(task, spec)):
            self._fresh[task] = Decision(task, "fresh", ("cached",), info, CacheEntry(info.key, task, result.output))

    # RunContext: what the executor calls back.

    def decide(self, task: str, force: frozenset[str], skipped: frozenset[str] = frozenset()) -> Decision:
        spec = self.tasks.specs[task]
        upstream = self.tasks.upstream(task)
        damaged = [u for u in upstream if u in self._damaged] if self._damaged else []
        if damaged:  # a task changed it in place and there is no copy to put back: do not feed it on
            raise InputDamaged(task, damaged[0])
        defaulted = frozenset(skipped & spec.defaults.keys()) if skipped else frozenset()
        ups = {u: self.results[u].output for u in upstream if u not in defaulted}
        decision = self._decide(task, ups, force, defaulted)
        if upstream and (decision.action == "run" or spec.when):
            read = [u for u in upstream if u not in defaulted]
            self._guard.iterators(task, read)
            if self.verify_inputs and self._guard.before(task, read):  # recomputed with another output: new key
                decision = self._decide(task, {u: self.results[u].output for u in read}, force, defaulted)
        if spec.when and decision.key is not None:
            from dagnb.run.condition import condition_holds

            if not condition_holds(task, spec.when, self._inputs(task, decision)):
                return Decision(task, "skip", (f"condition `{spec.when}` is false",), decision.key)
        self._decided[task] = decision
        return decision

    def _decide(self, task: str, ups: dict[str, str], force: frozenset[str], defaulted: frozenset[str]) -> Decision:
        try:
            return decide(self, task, ups, force, defaulted)
        except InputUnreadable as exc:  # an input file could not be read: this task's failure, not the run's
            raise InputUnreadable(exc.path, exc.error, task) from None

    def optional(self, task: str, param: str) -> bool:
        return param in self.tasks.specs[task].defaults

    def is_async(self, task: str) -> bool:
        return self.tasks.specs[task].is_async

    def _inputs(self, task: str, decision: Decision) -> dict[str, Any]:
        assert decision.key is not None
        upstream, hidden = self.tasks.upstream(task), self.tasks.hidden(task)
        params = upstream[: len(upstream) - len(hidden)]  # tasks read as globals are not arguments
        kwargs = {p: self.results[p].value for p in params if p not in decision.key.values}
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
            _warn_at(self.tasks.specs.get(decision.task), f"The cached value of task `{decision.task}` cannot be "
                     f"used: {miss.reason}. dagnb recomputes it.", DagnbCacheWarning)
            return False
        self._touched.append((decision.key.key, decision.entry.duration))
        self._bind(decision.task, Result(decision.key.key, decision.entry.output, value, decision.entry.outputs))
        self._resave(decision.task)
        return True

    def _resave(self, task: str) -> None:
        """On a hit, a ``--save`` copy is written again unless this session wrote this value there, unchanged since."""
        spec = self.tasks.specs[task]
        if spec.save:
            result = self.results[task]
            if self._saved.get(spec.save.format(name=spec.name)) != _copy_stamp(spec, result.output):
                self._save(spec, result.value, result.output)

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
                f"Run {run_id} in the history of this cache is not signed with your secret (it was altered, or "
                f"written by someone else), so dagnb does not use it. `dagnb cache verify` removes such runs."
            ) from None
        if run is None:
            known = ", ".join(str(r.id) for r in self.store.runs(10)) or "none yet"
            raise CommandError(f"There is no run {run_id} in the history of this cache. Recent runs: {known}.")
        return run

    def diff(self, first: int, second: int) -> RunDiff:
        """Which tasks changed key or output from run ``first`` to run ``second`` (the values each run left)."""
        return diff_runs(self.state_at(first), self.state_at(second))

    def state_at(self, run_id: int) -> RunRecord:
        """Run ``run_id`` with, for each task it did not decide, the row of the latest earlier run that did.

        A ``%%task`` cell's run decides its own task and the upstream tasks
        not already up to date in memory; the others kept the values earlier
        runs gave them. So this is every value the session had when that run
        ended. The walk back stops at a run that is missing or not signed.
        """
        run = self.run_record(run_id)
        rows = list(run.tasks)
        seen = {row.task for row in rows}
        wanted = set(self.tasks.specs) - seen
        earlier = run_id - 1
        while wanted and earlier > 0:
            try:
                found = self.store.run(earlier)
            except ForgedRun:
                break
            if found is None:
                break
            for row in found.tasks:
                if row.task in wanted:
                    rows.append(row)
                    wanted.discard(row.task)
            earlier -= 1
        order = {task: i for i, task in enumerate(self.tasks.sort({r.task for r in rows} & self.tasks.specs.keys()))}
        rows.sort(key=lambda row: order.get(row.task, len(order)))
        return RunRecord(run.id, run.started, run.finished, rows)

    def restore(self, run_id: int) -> dict[str, str]:
        """Bind exactly the values run ``run_id`` had, from the cache; say per task whether it was restored.

        The values are those the session had when the run ended (:meth:`state_at`). Each task gets the
        output its run recorded (a volatile or forced task
        whose key later got another output included), never merely the
        newest value of its key, so restored values are consistent with
        each other. A history row that names an entry of another task is
        refused.
        """
        return {row.task: self._restore_row(row) for row in self.state_at(run_id).tasks}

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
        seen = interrupts_seen()
        try:
            with self.capture() as log, measure() as cost:
                value = (func or spec.func)(**kwargs)
        except Exception as exc:
            return Outcome(error=exc, duration=cost.duration, started=cost.started, cpu_time=cost.cpu_time)
        if interrupts_seen() != seen:  # Ctrl-C arrived and the task caught it: its value may be partial
            return Outcome(value, None, list(log), cost.duration, None, cost.started, cost.cpu_time, interrupted=True)
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
        if outcome.interrupted:
            self._keep_interrupted(task, outcome)
            return 0
        if spec.map:
            self._commit_items(task, outcome)
        output = outcome.output or self._stand_in(task, key.key, outcome.value)
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
            _warn_at(spec, f"The cache could not record task `{task}` ({exc}); its value is kept in memory only.",
                     DagnbCacheWarning)
        self._bind(task, Result(key.key, output, outcome.value, outcome.outputs))
        if self.verify_inputs and not outcome.remote:  # a worker process changed only its own copies
            self._guard.after(task, self.tasks.upstream(task))
        if spec.save:
            self._save(spec, outcome.value, output)
        return entry.nbytes

    def _keep_interrupted(self, task: str, outcome: Outcome) -> None:
        """A value computed while Ctrl-C arrived: bound for the user, never cached or saved, rerun next time."""
        value = outcome.value
        if self.tasks.specs[task].map:  # the elements computed so far are not cached either
            plan = self._maps.pop(task)
            value = assemble(plan, dict(zip(plan.missing, value)))
        self.results.pop(task, None)  # an older value must not stand for this one
        self.freshness.changed(task)
        self._guard.forget(task)
        self.interrupted[task] = value
        self.namespace[task] = value

    def _commit_items(self, task: str, outcome: Outcome) -> None:
        """Cache each computed element on its own; the outcome becomes the whole collection."""
        plan = self._maps.pop(task)
        computed = dict(zip(plan.missing, outcome.value))
        outcome.items = (len(computed), len(plan.items))
        for i, value in computed.items():
            output = _fingerprint_or_none(value)
            if output is None:
                continue  # such an element is recomputed next time
            entry = CacheEntry(plan.keys[i], f"{task}[item]", output, duration=outcome.duration / max(1, len(computed)))
            self._store(entry, value)
        outcome.value = assemble(plan, computed)
        outcome.output = _fingerprint_or_none(outcome.value)
        outcome.output_bytes = value_nbytes(outcome.value)

    def _save(self, spec: TaskSpec, value: Any, output: str) -> None:
        """``--save``: a copy of the value in a named file; failing to write it is a warning, not a failed task."""
        from dagnb.run.save import save_value

        assert spec.save is not None
        path = spec.save.format(name=spec.name)
        self._saved.pop(path, None)
        try:
            save_value(spec.name, spec.save, value)
        except SaveRefused as exc:
            _warn_at(spec, f"{exc} The task's value and cache are fine.", DagnbSaveWarning)
        except Exception as exc:  # writers raise many types (missing pyarrow, a value of the wrong kind)
            _warn_at(spec, f"The value of task `{spec.name}` could not be saved to `{path}` ({type(exc).__name__}: "
                     f"{exc}). The task's value and cache are fine; fix the path or the format.", DagnbSaveWarning)
        else:
            self._saved[path] = _copy_stamp(spec, output)

    def _store(self, entry: CacheEntry, value: Any) -> bool:
        try:
            self.store.put(entry, value)
            return entry.stored  # false in a read-only cache: the value stays in memory
        except Exception as exc:
            self._not_stored(entry, exc)
            return False

    def _not_stored(self, entry: CacheEntry, exc: BaseException) -> None:
        """Say why a value could not be cached (now, or when its batch was written): it is kept in memory only."""
        category: type[Warning] = DagnbCacheWarning
        if isinstance(exc, sqlite3.Error):
            message = f"The value of task `{entry.task}` could not be recorded in the cache ({exc})"
        elif isinstance(exc, OSError):
            message = f"The value of task `{entry.task}` could not be written to the cache ({exc.strerror or exc})"
        else:  # pickling failures come in many types
            message = f"The value of task `{entry.task}` cannot be pickled ({type(exc).__name__}: {exc})"
            category = UnpicklableOutputWarning
        entry.stored = False
        spec = self.tasks.specs.get(entry.task.removesuffix("[item]"))
        _warn_at(spec, f"{message}; it is kept in memory only and recomputed after a restart.", category)

    def _stand_in(self, task: str, key: str, value: Any) -> str:
        """The output fingerprint of a value that has none: its key; said once per task."""
        if task not in self._unhashable_warned:
            self._unhashable_warned.add(task)
            reason = None if isinstance(self.store, MemoryStore) else _unpicklable(value)
            if reason is not None:  # the reason it has no fingerprint, and why it stays in memory
                _warn_at(self.tasks.specs.get(task), f"The value of task `{task}` cannot be pickled ({reason}); it "
                         f"is kept in memory only and recomputed after a restart.", UnpicklableOutputWarning)
                return f"key {key}"
            _warn_at(self.tasks.specs.get(task),
                     f"The output of task `{task}` cannot be fingerprinted; its key stands in for it, so "
                     f"its dependents rerun whenever it does (no early cutoff). Register a fingerprint "
                     f"with `dagnb.register_fingerprint` to enable it.", UnfingerprintableWarning)
        return f"key {key}"

    def _bind(self, task: str, result: Result) -> None:
        old = self.results.get(task)
        if old is None or old.value is not result.value:  # a new object: what was known of the old one is void
            self._guard.forget(task)
        if old is None or old.key != result.key or old.output != result.output:
            self.freshness.changed(task)
        self._ran_before.pop(task, None)
        self.interrupted.pop(task, None)
        self.results[task] = result
        self.namespace[task] = result.value


