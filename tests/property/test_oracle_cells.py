"""The oracle, cell by cell: a notebook session in a real IPython shell equals a from-scratch evaluation.

A ``%%task`` cell asks only for its own task: upstream tasks whose values are
known up to date are not decided again (``dagnb/freshness.py``). Hypothesis
draws sessions of the cells people run while a notebook grows, in any order:
task cells (reading earlier tasks, a notebook constant ``K``, a notebook
helper ``h``, an element of a notebook list ``L``, an earlier task's variable read as a global), definitions without
running (``--no-run``), a plain cell that changes ``K``, redefines ``h`` or changes ``L`` in place (one plan per epoch:
a cell must never reuse a fingerprint taken before it), a plain cell that overwrites a task's
variable, a task cell run again unchanged, ``%dag run``, ``%dag run --as-of``
(older values bound again), a cell of ``%dag`` commands that only read (in a
kernel the plan after it follows the plan before, where other ``%dag`` cells
are followed by a plan of every task), and a restart (a new session on the
same disk cache running the notebook top to bottom).

After each task cell, its task and every task upstream of it must hold the
value a from-scratch evaluation of the current definitions gives; after
``%dag run``, every task, in ``graph.results`` and in the namespace. After
every cell, a task whose value in memory is not what its definition now
gives must never be planned as up to date, and the plan after the cell
(``Graph.plan_since``, which decides again only what may have changed)
must equal a full plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

from dagnb import session
from dagnb.notebook import magics

NAMES = [f"t{i}" for i in range(5)]
READING = ["%dag plan", "%dag history", "%dag history --diff 1 {last}", "%dag why {task}", "%dag costs",
           "%dag trace", "x = 1\n%dag plan {task}"]  # cells of commands that only read


@dataclass
class Task:
    params: tuple[str, ...]
    reads_k: bool
    uses_h: bool
    const: int
    hidden: tuple[str, ...] = ()  # earlier tasks read as globals, not parameters
    reads_l: bool = False  # reads `L[0]`: a list a plain cell changes in place

    def cell(self, name: str, no_run: bool = False) -> str:
        terms = [*self.params, *self.hidden, *(["K"] if self.reads_k else []), *(["h()"] if self.uses_h else []),
                 *(["L[0]"] if self.reads_l else []), str(self.const)]
        flag = " --no-run" if no_run else ""
        return f"%%task{flag}\ndef {name}({', '.join(self.params)}):\n    return {' + '.join(terms)}\n"


@dataclass
class Model:
    """What the notebook holds now, evaluated from scratch."""

    tasks: dict[str, Task] = field(default_factory=dict)
    k: int = 0
    h: int = 0
    l: int = 0  # noqa: E741 - the model of `L[0]`

    def value(self, name: str) -> int:
        task = self.tasks[name]
        return sum(self.value(p) for p in (*task.params, *task.hidden)) + (self.k if task.reads_k else 0) + (
            self.h if task.uses_h else 0) + (self.l if task.reads_l else 0) + task.const

    def upstream(self, name: str) -> set[str]:
        found: set[str] = set()
        for p in (*self.tasks[name].params, *self.tasks[name].hidden):
            found |= {p} | self.upstream(p)
        return found

    def notebook(self) -> list[str]:
        """The cells of the notebook as it stands, top to bottom."""
        cells = [f"K = {self.k}", f"def h():\n    return {self.h}", f"L = [{self.l}]"]
        return cells + [self.tasks[n].cell(n) for n in NAMES if n in self.tasks]


def _task_op(draw: Any, index: int) -> tuple[Any, ...]:
    earlier = NAMES[:index]
    params = tuple(sorted(draw(st.sets(st.sampled_from(earlier), max_size=2)))) if earlier else ()
    others = [n for n in earlier if n not in params]
    hidden = tuple(sorted(draw(st.sets(st.sampled_from(others), max_size=1)))) if others else ()
    task = Task(params, draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 3)), hidden, draw(st.booleans()))
    return ("task", NAMES[index], task, draw(st.booleans()))


@st.composite
def sessions(draw: Any) -> list[tuple[Any, ...]]:
    ops: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(3, 14))):
        kind = draw(st.sampled_from(["task", "task", "task", "k", "h", "l", "overwrite", "again", "run", "restart",
                                     "restore", "read"]))
        if kind == "task":
            ops.append(_task_op(draw, draw(st.integers(0, len(NAMES) - 1))))
        elif kind == "k":
            ops.append(("k", draw(st.integers(0, 3))))
        elif kind in ("h", "l"):
            ops.append((kind, draw(st.integers(0, 3))))
        elif kind == "restore":
            ops.append(("restore", draw(st.integers(0, 20))))
        elif kind == "read":
            ops.append(("read", draw(st.sampled_from(READING)), draw(st.sampled_from(NAMES))))
        else:
            ops.append((kind, draw(st.sampled_from(NAMES))))
    return ops


@pytest.fixture(scope="module")
def shell() -> Any:
    globalipapp.start_ipython()
    return globalipapp.get_ipython()


def _fresh_session(shell: Any, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGNB_CACHE_DIR", str(cache))
    magics.unload(shell)
    shell.extension_manager.loaded.discard("dagnb")
    session.set_current(None)
    shell.reset(new_session=False)
    assert shell.run_cell("%load_ext dagnb").success


def _cell(shell: Any, source: str) -> None:
    with capture_output():
        result = shell.run_cell(source)
    error = result.error_in_exec or result.error_before_exec
    assert error is None, f"{source!r} failed: {error!r}"


def _check_cell(shell: Any, model: Model, name: str) -> None:
    graph = session.current()
    assert shell.user_ns[name] == model.value(name), name
    for up in model.upstream(name):
        assert graph.results[up].value == model.value(up), f"{up}, upstream of {name}"


_followed: list[Any] = [None, None]  # the graph the plans after cells follow, and the last of them


def _check_plan(model: Model) -> None:
    graph = session.current()
    plan = graph.plan()
    for name in model.tasks:
        result = graph.results.get(name)
        if result is not None and result.value != model.value(name):
            assert plan[name].action != "fresh", f"{name} holds {result.value}, planned fresh, should be {model.value(name)}"
    last = _followed[1] if _followed[0] is graph else None
    followed, _ = graph.plan_since(last)
    _followed[:] = [graph, followed]
    assert [(d.task, d.action, d.reasons) for d in followed.decisions] == \
        [(d.task, d.action, d.reasons) for d in plan.decisions]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sessions())
def test_a_session_cell_by_cell_equals_a_from_scratch_evaluation(
    shell: Any, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, ops: list[tuple[Any, ...]]
) -> None:
    cache = tmp_path_factory.mktemp("cache")
    _fresh_session(shell, cache, monkeypatch)
    model = Model()
    _cell(shell, "K = 0")
    _cell(shell, "def h():\n    return 0")
    _cell(shell, "L = [0]")
    try:
        for op in ops:
            _play(shell, model, op, cache, monkeypatch)
            _check_plan(model)
    finally:
        magics.unload(shell)
        shell.extension_manager.loaded.discard("dagnb")
        session.set_current(None)


def _play(shell: Any, model: Model, op: tuple[Any, ...], cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kind = op[0]
    if kind == "task":
        _, name, task, no_run = op
        if any(p not in model.tasks for p in (*task.params, *task.hidden)):
            return  # its upstream is not defined yet: the cell would fail to resolve (tested elsewhere)
        model.tasks[name] = task
        _cell(shell, task.cell(name, no_run))
        if not no_run:
            _check_cell(shell, model, name)
    elif kind == "k":
        model.k = op[1]
        _cell(shell, f"K = {op[1]}")
    elif kind == "h":
        model.h = op[1]
        _cell(shell, f"def h():\n    return {op[1]}")
    elif kind == "l":
        model.l = op[1]
        _cell(shell, f"L[0] = {op[1]}")  # in place: the same list
    elif kind == "overwrite" and op[1] in model.tasks:
        _cell(shell, f"{op[1]} = 1000")
    elif kind == "again" and op[1] in model.tasks:
        _cell(shell, model.tasks[op[1]].cell(op[1]))
        _check_cell(shell, model, op[1])
    elif kind == "run" and model.tasks:
        _cell(shell, "%dag run")
        graph = session.current()
        for name in model.tasks:
            assert graph.results[name].value == model.value(name), name
            assert shell.user_ns[name] == model.value(name), name
    elif kind == "restore" and session.current().last_history_id:
        _cell(shell, f"%dag run --as-of {1 + op[1] % session.current().last_history_id}")  # older values, bound
    elif kind == "read" and op[2] in model.tasks and ("{last}" not in op[1] or session.current().last_history_id):
        _cell(shell, op[1].format(task=op[2], last=session.current().last_history_id))
    elif kind == "restart":
        magics.unload(shell)
        _fresh_session(shell, cache, monkeypatch)
        for source in model.notebook():
            _cell(shell, source)
        for name in model.tasks:
            _check_cell(shell, model, name)
