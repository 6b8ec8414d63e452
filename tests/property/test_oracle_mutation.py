"""The oracle with in-place changes: by tasks that change their inputs, and by the user's cells.

Hypothesis draws a DAG of 2-6 tasks whose values are lists; some tasks
*append to their first input in place* after computing their own value, as
careless notebook code does. Between runs, edits change a task's code, or a
cell changes a task's value in place (``rows.append(99)``), or the kernel
restarts (a new Graph over the same cache). After every run:

(a) the value of every task that is not waiting for a cell's damage to be
    read equals a plain-Python model computed from unchanged inputs, and a
    from-scratch run over a cold cache gives the same values;
(b) with a disk cache, nothing outside the stale cone of the edited tasks
    executes (repairs reload, they do not recompute), counted in a log file;
(c) after the final restart every value, loaded from the cache, equals the
    model: no result computed from a changed value was ever cached.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, replace
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dagnb
from dagnb.errors import ValueChangedWarning

_FILES = count()


@dataclass(frozen=True)
class Gen:
    index: int
    ups: tuple[int, ...]
    mutates: bool  # appends 7 to its first input in place, after computing its value
    k: int


class Session:
    """The generated notebook: sources exec'd into one namespace, as cells would be."""

    def __init__(self, tasks: list[Gen], log: str) -> None:
        self.tasks, self.log, self.salt = list(tasks), log, next(_FILES)
        self.ns: dict[str, Any] = {"__name__": "__main__"}
        self.funcs: dict[str, Any] = {}
        for task in self.tasks:
            self.define(task)

    @staticmethod
    def name(index: int) -> str:
        return f"m{index}"

    @property
    def names(self) -> list[str]:
        return [self.name(t.index) for t in self.tasks]

    def source(self, task: Gen) -> str:
        params = [self.name(u) for u in task.ups]
        total = " + ".join(f"sum({p})" for p in params) or "0"
        lines = [f"def {self.name(task.index)}({', '.join([*params, f'log={self.log!r}'])}):",
                 '    with open(log, "a") as fh:',
                 f'        fh.write("{self.name(task.index)}\\n")',
                 f"    value = [({total}) * 3 + {task.k} + {self.salt} * 0]"]
        if task.mutates and params:
            lines.append(f"    {params[0]}.append(7)")
        lines.append("    return value")
        return "\n".join(lines) + "\n"

    def define(self, task: Gen) -> Any:
        self.tasks[task.index] = task
        exec(compile(self.source(task), f"<oracle-mutation-{next(_FILES)}>", "exec"), self.ns)  # noqa: S102
        self.funcs[self.name(task.index)] = self.ns[self.name(task.index)]
        return self.ns[self.name(task.index)]

    def model(self) -> dict[str, list[int]]:
        values: dict[str, list[int]] = {}
        for task in self.tasks:
            values[self.name(task.index)] = [sum(sum(values[self.name(u)]) for u in task.ups) * 3 + task.k]
        return values

    def cone(self, names: set[str]) -> set[str]:
        found = set(names)
        for task in self.tasks:
            if any(self.name(u) in found for u in task.ups):
                found.add(self.name(task.index))
        return found

    def readers(self, name: str) -> set[str]:
        return {self.name(t.index) for t in self.tasks if any(self.name(u) == name for u in t.ups)}


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Gen], list[tuple[str, int, int]]]:
    n = draw(st.integers(2, 6))
    tasks = []
    for i in range(n):
        ups = draw(st.lists(st.integers(0, i - 1), max_size=min(2, i), unique=True)) if i else []
        tasks.append(Gen(i, tuple(sorted(ups)), draw(st.booleans()), draw(st.integers(0, 3))))
    kinds = st.sampled_from(("body", "cell", "cell", "restart"))
    edits = draw(st.lists(st.tuples(kinds, st.integers(0, n - 1), st.integers(0, 5)), min_size=1, max_size=5))
    return tasks, edits


def executed(log: str, before: int) -> list[str]:
    with open(log) as handle:
        return handle.read().split()[before:]


def log_size(log: str) -> int:
    return len(executed(log, 0)) if os.path.exists(log) else 0


def new_graph(session: Session, cache: str | None) -> dagnb.Graph:
    graph = dagnb.Graph(cache_dir=cache, namespace=session.ns)
    for name in session.names:
        graph.task(session.funcs[name])
    return graph


def from_scratch(session: Session) -> dict[str, Any]:
    graph = new_graph(session, None)
    graph.namespace = {}  # its own namespace: the session's values stay as they are
    graph.run()
    return {name: graph[name] for name in session.names}


def check(tasks: list[Gen], edits: list[tuple[str, int, int]], disk: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="dagnb-oracle-mutation-") as root:
        log = os.path.join(root, "log.txt")
        session = Session(tasks, log)
        cache = os.path.join(root, "cache") if disk else None
        graph = new_graph(session, cache)
        graph.run()
        damaged: set[str] = set()  # values a cell changed that no task has read since
        for kind, target, value in edits:
            name = session.name(target)
            touched: set[str] = set()
            if kind == "body":
                session.define(replace(session.tasks[target], k=value))
                graph.task(session.funcs[name])
                touched = {name}
            elif kind == "cell" and isinstance(session.ns.get(name), list):
                session.ns[name].append(99)
                damaged.add(name)
            elif kind == "restart" and disk:
                graph.store.close()
                graph = new_graph(session, cache)
                damaged.clear()  # a restart loads every value from the cache
            before = log_size(log)
            graph.run()
            ran = set(executed(log, before))
            for task in ran:  # a task that ran checked what it read first
                damaged -= {u for u in damaged if task in session.readers(u)}
            model = session.model()
            for task in session.names:
                if task not in damaged:
                    assert graph[task] == session.ns[task] == model[task], (task, graph[task], model[task])
            assert from_scratch(session) == model
            if disk:
                assert ran <= session.cone(touched), f"ran {sorted(ran)} outside the cone of {sorted(touched)}"
        if disk:
            graph.store.close()
            restarted = new_graph(session, cache)
            before = log_size(log)
            restarted.run()
            assert executed(log, before) == [], "after a restart everything is cached"
            assert {t: restarted[t] for t in session.names} == session.model(), "a changed value reached the cache"
            restarted.store.close()


@pytest.mark.parametrize("disk", [True, False], ids=["disk cache", "memory cache"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_in_place_changes_never_change_what_is_computed_or_cached(disk: bool, scenario: Any) -> None:
    tasks, edits = scenario
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ValueChangedWarning)
        check(tasks, edits, disk)
