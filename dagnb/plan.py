"""Staleness and its reasons, and the plan of a run.

Each task is decided from its key (:mod:`dagnb.keys`): kept in memory
(``fresh``), loaded from the cache, run, skipped by its condition, or left to
``wait`` for an upstream task that reruns first.

Invariants:

* Planning is a pure function of the graph, the namespace, the in-memory
  results and the store's metadata; it never loads a value.
* A plan lists every task it decides once, upstream first, and a
  :class:`Decision` is frozen: planning again (:mod:`dagnb.replan`) makes new
  decisions for the tasks that may have changed and keeps the others as
  they were.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from operator import attrgetter
from typing import Any, Literal, Protocol

from dagnb.cache.base import CacheEntry, Store
from dagnb.fingerprints.values import fingerprint
from dagnb.graph import Input, TaskGraph
from dagnb.keys import KeyInfo, compute_key, explain, tell_untracked
from dagnb.status import ENDED_BADLY, WITH_VALUE, Status

__all__ = [
    "FROM_CACHE",
    "MAY_RUN",
    "Action",
    "Decision",
    "KeyInfo",
    "Plan",
    "Result",
    "compute_key",
    "decide",
    "explain",
    "plan_one",
    "plan_run",
    "priorities",
]

DEFAULT_COST = 0.01  # seconds assumed for a task never measured, when no task has been

#: What a run does with a task: keep the value in memory (``fresh``), load it from the cache, run it, skip it
#: (its condition is false), or ``wait`` for an upstream task that reruns first and decide then (its key is not
#: known before). ``wait`` is an action, not a status: the task it names shows the status ``stale`` or ``pending``.
Action = Literal["fresh", "load", "run", "wait", "skip"]
#: The actions after which a task runs, or may run.
MAY_RUN: frozenset[Action] = frozenset({"run", "wait"})
#: The actions that take the value from memory or the cache.
FROM_CACHE: frozenset[Action] = frozenset({"fresh", "load"})


@dataclass
class Result:
    """A task's value in this session, with the key it was made under.

    ``fingerprint`` is the value's fingerprint (what its dependents' keys
    read); ``captured`` the streams and displays the task printed, replayed
    where it loads from the cache.
    """

    key: str
    fingerprint: str
    value: Any = field(repr=False)
    captured: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def output(self) -> str:
        """The old name of :attr:`fingerprint` (read-only)."""
        return self.fingerprint

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The old name of :attr:`captured` (read-only)."""
        return self.captured


class PlanState(Protocol):
    """What planning reads: a read-only view of a session (read-only members, so any mapping will do)."""

    @property
    def tasks(self) -> TaskGraph: ...

    @property
    def namespace(self) -> Mapping[str, Any]: ...

    @property
    def results(self) -> Mapping[str, Result]: ...

    @property
    def store(self) -> Store: ...


@dataclass(frozen=True)
class Decision:
    """What a run does with one task, and why."""

    task: str
    action: Action
    reasons: tuple[str, ...] = ()
    key: KeyInfo | None = None
    entry: CacheEntry | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str | None:
        """The value's fingerprint when known before running (fresh or cached)."""
        return self.entry.fingerprint if self.entry is not None else None

    @property
    def output(self) -> str | None:
        """The old name of :attr:`fingerprint`."""
        return self.fingerprint

    @property
    def reason(self) -> str:
        return ", ".join(self.reasons)


def _prior(state: PlanState, name: str) -> CacheEntry | None:
    result = state.results.get(name)
    if result is not None:
        return state.store.entry(result.key) or CacheEntry(result.key, name, result.fingerprint)
    return state.store.head(name)


def decide(
    state: PlanState,
    name: str,
    upstream: Mapping[str, str],
    force: frozenset[str] = frozenset(),
    defaulted: frozenset[str] = frozenset(),
) -> Decision:
    """Decide one task whose upstream tasks' fingerprints are all known.

    ``defaulted`` names upstream tasks skipped by their condition whose
    parameter has a default here: the task receives the default instead.
    """
    spec = state.tasks.specs[name]
    inputs = state.tasks.resolve(name, state.namespace)
    if defaulted:
        inputs = [Input(i.param, "constant", spec.defaults[i.param]) if i.param in defaulted else i for i in inputs]
    info = compute_key(
        spec, inputs, upstream, state.tasks.hidden(name), getattr(state, "fingerprint_input", fingerprint)
    )
    if name in force:
        return Decision(name, "run", ("forced",), info)
    if spec.volatile:
        return Decision(name, "run", ("volatile",), info)
    if info.untracked:
        return Decision(name, "run", tell_untracked(spec, info), info)
    result = state.results.get(name)
    if result is not None and result.key == info.key:
        return Decision(name, "fresh", ("cached",), info, CacheEntry(info.key, name, result.fingerprint))
    entry = state.store.entry(info.key)
    if entry is not None and entry.stored:
        return Decision(name, "load", ("cached",), info, entry)
    reasons = explain(info, _prior(state, name), inputs)
    if reasons in (("new",), ("not in cache",)) and name in getattr(state, "interrupted", ()):
        reasons = ("interrupted last time",)  # its partial value was never cached
    return Decision(name, "run", reasons, info)


