"""`Graph`: tasks, their values and their cache, in one session.

This is the Python API the magics are glue over: ``graph.task`` defines,
``graph.run`` brings targets up to date, ``graph.plan`` and ``graph.why``
explain. Values live in ``graph.results`` and, when a namespace is given
(the notebook's), are bound there under each task's name.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextlib import AbstractContextManager
from typing import Any

from dagnb.cache.store import Store, open_store
from dagnb.cells import CellTasks
from dagnb.errors import DagnbError, DuplicateTask, TaskFailed
from dagnb.events import EventBus, GraphChanged, RunFinished, RunStarted, TaskFinished
from dagnb.graph import TaskGraph, TaskOptions, TaskSpec, check_save_path, spec_from_function
from dagnb.host_calls import HostCalls
from dagnb.inplace import InputGuard
from dagnb.overview import Overview, Planned, overview
from dagnb.plan import Plan, Result
from dagnb.planning import Planner
from dagnb.records import Records
from dagnb.report import RunReport
from dagnb.run.aio import complete_now
from dagnb.run.backends import BackendPool
from dagnb.run.capture import OutputLog, capture_streams, replay_streams
from dagnb.run.executor import Backend
from dagnb.run.taskrunner import TaskRunner
from dagnb.scope import Scope
from dagnb.status import Status
from dagnb.trace import TraceRecorder
from dagnb.untracked_warnings import UntrackedWarnings
from dagnb.why import Why, why_from

__all__ = ["Graph", "Why"]


class Graph(HostCalls, Records):
    """A DAG of tasks with an incremental, cached ``run``.

    Responsibilities: define tasks, plan and run them, hold the session's
    values. What it does not decide itself it hands on: planning to
    :class:`~dagnb.planning.Planner`, one run to
    :class:`~dagnb.run.taskrunner.TaskRunner`, untracked-read warnings to
    :mod:`dagnb.untracked_warnings`, recorded runs to :mod:`dagnb.history`
    and :mod:`dagnb.restore`. Two parts live in modules of their own: what
    the rooms around it call back (:class:`~dagnb.host_calls.HostCalls`:
    epochs, freshness, binding a value) and what it keeps
    (:class:`~dagnb.records.Records`: the cache's place and upkeep, recorded
    runs, traces).

    Args:
        cache_dir: where the disk cache lives; ``None`` keeps the cache in memory.
        namespace: a mapping to bind task values into (a notebook's ``user_ns``).
        store: a ready-made :class:`~dagnb.cache.store.Store` (overrides ``cache_dir``).
        notebook: the notebook this graph runs: its heads, history and hit counts
            are its own in a cache other notebooks share (default: those of the
            working folder, or the scope ``store`` was given; :mod:`dagnb.scope`).
    """

    def __init__(
        self,
        cache_dir: str | None = None,
        namespace: MutableMapping[str, Any] | None = None,
        store: Store | None = None,
        notebook: str | os.PathLike[str] | None = None,
    ) -> None:
        self.tasks = TaskGraph()
        self.cells = CellTasks()  # which task each notebook cell defines (a renamed function replaces its task)
        self.namespace: MutableMapping[str, Any] = namespace if namespace is not None else {}
        self.store = store if store is not None else open_store(cache_dir)
        if notebook is not None:  # else the store's own scope (by default, the working folder's)
            self.store.use_scope(Scope.of_notebook(notebook))
        self.results: dict[str, Result] = {}
        self.bus = EventBus()
        self.last_run: RunReport | None = None
        self.record_later = False  # a run's hit counts and history row written on the cache's thread (notebooks)
        self.mode = "lazy"
        self.capture: Callable[[], AbstractContextManager[OutputLog]] = capture_streams
        self.replay: Callable[[list[dict[str, Any]]], None] = replay_streams
        self._run_ids = itertools.count(1)
        self._run_id = 0  # the current (or last) run's id
        self._unhashable_warned: set[str] = set()
        self._untracked = UntrackedWarnings()  # what each task was told of its untracked reads
        self.statuses: dict[str, Status] = {}  # each task's status at the end of its latest run
        self.force_once: set[str] = set()  # tasks to rerun the next time a run reaches them
        self.check_mutation = False  # debug mode: re-fingerprint a task's inputs after it runs
        self.verify_inputs = True  # never let a task read a value changed in place since it was computed
        self._guard = InputGuard(self)
        self.interrupted: dict[str, Any] = {}  # values of tasks that caught Ctrl-C: in memory, never cached
        self._saved: dict[str, tuple[str, int, int] | None] = {}  # --save path -> (fingerprint, size, mtime) written
        self.backend: str | Backend = "inline"  # where `run` sends tasks when not told
        self.jobs = 1
        self._pool = BackendPool()  # worker pools and clusters, reused across runs
        self.origin = ""  # what starts the next runs (the notebook glue names the cell), kept with their traces
        self._recorder = TraceRecorder(lambda: self.origin)
        self.bus.subscribe(self._recorder, (RunStarted, TaskFinished, RunFinished))  # an observer, like the views
        self._planner = Planner(self)  # what planning knows between calls: see planning.py
        self.tasks.watchers.append(self._planner.definition_changed)
        # the run room reads these of its graph (run/host.py): the planner's
        self.freshness, self._fresh, self._epoch = self._planner.freshness, self._planner.fresh, self._planner.epoch
        self._runner = TaskRunner(self)  # the current (or last) run's: what lives for one run only

    # ------------------------------------------------------------ definition

    def task(self, func: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Decorator: ``@graph.task`` or ``@graph.task(retries=2, timeout=60, save="out/{name}.csv", when="n > 0")``.

        The keywords are the fields of :class:`~dagnb.options.TaskOptions`; another is refused (``UnknownOption``).
        """
        chosen = TaskOptions.from_keywords(options)

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            spec = spec_from_function(fn, options=chosen)
            self.add(spec)
            self.say_untracked(spec.name)
            return fn

        return register(func) if func is not None else register

    def add(self, spec: TaskSpec) -> TaskSpec | None:
        """Add or replace a task; a replaced task's in-memory value is kept until it reruns.

        Raises:
            SavePathTaken: another task already writes the file ``spec.save`` names.
        """
        check_save_path(spec, self.tasks.specs)
        replaced = self.tasks.add(spec)
        self._changed(spec.name)
        return replaced

    def define(self, spec: TaskSpec) -> str | None:
        """Add or replace ``spec`` as a notebook cell defines it; a definition that does not check leaves the
        graph as it was (the last good definition stays).

        A task of the same name defined in another cell is a duplicate. A cell
        that now defines another name replaces the task it defined before
        (:class:`~dagnb.cells.CellTasks`). Returns that replaced task's name, if any.

        Raises:
            DuplicateTask: another cell already defines ``spec.name``.
            DagnbError: from :meth:`add` or :meth:`check` (a parameter that does not resolve ...).
        """
        old = self.tasks.specs.get(spec.name)
        if old is not None and old.cell_id and spec.cell_id and old.cell_id != spec.cell_id:
            raise DuplicateTask(spec.name)
        replaced = self.add(spec)
        try:
            self.check(spec.name)
        except DagnbError:
            self._undefine(spec.name, replaced)
            raise
        renamed = self.cells.defines(spec.cell_id, spec.name, self.tasks)
        if renamed is not None:
            self.drop(renamed)
        return renamed

    def _changed(self, *names: str) -> None:
        self.bus.emit(GraphChanged(0, time.perf_counter(), tasks=names))

    def _undefine(self, name: str, replaced: TaskSpec | None) -> None:
        """Undo a definition of ``name``: the definition it replaced comes back, or none is there."""
        self.tasks.drop(name)
        if replaced is not None:
            self.add(replaced)

    def drop(self, name: str) -> TaskSpec:
        """Remove a task, its value and its binding (its cache entries stay)."""
        spec = self.tasks.drop(name)
        self.cells.forget(name)
        self._untracked.forget(name)
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

    def overview(self, now: Planned | None = None) -> Overview:
        """A snapshot for display: statuses, plan, costs and the latest trace (``now``: a plan just taken)."""
        return overview(self, now)

    def plan(self, targets: Iterable[str] | None = None, force: Iterable[str] = (), skip_fresh: bool = False) -> Plan:
        """What ``run`` would do, without running or loading anything (``skip_fresh``: as from a cell, leaving
        out upstream tasks known fresh)."""
        return self._planner.plan(targets, force, skip_fresh)

    def plan_since(self, last: Plan | None) -> tuple[Plan, set[str] | None]:
        """Every task's plan, as :meth:`plan` takes it, from ``last`` (the previous call's): only tasks whose
        decision may have changed since are decided again. Also returns them (``None``: every task).

        Those are the tasks a definition, a run or a restore touched (see
        :mod:`dagnb.freshness`), the tasks below them, and every task not known
        fresh whose key reads the namespace, which a cell may have changed in
        place. What changes the cache from outside a run (``%dag cache clear``,
        another session) is seen when ``last`` is ``None``.
        """
        return self._planner.plan_since(last)

    def why(self, name: str) -> Why:
        """Which part of ``name``'s key changed since it last ran."""
        self.tasks.get(name)
        return why_from(self.plan([name])[name])

    def status_now(self, name: str) -> tuple[Status, str]:
        """The status ``name`` shows now (``pending``, ``stale``, ``done`` ...), as a cell that defines it without
        running it says, and why it would run (``""``: it would not)."""
        plan = self.plan([name], skip_fresh=True)
        return plan.statuses(self.statuses, self.ran_before, only=name)[name], plan.reason_to_run(name)

    def stale(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` that the next run would (or might) execute."""
        names = list(names)
        if not names:
            return []
        return self._planner.stale(names)

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
        return complete_now(
            self._run(targets, force, keep_going, backend, jobs, raise_errors, awaited=False, skip_fresh=skip_fresh)
        )

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
        return await self._run(
            targets, force, keep_going, backend, jobs, raise_errors, awaited=True, skip_fresh=skip_fresh
        )

    async def run_defined(self, name: str, run: Callable[..., Awaitable[RunReport]] | None = None) -> RunReport:
        """Bring task ``name`` up to date as the cell that defines it does; the report says what it left stale.

        The task runs as from a cell (``skip_fresh``); in ``auto`` mode its
        downstream tasks run after it. The report's ``stale`` lists the
        downstream tasks the next run would (or might) execute. ``run`` is
        :meth:`arun` unless the caller runs tasks its own way (the notebook
        glue: at once, or awaited on the kernel's loop).
        """
        run = run if run is not None else self.arun
        report = await run([name], skip_fresh=True)  # upstream values known up to date are not asked again
        downstream = self.tasks.downstream(name)
        if self.mode == "auto" and downstream:
            report = report.merge(await run(downstream, skip_fresh=True))
        report.stale = self.stale(downstream)
        return report

    async def _run(
        self,
        targets: Iterable[str] | None,
        force: Iterable[str],
        keep_going: bool,
        backend: str | Backend | Any | None,
        jobs: int | None,
        raise_errors: bool,
        awaited: bool,
        skip_fresh: bool = False,
    ) -> RunReport:
        explicit = frozenset(self.tasks.get(f).name for f in force)
        order = self._planner.run_order(targets, explicit, skip_fresh)
        forced = explicit | (self.force_once & set(order))
        chosen = self._pool.get(backend if backend is not None else self.backend, jobs or self.jobs)
        self._run_id = next(self._run_ids)
        self._runner = TaskRunner(self, self._run_id, chosen.jobs)
        report = await self._runner.execute(order, chosen, forced, keep_going, awaited)
        self.force_once -= set(report.executed)
        if raise_errors and report.errors:
            task, error = next(iter(report.errors.items()))
            failure = TaskFailed(task, error)
            failure.report = report  # type: ignore[attr-defined]
            raise failure from error
        return report

    def close(self) -> None:
        """End worker pools and clusters this graph started; close the cache."""
        self._pool.shutdown()
        self.store.close()
