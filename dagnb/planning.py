"""Planning in one session: what a run would do, decided again no more than needed.

``Graph.plan``, ``plan_since``, ``stale``, ``check`` and the start of each
run come here. A :class:`Planner` holds what a session knows between
planning calls (:mod:`dagnb.freshness` for values known up to date,
:mod:`dagnb.epoch` for fingerprints and the plan of this epoch), and the
planner itself (:mod:`dagnb.plan`) decides each task.

Invariants (each one a stale answer it prevents):

* Every planning call and every run starts with :meth:`Planner.namespace_changed`:
  where the namespace may have changed, a new epoch begins and fresh tasks
  whose reads changed are forgotten.
* The epoch's plan is reused only for a call that asks for every task and
  forces none.
* A ``plan_since`` that fails touches every task: the plan it started from
  is no base for the next one.
* A task's parameters all resolve before any plan or run of it is taken.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol, cast

from dagnb.epoch import Epoch
from dagnb.freshness import Freshness, NamespaceReaders, bind_fresh_upstream, still_bound
from dagnb.plan import Decision, Plan, plan_run
from dagnb.replan import plan_again

if TYPE_CHECKING:
    from dagnb.cache.base import Store
    from dagnb.graph import TaskGraph
    from dagnb.plan import PlanState, Result

__all__ = ["Planner", "Planning"]


class Planning(Protocol):
    """What planning reads of its graph (:class:`dagnb.Graph` is one); the graph is also the planner's state."""

    @property
    def tasks(self) -> TaskGraph: ...
    @property
    def namespace(self) -> MutableMapping[str, Any]: ...
    @property
    def results(self) -> Mapping[str, Result]: ...
    @property
    def store(self) -> Store: ...
    @property
    def force_once(self) -> set[str]: ...


