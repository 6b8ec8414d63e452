"""A cell's definition in the engine, no IPython: the last good definition stays, and a renamed function
replaces its cell's task (:meth:`dagnb.Graph.define`, :class:`dagnb.cells.CellTasks`).

Executions are counted from a log the task bodies append to.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from notebook_cells import NOTE, define, runs

from dagnb import Graph
from dagnb.cells import CellTasks
from dagnb.errors import DuplicateTask, UnresolvedParameter
from dagnb.graph import spec_from_function


def _cell(graph: Graph, ns: dict[str, Any], source: str, cell_id: str) -> str | None:
    """Define the one function of ``source`` as the cell ``cell_id`` would."""
    define(ns, source)
    name = source.split("def ", 1)[1].split("(", 1)[0]
    return graph.define(spec_from_function(ns[name], source=source, cell_id=cell_id))


@pytest.fixture
def notebook(tmp_path: Path) -> tuple[Graph, dict[str, Any], Path]:
    log = tmp_path / "runs.log"
    ns: dict[str, Any] = {"LOG": str(log)}
    define(ns, NOTE)
    return Graph(namespace=ns), ns, log


def test_a_definition_that_does_not_check_leaves_the_last_good_one(notebook: Any) -> None:
    graph, ns, log = notebook
    _cell(graph, ns, "def raw():\n    note('raw')\n    return 1\n", "c1")
    assert graph.run().executed == ["raw"]
    with pytest.raises(UnresolvedParameter) as caught:
        _cell(graph, ns, "def raw(sizes):\n    note('raw-new')\n    return 2\n", "c1")
    assert str(caught.value) == (
        "Task `raw` has a parameter `sizes` that is neither a task, a default, nor a notebook variable. "
        "Define it in a cell above, give it a default, or add a `%%task def sizes(...)`.")
    graph.run()
    assert (graph["raw"], runs(log)) == (1, ["raw"])  # the old definition, still up to date: nothing ran


def test_a_new_task_that_does_not_check_is_not_defined(notebook: Any) -> None:
    graph, ns, _ = notebook
    with pytest.raises(UnresolvedParameter):
        _cell(graph, ns, "def clean(raw):\n    return raw\n", "c2")
    assert "clean" not in graph.tasks


def test_a_name_another_cell_defines_is_a_duplicate(notebook: Any) -> None:
    graph, ns, log = notebook
    _cell(graph, ns, "def raw():\n    note('raw')\n    return 1\n", "c1")
    with pytest.raises(DuplicateTask) as caught:
        _cell(graph, ns, "def raw():\n    note('raw-2')\n    return 2\n", "c2")
    assert str(caught.value) == ("Task `raw` is already defined in another cell. Rename one of the two functions, "
                                 "or run `%dag drop raw` to remove the other definition first.")
    graph.run()
    assert (graph["raw"], runs(log)) == (1, ["raw"])


def test_renaming_a_cells_function_replaces_its_task(notebook: Any) -> None:
    graph, ns, log = notebook
    assert _cell(graph, ns, "def first():\n    note('first')\n    return 1\n", "c1") is None
    graph.run()
    assert _cell(graph, ns, "def second():\n    note('second')\n    return 2\n", "c1") == "first"
    assert list(graph.tasks.order(None)) == ["second"]
    assert "first" not in ns  # its value is unbound with it
    graph.run()
    assert runs(log) == ["first", "second"]


def test_cell_tasks_name_only_a_task_renamed_away_and_still_defined() -> None:
    cells = CellTasks()
    assert cells.defines("c1", "a", {"a"}) is None
    assert cells.defines("c1", "a", {"a"}) is None  # the same name again
    assert cells.defines("c1", "b", {"a", "b"}) == "a"
    assert cells.defines("c1", "c", {"c"}) is None  # `b` is gone already (dropped)
    assert cells.defines(None, "d", {"c", "d"}) is None  # no cell id: nothing is replaced
    assert cells.defines("c2", "e", {"c", "e"}) is None


def test_a_dropped_task_is_no_cells_any_more(notebook: Any) -> None:
    """`%dag drop first`, another cell defines `first` anew: renaming the first cell's function keeps it."""
    graph, ns, log = notebook
    _cell(graph, ns, "def first():\n    note('first')\n    return 1\n", "c1")
    graph.drop("first")
    _cell(graph, ns, "def first():\n    note('first-again')\n    return 2\n", "c2")
    assert _cell(graph, ns, "def second():\n    note('second')\n    return 3\n", "c1") is None
    graph.run()
    assert (graph["first"], sorted(runs(log))) == (2, ["first-again", "second"])


SHAPES = [
    "def f(): pass",
    "def f(a, b=2, *, c, d=4): pass",
    "def f(a, /, b, c=3): pass",
    "def f(a=1, b=2):\n    x = 1\n    return x",
    "def f(*, k=1): pass",
    "async def f(a, b=None): pass",
    "def f(a, *rest): pass",
    "def f(a, **kw): pass",
    "def f(*a, **kw): pass",
    "def f(a, *, b, **kw): pass",
]


@pytest.mark.parametrize("source", SHAPES)
def test_a_tasks_inputs_and_defaults_are_those_inspect_signature_reads(source: str) -> None:
    import inspect

    namespace: dict[str, Any] = {}
    exec(source, namespace)
    func = namespace["f"]
    signature = inspect.signature(func)
    starred = [p for p in signature.parameters.values() if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if starred:
        star = "*" if starred[0].kind is starred[0].VAR_POSITIONAL else "**"
        with pytest.raises(Exception, match=rf"it takes `{re.escape(star + starred[0].name)}`"):
            spec_from_function(func)
        return
    spec = spec_from_function(func)
    assert spec.params == tuple(signature.parameters)
    assert spec.defaults == {n: p.default for n, p in signature.parameters.items() if p.default is not p.empty}


def test_a_wrapped_function_takes_the_inputs_of_the_function_it_wraps() -> None:
    import functools

    def inner(raw, scale=2):  # type: ignore[no-untyped-def]
        return raw * scale

    @functools.wraps(inner)
    def logged(*args, **kwargs):  # type: ignore[no-untyped-def]
        return inner(*args, **kwargs)

    spec = spec_from_function(logged)
    assert spec.params == ("raw", "scale") and spec.defaults == {"scale": 2}
