"""A snapshot of a session for display: tasks, edges, statuses, plan, costs, trace.

Views render an :class:`Overview` and nothing else, so they never reach into
the executor or the store. Building one plans (reads metadata) but never
loads or runs anything; when the graph cannot be planned (a parameter no
longer resolves), ``problem`` says why and statuses fall back to the last
known ones. Its costs (a cache entry read per task) are read when first
asked for, once: a view that shows no costs never pays for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from dagnb.errors import DagnbError
from dagnb.plan import MAY_RUN
from dagnb.run.costs import TaskCosts, task_costs
from dagnb.status import STATUSES, Status

if TYPE_CHECKING:
    from dagnb.cache.base import CacheEntry, Store
    from dagnb.graph import TaskGraph
    from dagnb.plan import Plan
    from dagnb.trace import Timeline, Trace

__all__ = ["STATUSES", "Overview", "Planned", "Session", "levels", "overview", "planned"]

T = TypeVar("T")


class Session(Protocol):
    """What a snapshot reads of a graph (:class:`dagnb.Graph` is one), read-only.

    A Protocol, not the class: the graph builds its snapshots with this module,
    so this module must not import it back.
    """

    @property
    def tasks(self) -> TaskGraph: ...
    @property
    def statuses(self) -> Mapping[str, Status]: ...
    @property
    def store(self) -> Store: ...
    @property
    def trace(self) -> Trace | None: ...
    @property
    def timeline(self) -> Timeline: ...
    def plan(self) -> Plan: ...
    def plan_since(self, last: Plan | None) -> tuple[Plan, set[str] | None]: ...
    def ran_before(self, task: str) -> bool: ...
    def current_entry(self, task: str) -> CacheEntry | None: ...


@dataclass
class Overview:
    """What the views show, taken at one moment."""

    tasks: list[str]
    upstream: dict[str, list[str]]
    statuses: dict[str, Status]
    plan: Plan | None = None
    problem: str | None = None
    # reads the rows of `costs` for these statuses; None: no costs
    costs_of: Callable[[Mapping[str, str]], list[TaskCosts]] | None = field(default=None, repr=False, compare=False)
    trace: Trace | None = None  # the latest run's
    timeline: Timeline | None = None  # every run since the session started
    # what views derived from this snapshot (a layout, rendered HTML), kept so that views showing the same
    # snapshot derive it once; a snapshot is never changed after it is taken, and `replace` starts a new memo
    memo: dict[object, object] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def costs(self) -> list[TaskCosts]:
        """One row per task (read at the first call, then kept)."""
        read = self.costs_of
        return self.derived("costs", lambda: read(self.statuses) if read is not None else [])

    def derived(self, key: object, make: Callable[[], T]) -> T:
        """``make()``, computed once per snapshot and ``key``."""
        try:
            return self.memo[key]  # type: ignore[return-value]
        except KeyError:
            found = self.memo[key] = make()
            return found

    def counts(self) -> dict[str, int]:
        """How many tasks show each status, in the order of :data:`STATUSES`."""
        found: dict[str, int] = {s: 0 for s in STATUSES}
        for status in self.statuses.values():
            found[status] = found.get(status, 0) + 1
        return {s: n for s, n in found.items() if n}

    def summary(self) -> str:
        """``4 tasks: 2 done, 1 cached, 1 stale``."""
        if not self.tasks:
            return "no tasks yet: define one with %%task"
        parts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        noun = "task" if len(self.tasks) == 1 else "tasks"
        return f"{len(self.tasks)} {noun}: {parts}"


def levels(tasks: list[str], upstream: dict[str, list[str]]) -> dict[str, int]:
    """Each task's dependency level: 0 without upstream, else one more than its deepest upstream."""
    level: dict[str, int] = {}
    for task in tasks:  # upstream first
        level[task] = 1 + max((level[u] for u in upstream.get(task, ()) if u in level), default=-1)
    return level


@dataclass(frozen=True)
class Planned:
    """The plan of one moment and the status it gives each task: what views and status lines share.

    Taking it fingerprints the notebook variables tasks read, so the
    notebook glue takes one per cell, for every view and line on the page.
    """

    plan: Plan | None
    problem: str | None
    statuses: dict[str, Status]
    changed: set[str] | None = None  # the tasks whose status may differ from the plan it was taken after (None: all)

    def reasons(self, only: Iterable[str] | None = None) -> dict[str, str]:
        """Why each task (of ``only``) would run (or wait for an upstream task that reruns, or be loaded)."""
        if self.plan is None:
            return {}
        plan = self.plan
        decisions = plan.decisions if only is None else [plan[t] for t in only if t in self.statuses]
        found = {d.task: d.reason for d in decisions if d.action in MAY_RUN}
        found.update({d.task: "its value for these inputs is in the cache" for d in decisions if d.action == "load"})
        return found


def planned(graph: Session, since: Planned | None = None, following: bool = False) -> Planned:
    """Plan ``graph`` now; when it cannot be planned, say why and keep the last known statuses.

    ``following``: the plan after a cell, which follows ``since`` (the one after
    the cell before; ``None`` at first): only the tasks whose decision may
    have changed since are decided again (:meth:`~dagnb.api.Graph.plan_since`).
    Only the notebook glue follows, once per cell.
    """
    try:
        if following:
            plan, changed = graph.plan_since(since.plan if since is not None else None)
        else:
            plan, changed = graph.plan(), None
    except DagnbError as exc:
        return Planned(None, str(exc), {t: graph.statuses.get(t, "pending") for t in graph.tasks.order(None)})
    if changed is None or since is None:
        return Planned(plan, None, plan.statuses(graph.statuses, graph.ran_before))
    statuses = dict(since.statuses)
    for task in changed:
        if task in graph.tasks.specs:
            statuses[task] = plan.statuses(graph.statuses, graph.ran_before, only=task)[task]
        else:
            statuses.pop(task, None)
    return Planned(plan, None, statuses, changed)


def overview(graph: Session, now: Planned | None = None) -> Overview:
    """Snapshot ``graph`` for the views (``now``: a plan already taken at this moment)."""
    tasks = graph.tasks.order(None)
    upstream = {t: graph.tasks.upstream(t) for t in tasks}
    now = now if now is not None else planned(graph)
    statuses = {t: now.statuses.get(t, "pending") for t in tasks}

    def costs_of(shown: Mapping[str, str]) -> list[TaskCosts]:
        entries = {t: graph.current_entry(t) for t in tasks}
        return task_costs(tasks, shown, entries, graph.store.hit_totals())

    return Overview(tasks, upstream, statuses, now.plan, now.problem, costs_of, graph.trace, graph.timeline)
