"""The plan after a cell, from the plan after the cell before: only what may have changed is decided again.

After each cell the notebook glue takes a plan (``Graph.plan_since``), so
its cost must not grow with the number of tasks: :func:`plan_again` decides
the tasks named changed, those below them and new ones, and keeps every
other decision of the plan before.

Invariants:

* A plan made here lists the same decisions, in the same order, as a full
  plan (:func:`dagnb.plan.plan_run`) of the same graph would (the cell
  oracle checks it after every cell).
* A plan keeps its own tasks however many are defined after it: it holds
  the graph's run order with its length then (see ``TaskGraph.run_order``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dagnb.plan import Decision, Plan, PlanState, plan_one

__all__ = ["plan_again"]


def plan_again(state: PlanState, last: Plan, changed: Iterable[str]) -> tuple[Plan, set[str]]:
    """Every task's plan now, from ``last`` (every task's plan, taken earlier): only the tasks ``changed``
    names, those below them and new tasks are decided again (returned with the plan); every other decision
    is ``last``'s.

    The caller vouches that nothing else can have changed since ``last`` (see :meth:`dagnb.api.Graph.replan`).
    A task of ``changed`` that is gone is left out, and so are the tasks it fed, which are decided again.
    """
    before = last.index()
    order, specs = state.tasks.run_order(), state.tasks.specs
    again = {t for t in changed if t in specs} | _new_tasks(last, order, specs)
    for task in list(again):
        again |= state.tasks.below(task)
    if not again and len(order) == len(before):
        return last, again
    decided: dict[str, Decision] = {}

    def fingerprint_of(task: str) -> str | None:
        decision = decided.get(task) or before.get(task)
        return decision.fingerprint if decision is not None else None

    fresh = getattr(state, "fresh_decision", None)
    for name in state.tasks.sort(again):
        decided[name] = plan_one(state, name, fingerprint_of, frozenset(), fresh)
    return _merged(before, decided, order), again


def _new_tasks(last: Plan, order: Sequence[str], specs: Mapping[str, Any]) -> set[str]:
    """The tasks ``last`` has no decision for.

    When the run order only grew since ``last`` was taken (the graph appends
    a task defined below the others to the same list, and makes a new list
    for any other change), those are the tasks appended: no walk over every
    task after each cell.
    """
    if isinstance(last, _Merged) and last.order is order and len(last.index()) == last.count <= len(order):
        return set(order[last.count :])
    return set(specs.keys() - last.index().keys())


def _merged(before: dict[str, Decision], decided: dict[str, Decision], order: Sequence[str]) -> Plan:
    """The plan of ``order``: ``decided``'s decisions, else ``before``'s (copied whole, not task by task in
    Python: the plan after each cell takes this, and it must not grow with the number of tasks)."""
    index = {**before, **decided}
    if len(index) != len(order):  # tasks gone since
        for gone in index.keys() - set(order):
            del index[gone]
    return _Merged(index, order)


class _Merged(Plan):
    """A plan made of an earlier one and the decisions taken since (:func:`plan_again`).

    Its decisions are put in run order only when something reads them all
    (a view, a `%dag plan`), not after every cell. It holds the graph's run
    order list and how much of it was there: the graph only ever appends to
    that list, and makes a new one for any other change, so that prefix
    stays this plan's order.
    """

    def __init__(self, index: dict[str, Decision], order: Sequence[str]) -> None:  # noqa: D107
        self._by_task, self.order, self.count = index, order, len(order)
        self._in_order: list[Decision] | None = None

    @property
    def decisions(self) -> list[Decision]:
        if self._in_order is None:
            self._in_order = list(map(self._by_task.__getitem__, self.order[: self.count]))
        return self._in_order

    @decisions.setter
    def decisions(self, value: list[Decision]) -> None:
        self._in_order, self._by_task = value, {d.task: d for d in value}
        self.order, self.count = [d.task for d in value], len(value)

    def index(self) -> dict[str, Decision]:
        return self._by_task
