"""What a :class:`~dagnb.api.Graph` keeps: its cache (where, for whom, its upkeep), its recorded runs, traces.

Each method hands the call on: recorded runs to :mod:`dagnb.history` and
:mod:`dagnb.restore`, traces to :mod:`dagnb.trace`, the cache to its
:class:`~dagnb.cache.store.Store`. A part of :class:`~dagnb.api.Graph`,
which sets the attributes declared here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from dagnb.cache.store import CacheEntry, Pruned, RunRecord, Store, open_store
from dagnb.history import History, RunDiff, diff_runs, run_record, state_at
from dagnb.restore import Restored, restore_rows
from dagnb.run.heap import run_heap
from dagnb.scope import Scope

if TYPE_CHECKING:
    from dagnb.graph import TaskGraph
    from dagnb.plan import Result
    from dagnb.planning import Planner
    from dagnb.status import Status
    from dagnb.trace import Timeline, Trace, TraceRecorder

__all__ = ["Records"]


class Records:
    """Where the cache lives and whose records it keeps; the runs it recorded; the traces of this session."""

    tasks: TaskGraph
    store: Store
    results: dict[str, Result]
    _planner: Planner
    _recorder: TraceRecorder
    statuses: dict[str, Status]

    if TYPE_CHECKING:  # restoring binds each value as a run does (HostCalls._bind)

        def _bind(self, task: str, result: Result) -> None: ...

    def use_notebook(self, notebook: str | os.PathLike[str] | None) -> Scope:
        """Keep heads, history and hit counts for ``notebook`` (``None``: the working folder) from now on."""
        scope = Scope.of_notebook(notebook) if notebook is not None else Scope.of_folder()
        self.store.use_scope(scope)
        self._planner.scope_changed()  # heads answered from the other scope; the plan's reasons compared with them
        return scope

    def use_cache_dir(self, cache_dir: str | os.PathLike[str] | None) -> Store:
        """Keep the cache in ``cache_dir`` from now on (``None``: in memory), for the same scope; returns the store.

        The old store is closed. Values in memory stay; what planning learned from the old store's heads
        (which tasks ran before, the plan's reasons) is forgotten.
        """
        scope = self.scope
        self.store.close()
        self.store = open_store(cache_dir, scope)
        self._planner.scope_changed()  # heads answered from the old cache; the plan's reasons compared with them
        return self.store

    @property
    def scope(self) -> Scope:
        """Whose heads, history and hit counts this graph reads and writes: its notebook's, or its folder's."""
        return self.store.scope or Scope.of_folder()

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
        return self.store.prune(max_bytes, keep={r.fingerprint for r in self.results.values()})

    def clear_cache(self, task: str | None = None) -> int:
        """Remove every entry of the cache (``task``: only that task's); returns how many. Values in memory stay.

        Raises:
            UnknownTask: no task is named ``task`` (the error names close matches).
        """
        if task is not None:
            self.tasks.get(task)
        return self.store.clear(task)

    def current_entry(self, task: str) -> CacheEntry | None:
        """The cache entry of the value ``task`` has now, else of the key it last had."""
        result = self.results.get(task)
        if result is not None:
            return self.store.entry(result.key)
        return self.store.head(task)

    def estimates(self, tasks: Sequence[str]) -> dict[str, float]:
        """How long each task took when it last ran (for scheduling); unknown ones are left out."""
        return self.store.last_durations(tasks)

    @property
    def last_history_id(self) -> int:
        """The id the history gave this graph's latest run (0: none yet, or a store without history)."""
        return self.store.last_run_id

    def history(self, limit: int | None = 10) -> History:
        """Recent runs of this graph's scope (its notebook, or its folder), newest first."""
        return History(self.store.runs(limit), self.scope.describe())

    def run_record(self, run_id: int) -> RunRecord:
        """One recorded run, by the id ``history`` shows (only that run is read)."""
        return run_record(self.store, run_id, self.scope.describe())

    def diff(self, first: int, second: int) -> RunDiff:
        """Which tasks changed key or value from run ``first`` to run ``second`` (the values each run left)."""
        with run_heap(len(self.tasks.specs)):  # each run of the walk back is an object or more: see dagnb.run.heap
            return diff_runs(self.state_at(first), self.state_at(second))

    def state_at(self, run_id: int) -> RunRecord:
        """Run ``run_id`` with, for each task it did not decide, the row of the latest earlier run that did.

        A ``%%task`` cell's run decides its own task and the upstream tasks
        not already up to date in memory; the others kept the values earlier
        runs gave them. So this is every value the session had when that run
        ended. The walk back goes over the earlier runs of this graph's scope
        (another notebook's runs are not its own) and stops at one not signed.
        """
        return state_at(self.store, self.tasks, run_id, self.scope.describe())

    def restore(self, run_id: int) -> Restored:
        """Bind exactly the values run ``run_id`` had, from the cache; say per task whether it was restored.

        The values are those the session had when the run ended (:meth:`state_at`). Each task gets the
        value its run recorded (a volatile or forced task
        whose key later got another value included), never merely the
        newest value of its key, so restored values are consistent with
        each other. A history row that names an entry of another task is
        refused.
        """
        with run_heap(len(self.tasks.specs)):  # a value, an entry and a row per task: see dagnb.run.heap
            restored = Restored(run_id, restore_rows(self, self.state_at(run_id).tasks))
        self._planner.values_bound()
        return restored