@dataclass
class Plan:
    """What a run would do, task by task, upstream first."""

    decisions: list[Decision]
    _index: dict[str, Decision] | None = field(default=None, init=False, repr=False, compare=False)

    def __getitem__(self, name: str) -> Decision:
        return self.index()[name]

    def index(self) -> dict[str, Decision]:
        """Each task's decision, by task (built once per plan; do not change it)."""
        if self._index is None or len(self._index) != len(self.decisions):
            decisions = self.decisions
            self._index = dict(zip(map(attrgetter("task"), decisions), decisions))
        return self._index

    @property
    def to_run(self) -> list[str]:
        """Tasks that will run (their key is new) or may run (an upstream reruns first)."""
        return [d.task for d in self.decisions if d.action in MAY_RUN]

    @property
    def cached(self) -> list[str]:
        return [d.task for d in self.decisions if d.action in FROM_CACHE]

    def reason_to_run(self, name: str) -> str:
        """Why ``name`` would run (or wait for an upstream task that reruns); ``""`` when it would not."""
        decision = self[name]
        return decision.reason if decision.action in MAY_RUN else ""

    def rows(self) -> list[tuple[str, str, str]]:
        """``(task, what happens, why)`` for display."""
        words = {"fresh": "up to date", "load": "load from cache", "run": "run", "wait": "run if needed"}
        return [(d.task, words[d.action], d.reason) for d in self.decisions]

    def statuses(
        self, last: Mapping[str, Status], known: Callable[[str], bool], only: str | None = None
    ) -> dict[str, Status]:
        """The status each task shows until the next run starts.

        A task whose key is current keeps the status it last ended with
        (``done`` or ``cached``); one that failed, was skipped or cancelled
        keeps that; a task that has run before under another key is
        ``stale``; one that never has (``known`` says) is ``pending``, and
        so is one whose value is in the cache but not loaded yet. ``only``:
        the status of that one task.
        """
        shown: dict[str, Status] = {}
        for d in self.decisions if only is None else [self[only]]:
            before = last.get(d.task)
            if d.action == "fresh":
                shown[d.task] = before if before is not None and before in WITH_VALUE else "done"
            elif d.action == "load":
                shown[d.task] = "pending"
            elif before is not None and before in ENDED_BADLY:
                shown[d.task] = before
            elif d.action == "run":
                shown[d.task] = "pending" if d.reasons == ("new",) else "stale"
            else:
                shown[d.task] = "stale" if known(d.task) else "pending"
        return shown

    def summary(self) -> str:
        run, cached = len(self.to_run), len(self.cached)
        return f"plan: {run} to run, {cached} cached" if self.decisions else "plan: no tasks"

    def __repr__(self) -> str:
        return self.render_text()

    def render_text(self) -> str:
        width = max((len(d.task) for d in self.decisions), default=0)
        lines = [self.summary()]
        for task, what, why in self.rows():
            suffix = f"  ({why})" if why and what not in ("up to date", "load from cache") else ""
            lines.append(f"  {task.ljust(width)}  {what}{suffix}")
        return "\n".join(lines)

    def render_html(self) -> str:
        rows = "".join(
            f"<tr><td><code>{escape(t)}</code></td><td>{escape(w)}</td><td>{escape(r)}</td></tr>"
            for t, w, r in self.rows()
        )
        return (
            f"<div class='dagnb-plan'><b>{escape(self.summary())}</b>"
            f"<table><tr><th>task</th><th>next run</th><th>why</th></tr>{rows}</table></div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": self.render_html()}


def plan_run(
    state: PlanState,
    targets: Iterable[str] | None = None,
    force: Iterable[str] = (),
    order: Sequence[str] | None = None,
) -> Plan:
    """Dry run: decide every task needed for ``targets`` without running or loading any.

    ``order``: decide these tasks only (upstream first); an upstream task left out must be fresh.
    """
    forced = frozenset(state.tasks.get(f).name for f in force)
    known: dict[str, str] = {}
    decisions: list[Decision] = []
    fresh = getattr(state, "fresh_decision", None)  # a session's values known up to date need no key again
    if order is not None and fresh is not None:
        inside = set(order)
        for name in order:
            for up in state.tasks.upstream(name):
                same = fresh(up) if up not in inside else None
                if same is not None:
                    known[up] = same.fingerprint
    for name in state.tasks.order(targets) if order is None else order:
        decision = plan_one(state, name, known.get, forced, fresh)
        decisions.append(decision)
        if decision.fingerprint is not None:
            known[name] = decision.fingerprint
    return Plan(decisions)


def plan_one(
    state: PlanState,
    name: str,
    fingerprint_of: Callable[[str], str | None],
    forced: frozenset[str],
    fresh: Callable[[str], Decision | None] | None,
) -> Decision:
    """One task's decision in a plan, its upstream tasks' fingerprints known where a plan knows them."""
    if fresh is not None and name not in forced:
        same = fresh(name)
        if same is not None:
            return same
    ups = state.tasks.upstream(name)
    fingerprints = {u: fingerprint_of(u) for u in ups}
    waiting = [u for u, fp in fingerprints.items() if fp is None]
    if waiting:
        return Decision(name, "wait", tuple(f"upstream {u} reruns first" for u in waiting))
    return decide(state, name, fingerprints, forced)  # type: ignore[arg-type]


def priorities(
    order: Sequence[str], children: Mapping[str, Sequence[str]], estimates: Mapping[str, float]
) -> dict[str, float]:
    """Each task's longest remaining path: its own cost plus the costliest chain below it.

    Costs are durations measured on earlier runs; a task never measured
    counts as the median of those that were (or :data:`DEFAULT_COST`).
    Starting the ready task with the highest value first keeps the critical
    path moving (list scheduling by "bottom level").
    """
    known = sorted(estimates.values())
    default = known[len(known) // 2] if known else DEFAULT_COST
    rank: dict[str, float] = {}
    for task in reversed(order):  # downstream first
        below = 0.0  # the costliest chain under a child (a loop: a generator per task costs more)
        for child in children.get(task, ()):
            below = max(below, rank.get(child, 0.0))
        rank[task] = estimates.get(task, default) + below
    return rank
