"""A snapshot of a session for display: tasks, edges, statuses, plan, costs, trace.

Views render an :class:`Overview` and nothing else, so they never reach into
the executor or the store. Building one plans (reads metadata) but never
loads or runs anything; when the graph cannot be planned (a parameter no
longer resolves), ``problem`` says why and statuses fall back to the last
known ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .costs import TaskCosts, task_costs
from .errors import DagnbError

if TYPE_CHECKING:
    from .api import Graph
    from .plan import Plan
    from .trace import Trace

__all__ = ["STATUSES", "Overview", "levels", "overview"]

STATUSES = ("pending", "stale", "running", "done", "cached", "failed", "skipped", "cancelled", "timed-out",
            "interrupted")


@dataclass
class Overview:
    """What the views show, taken at one moment."""

    tasks: list[str]
    upstream: dict[str, list[str]]
    statuses: dict[str, str]
    plan: Plan | None = None
    problem: str | None = None
    costs: list[TaskCosts] = field(default_factory=list)
    trace: Trace | None = None

    def counts(self) -> dict[str, int]:
        """How many tasks show each status, in the order of :data:`STATUSES`."""
        found = {s: 0 for s in STATUSES}
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


def overview(graph: Graph) -> Overview:
    """Snapshot ``graph`` for the views."""
    tasks = graph.tasks.order(None)
    upstream = {t: graph.tasks.upstream(t) for t in tasks}
    plan, problem = None, None
    try:
        plan = graph.plan()
    except DagnbError as exc:
        problem = str(exc)
    if plan is not None:
        statuses = plan.statuses(graph.statuses, lambda t: t in graph.results or graph.store.head(t) is not None)
    else:
        statuses = {t: graph.statuses.get(t, "pending") for t in tasks}
    entries = {t: graph.current_entry(t) for t in tasks}
    costs = task_costs(tasks, statuses, entries, graph.store.hit_totals())
    return Overview(tasks, upstream, statuses, plan, problem, costs, graph.trace)
