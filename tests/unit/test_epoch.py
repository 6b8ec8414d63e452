"""One plan per epoch on the Python API (``dagnb/epoch.py``): no IPython.

A notebook input of a type registered with ``dagnb.register_fingerprint``
counts how often it is fingerprinted (``Counted.calls``, which no task
reads); executions are counted in the log file the task bodies append to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import dagnb
from dagnb.errors import UnresolvedParameter
from dagnb.plan import Plan, plan_run
from tests.unit.notebook_cells import Notebook, runs


class Counted:
    calls = 0

    def __init__(self, items: list[int]) -> None:
        self.items = items


def _counted(value: Counted) -> list[int]:
    Counted.calls += 1
    return value.items


dagnb.register_fingerprint(Counted, _counted)


def _notebook(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.ns["x"] = Counted([1, 2, 3])
    nb.task("def use(x):\n    note('use')\n    return len(x.items)\n")
    nb.task("def other(x):\n    note('other')\n    return sum(x.items)\n")
    return nb


def _calls(action: Any) -> int:
    before = Counted.calls
    action()
    return Counted.calls - before


def test_without_an_epoch_each_plan_fingerprints_again_and_sees_a_change_in_place(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    graph = nb.graph
    assert _calls(graph.plan) == 1  # two tasks read `x`: one fingerprint per plan
    assert _calls(graph.plan) == 1
    nb.run()
    assert graph.why("use").stale is False
    nb.ns["x"].items.append(4)  # no cell, no run: the next plan still sees it
    assert graph.plan()["use"].action == "run"
    assert graph.why("use").reasons == ("input x changed",)
    assert graph.stale(["use", "other"]) == ["use", "other"]


def test_inside_an_epoch_plans_share_one_fingerprint_and_one_plan(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    graph = nb.graph
    with graph.epoch():
        assert _calls(graph.plan) == 1
        assert _calls(lambda: (graph.plan(), graph.why("use"), graph.stale(["other"]), graph.overview())) == 0
        assert graph.plan() is graph.plan()


def test_inside_an_epoch_a_task_body_or_a_definition_ends_it(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    nb.task("def grow(x):\n    note('grow')\n    x.items.append(len(x.items))\n    return 0\n", volatile=True)
    graph = nb.graph
    with graph.epoch():
        assert graph.plan()["use"].action == "run"
        _, ran = nb.run("grow")  # its body changes `x` in place: the epoch ends with it
        assert ran == ["grow"]
        assert _calls(lambda: graph.plan(["use"])) == 1
        _, ran = nb.run("use", "other")
        assert ran == ["use", "other"]
        assert graph.plan()["use"].action == "fresh"
        nb.cell("x.items.append(9)")  # inside an epoch the caller vouches that nothing like this happens ...
        nb.task("def more(use):\n    note('more')\n    return use\n")  # ... until a definition ends it
        assert graph.plan()["use"].action == "run"
    assert runs(nb.log) == ["grow", "use", "other"]


def test_a_cached_run_inside_an_epoch_keeps_its_fingerprints(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    nb.run()
    graph = nb.graph
    with graph.epoch():
        assert _calls(lambda: (nb.run("use"), graph.plan(), graph.stale(["other"]))) == 1
    assert runs(nb.log) == ["use", "other"]


def _same(plan: Plan, expected: Plan) -> None:
    assert [(d.task, d.action, d.reasons) for d in plan.decisions] == \
        [(d.task, d.action, d.reasons) for d in expected.decisions]


def test_the_plan_since_the_last_one_decides_again_only_what_changed_and_equals_a_full_plan(tmp_path: Path) -> None:
    nb = _notebook(tmp_path)
    nb.task("def one():\n    note('one')\n    return 1\n")
    nb.task("def two(one):\n    note('two')\n    return one + 1\n")
    graph = nb.graph
    last, again = graph.plan_since(None)
    assert again is None
    nb.run("two")
    last, again = graph.plan_since(last)
    assert again == {"one", "two", "use", "other"}  # the run touched one and two; use and other read `x`
    steps = [
        (lambda: None, {"use", "other"}),  # not fresh, and they read the namespace: decided at every cell
        (lambda: nb.ns["x"].items.append(5), {"use", "other"}),
        (lambda: nb.task("def two(one):\n    note('two')\n    return one + 2\n"), {"two", "use", "other"}),
        (lambda: nb.run(), {"one", "two", "use", "other"}),
        (lambda: nb.task("def three(two):\n    note('three')\n    return two\n"), {"three", "use", "other"}),
    ]
    for step, expected in steps:
        step()
        last, again = graph.plan_since(last)
        assert again == expected
        _same(last, plan_run(graph))
        assert all(last[d.task] is d for d in last.decisions)
    graph.drop("three")  # a task gone: the plan that follows leaves it out, its index too
    last, again = graph.plan_since(last)
    _same(last, plan_run(graph))
    assert "three" in again and "three" not in last.index() and len(last.index()) == len(last.decisions)
    graph.drop("one")  # `two` no longer resolves: the plan after it says why, as a full plan does
    with pytest.raises(UnresolvedParameter):
        graph.plan_since(last)
    nb.task("def one():\n    note('one')\n    return 1\n")
    last, again = graph.plan_since(last)
    assert again is None  # after a plan that failed, every task is decided again
    _same(last, plan_run(graph))


def test_a_plan_after_a_cell_keeps_its_own_tasks_when_more_are_appended_and_read_later(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task("def t0():\n    return 0\n")
    graph = nb.graph
    last, _ = graph.plan_since(None)
    kept = []
    for i in range(1, 40):  # each one defined below the others: the run order only grows
        nb.task(f"def t{i}(t{i - 1}):\n    return t{i - 1} + 1\n")
        if i == 20:
            nb.run(f"t{i}")
        last, again = graph.plan_since(last)
        assert f"t{i}" in again
        kept.append((i, last))
    for i, plan in kept:  # read only now, after every later task was appended
        assert [d.task for d in plan.decisions] == [f"t{j}" for j in range(i + 1)]
        assert set(plan.index()) == {f"t{j}" for j in range(i + 1)}
    _same(last, plan_run(graph))
    nb.task("def t5(t4):\n    return t4 + 10\n")  # a change that is no append: the next plan compares every task
    last, again = graph.plan_since(last)
    assert again >= {f"t{j}" for j in range(5, 40)}
    _same(last, plan_run(graph))