class Planner:
    """The planning state of one session.

    Responsibilities:
        * begin an epoch where the namespace may have changed, or a definition changed the graph;
        * take plans: of every task (once per epoch), of targets, or from the last plan;
        * find the tasks a run must decide (stopping at fresh ones) and check that they resolve;
        * know which tasks ran before (``stale`` rather than ``pending``).
    """

    def __init__(self, graph: Planning) -> None:
        self._graph = graph
        self.freshness = Freshness(graph.tasks.upstream, graph.tasks.below)  # values known up to date
        self.fresh: dict[str, Decision] = {}  # the decision of each fresh task, for plans
        self.epoch = Epoch()  # the fingerprints and the plan of this epoch
        self._ran_before: dict[str, bool] = {}  # see ran_before
        self._readers = NamespaceReaders()  # for `plan_since`

    @property
    def _state(self) -> PlanState:
        # the graph is the planner's state; typed apart because PlanState declares plain (invariant) attributes
        return cast("PlanState", self._graph)

    # ---------------------------------------------------------------- epochs

    def namespace_changed(self) -> None:
        """The namespace may have changed (see ``Graph.namespace_changed``)."""
        if self.epoch.may_have_changed():
            self.new_epoch()

    def new_epoch(self) -> None:
        self.epoch.end()
        self.freshness.forget_readers(functools.partial(still_bound, self._graph.namespace))

    def definition_changed(self, name: str | None) -> None:
        """Task ``name`` (``None``: every task) is about to change or just changed (a :class:`TaskGraph` watcher)."""
        if name is None:
            self.freshness.clear()
        else:
            self.freshness.forget(name)
        self.new_epoch()  # the cell's code ran, and keys may read what it defined

    def values_bound(self) -> None:
        """Values were bound outside a run (a restore): no plan taken before holds."""
        self.epoch.plan = None
        self.freshness.touch_all()

    # ------------------------------------------------------------- what ran

    def scope_changed(self) -> None:
        """The store now keeps another notebook's heads: forget what they answered (ran before, the plan's reasons)."""
        self._ran_before.clear()
        self.epoch.plan = None

    def ran_before(self, task: str) -> bool:
        """Whether ``task`` has a value in memory or a head in the cache (see ``Graph.ran_before``)."""
        if task in self._graph.results:
            return True
        known = self._ran_before.get(task)
        if known is None:
            known = self._ran_before[task] = self._graph.store.head(task) is not None
        return known

    def bound(self, task: str) -> None:
        """This session bound a value of ``task``: it ran before."""
        self._ran_before.pop(task, None)

    def fresh_decision(self, task: str) -> Decision | None:
        """What a run would decide for ``task`` when its value is known up to date."""
        return self.fresh.get(task) if task in self.freshness else None

    # --------------------------------------------------------------- plans

    def plan(self, targets: Iterable[str] | None, force: Iterable[str], skip_fresh: bool) -> Plan:
        """See ``Graph.plan``."""
        targets = None if targets is None else list(targets)
        force = list(force)
        self.namespace_changed()
        if skip_fresh and targets is not None:
            return plan_run(self._state, force=force, order=self.not_fresh(targets, frozenset(force), new_runs=True))
        if targets is None and not force and self.epoch.plan is not None:
            return cast(Plan, self.epoch.plan)  # nothing it depends on changed since it was taken
        self.order(targets)
        plan = plan_run(self._state, targets, force)
        if targets is None and not force:
            self.epoch.plan = plan
        return plan

    def plan_since(self, last: Plan | None) -> tuple[Plan, set[str] | None]:
        """See ``Graph.plan_since``."""
        self.namespace_changed()
        touched = self.freshness.take_touched()
        specs = self._graph.tasks.specs
        try:
            if last is None or touched is None:
                self._readers.find_all(specs)
                return self.plan(None, (), False), None
            changed = touched | self._readers.not_fresh(touched, specs, self.freshness)
            plan, again = plan_again(self._state, last, changed)
        except BaseException:
            self.freshness.touch_all()  # `last` is no base for the next plan
            raise
        self.epoch.plan = plan
        return plan, again | {t for t in touched if t not in specs}  # with the tasks gone (not a walk over specs)

    def stale(self, names: list[str]) -> list[str]:
        """See ``Graph.stale``."""
        self.namespace_changed()
        plan = plan_run(self._state, order=self.not_fresh(names, new_runs=True))
        wanted = set(names)
        return [t for t in plan.to_run if t in wanted]

    def check(self, name: str) -> None:
        """See ``Graph.check``."""
        self.namespace_changed()
        self.not_fresh([name], new_runs=True)

    # ---------------------------------------------------- what a run decides

    def run_order(self, targets: Iterable[str] | None, forced: frozenset[str], skip_fresh: bool) -> list[str]:
        """The tasks a run of ``targets`` decides, in run order, once every parameter among them resolves.

        ``skip_fresh`` (a cell's run): upstream tasks known fresh are left out, and bound again where the
        user overwrote their variable.
        """
        self.namespace_changed()  # a cell or a task may have changed what they read since
        if not skip_fresh or targets is None:
            return self.order(targets)
        order = self.not_fresh(list(targets), forced)
        graph = self._graph
        bind_fresh_upstream(order, graph.tasks.upstream, graph.results, graph.namespace)
        return order

    def not_fresh(self, targets: list[str], forced: frozenset[str] = frozenset(), new_runs: bool = False) -> list[str]:
        """``targets`` and the upstream tasks not known fresh, in run order, once every parameter among them
        resolves (the walk stops at fresh tasks, which resolved when they were decided).

        ``new_runs`` (planning only): the walk also stops at an upstream task that never ran in this cache,
        which must run, so everything below it waits (a plan then says ``pending`` without deciding it).
        """
        tasks = self._graph.tasks
        names = [tasks.get(t).name for t in targets]
        skip = forced | self._graph.force_once
        need = self.freshness.to_decide(names, skip, self.ran_before if new_runs else None)
        return self._resolved(tasks.sort(need))

    def order(self, targets: Iterable[str] | None) -> list[str]:
        """The run order for ``targets``, once every parameter in it resolves."""
        return self._resolved(self._graph.tasks.order(None if targets is None else list(targets)))

    def _resolved(self, order: list[str]) -> list[str]:
        """``order``, once every parameter in it resolves (else :class:`~dagnb.errors.UnresolvedParameter`)."""
        for task in order:
            self._graph.tasks.resolve(task, self._graph.namespace)
        return order
