"""Dependency inference and validation: a table of small notebooks.

Each :class:`GraphCase` is the source of a few task functions plus a
namespace of notebook variables, and either the edges and input kinds they
imply, or the exact error they must raise.
"""

from __future__ import annotations

import textwrap
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from dagnb.errors import CycleError, DagnbError, TaskDefinitionError, UnknownTask, UnresolvedParameter
from dagnb.graph import TaskGraph, parse_task_cell, spec_from_function


@dataclass
class GraphCase:
    id: str
    source: str
    namespace: dict[str, Any] = field(default_factory=dict)
    edges: set[tuple[str, str]] = field(default_factory=set)
    kinds: dict[str, str] = field(default_factory=dict)  # "task.param" -> kind
    error: type[DagnbError] | None = None
    message: str = ""


def _functions(source: str) -> list[types.FunctionType]:
    """The functions ``source`` defines, in definition order."""
    ns: dict[str, Any] = {"__name__": "__main__"}
    code = compile(textwrap.dedent(source), "<graph-case>", "exec")
    exec(code, ns)
    return [v for v in ns.values() if isinstance(v, types.FunctionType) and v.__code__.co_filename == "<graph-case>"]


def _build(case: GraphCase) -> TaskGraph:
    graph = TaskGraph()
    for fn in _functions(case.source):
        graph.add(spec_from_function(fn))
    for name in graph.specs:
        graph.resolve(name, case.namespace)
    return graph


def _unresolved(task: str, param: str, hint: str = "") -> str:
    """The message for task ``task``'s parameter ``param`` that nothing binds (``hint``: a close match)."""
    return (f"Task `{task}` has a parameter `{param}` that is neither a task, a default, nor a notebook "
            f"variable. {hint}Define it in a cell above, give it a default, or add a `%%task def {param}(...)`.")


def _cycle(loop: str) -> str:
    """The message for tasks whose parameters form ``loop`` (``a -> b -> a``)."""
    return f"Tasks form a cycle: {loop}. A task cannot depend on its own output; rename a parameter to break the loop."


def _star(task: str, star: str) -> str:
    """The message for task ``task`` taking ``*args`` or ``**kwargs`` (``star``)."""
    return f"Task `{task}`: it takes `{star}`, and a task's inputs must be named. List each input as its own parameter."


CASES = [
    GraphCase(
        "upstream edges",
        """
        def raw(): return [1, 2, 3]
        def clean(raw): return raw
        def model(clean, raw): return clean
        """,
        edges={("raw", "clean"), ("clean", "model"), ("raw", "model")},
        kinds={"clean.raw": "upstream", "model.clean": "upstream", "model.raw": "upstream"},
    ),
    GraphCase(
        "default is a constant",
        "def clean(min_len=0.5): return min_len",
        kinds={"clean.min_len": "constant"},
    ),
    GraphCase(
        "notebook variable is an external input",
        "def model(features): return features",
        namespace={"features": ["a", "b"]},
        kinds={"model.features": "external"},
    ),
    GraphCase(
        "a task wins over a default",
        """
        def raw(): return 1
        def clean(raw=0): return raw
        """,
        edges={("raw", "clean")},
        kinds={"clean.raw": "upstream"},
    ),
    GraphCase(
        "a task wins over a notebook variable",
        """
        def raw(): return 1
        def clean(raw): return raw
        """,
        namespace={"raw": "stale variable"},
        edges={("raw", "clean")},
        kinds={"clean.raw": "upstream"},
    ),
    GraphCase(
        "a default wins over a notebook variable",
        "def clean(limit=3): return limit",
        namespace={"limit": 10},
        kinds={"clean.limit": "constant"},
    ),
    GraphCase(
        "a task defined later still makes an edge",
        """
        def clean(raw): return raw
        def raw(): return 1
        """,
        edges={("raw", "clean")},
    ),
    GraphCase(
        "diamond",
        """
        def a(): return 1
        def b(a): return a
        def c(a): return a
        def d(b, c): return b + c
        """,
        edges={("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")},
    ),
    GraphCase(
        "unresolved parameter with a close match",
        "def model(featurs): return featurs",
        namespace={"features": 1},
        error=UnresolvedParameter,
        message=_unresolved("model", "featurs", hint="Did you mean `features`? "),
    ),
    GraphCase(
        "unresolved parameter close to a task name",
        """
        def clean(): return 1
        def model(claen): return claen
        """,
        error=UnresolvedParameter,
        message=_unresolved("model", "claen", hint="Did you mean `clean`? "),
    ),
    GraphCase(
        "unresolved parameter without candidates",
        "def model(zzz): return zzz",
        namespace={"features": 1, "_private": 2},
        error=UnresolvedParameter,
        message=_unresolved("model", "zzz"),
    ),
    GraphCase(
        "self-dependency",
        "def total(total): return total",
        namespace={"total": 1},
        error=CycleError,
        message=(
            "Task `total` depends on itself: its parameter `total` names the task. "
            "Rename the parameter, or rename the function."
        ),
    ),
    GraphCase(
        "two-task cycle",
        """
        def b(a): return a
        def a(b): return b
        """,
        error=CycleError,
        message=_cycle("a -> b -> a"),
    ),
    GraphCase(
        "three-task cycle starts at the alphabetically first task",
        """
        def c(b): return b
        def b(a): return a
        def a(c): return c
        """,
        error=CycleError,
        message=_cycle("a -> b -> c -> a"),
    ),
    GraphCase(
        "*args rejected",
        "def combine(*parts): return parts",
        error=TaskDefinitionError,
        message=_star("combine", "*parts"),
    ),
    GraphCase(
        "**kwargs rejected",
        "def combine(a=1, **options): return a",
        error=TaskDefinitionError,
        message=_star("combine", "**options"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_graph_case(case: GraphCase) -> None:
    if case.error is not None:
        with pytest.raises(case.error) as info:
            _build(case)
        assert str(info.value) == case.message
        return
    graph = _build(case)
    assert set(graph.dag.edges) == case.edges
    kinds = {
        f"{name}.{item.param}": item.kind for name in graph.specs for item in graph.resolve(name, case.namespace)
    }
    for where, kind in case.kinds.items():
        assert kinds[where] == kind, where


def test_errors_carry_their_fields() -> None:
    """Views highlight ``e.task``, ``e.param`` and ``e.cycle``: they must be set."""
    with pytest.raises(UnresolvedParameter) as unresolved:
        _build(GraphCase("", "def model(featurs): return 1", namespace={"features": 1}))
    assert (unresolved.value.task, unresolved.value.param) == ("model", "featurs")
    assert unresolved.value.candidates == ["features"]
    with pytest.raises(CycleError) as cycle:
        _build(GraphCase("", "def b(a): return a\ndef a(b): return b\n"))
    assert cycle.value.cycle == ["a", "b"]
    assert cycle.value.task == "a"


def test_a_rejected_definition_leaves_the_graph_unchanged() -> None:
    """a -> b, then redefining a to read b would close a loop: a stays as it was."""
    graph = TaskGraph()
    a, b = _functions("def a(): return 1\ndef b(a): return a\n")
    graph.add(spec_from_function(a))
    graph.add(spec_from_function(b))
    (bad_a,) = _functions("def a(b): return b\n")
    with pytest.raises(CycleError):
        graph.add(spec_from_function(bad_a))
    assert graph.specs["a"].func is a
    assert set(graph.dag.edges) == {("a", "b")}


# ---------------------------------------------------------------- parse cells

CELL_ERRORS = [
    (
        "syntax error",
        "def f()\n    return 1\n",
        "The `%%task` cell has a syntax error at line 1: expected ':'. "
        "Fix the code; the previous definition of the task is kept until then.",
    ),
    (
        "two defs",
        "def f():\n    return 1\n\ndef g():\n    return 2\n",
        "A `%%task` cell holds exactly one function definition (imports may precede it); "
        "found: a function definition (line 1), a function definition (line 4). Put other code in an ordinary cell, and one `def` per `%%task` cell.",
    ),
    (
        "an assignment",
        "x = 1\ndef f():\n    return x\n",
        "A `%%task` cell holds exactly one function definition (imports may precede it); "
        "found: an assignment (line 1), a function definition (line 2). Put other code in an ordinary cell, and one `def` per `%%task` cell.",
    ),
    (
        "empty cell",
        "\n   \n# only a comment\n",
        "A `%%task` cell holds exactly one function definition (imports may precede it); "
        "found: nothing. Put other code in an ordinary cell, and one `def` per `%%task` cell.",
    ),
    (
        "a class",
        "class F:\n    pass\n",
        "A `%%task` cell holds exactly one function definition (imports may precede it); "
        "found: a class definition (line 1). Put other code in an ordinary cell, and one `def` per `%%task` cell.",
    ),
]


@pytest.mark.parametrize(("source", "message"), [c[1:] for c in CELL_ERRORS], ids=[c[0] for c in CELL_ERRORS])
def test_parse_task_cell_errors(source: str, message: str) -> None:
    with pytest.raises(TaskDefinitionError) as info:
        parse_task_cell(source)
    assert str(info.value) == message


def test_parse_task_cell_allows_imports_before_the_def() -> None:
    node = parse_task_cell("import math\nfrom os import path\n\ndef area(r=1.0):\n    return math.pi * r * r\n")
    assert node.name == "area"


def test_parse_task_cell_accepts_an_async_def() -> None:
    assert parse_task_cell("async def fetch():\n    return 1\n").name == "fetch"


# ------------------------------------------------------------- order, queries


def _graph(source: str) -> TaskGraph:
    graph = TaskGraph()
    for fn in _functions(source):
        graph.add(spec_from_function(fn))
    return graph


DIAMOND_AND_TAIL = """
def d(b, c): return b + c
def c(a): return a
def b(a): return a
def a(): return 1
def e(d): return d
def lone(): return 0
"""


def test_order_is_upstream_first_and_deterministic() -> None:
    """Defined in the order d, c, b, a, e, lone::

        a --> b --> d --> e
         \\         ^
          `-> c ---'          lone

    Ties among ready tasks break by definition order, so ``c`` comes before
    ``b`` and ``d`` before ``lone``.
    """
    graph = _graph(DIAMOND_AND_TAIL)
    order = graph.order()
    assert order == ["a", "c", "b", "d", "e", "lone"]
    assert order == graph.order() == _graph(DIAMOND_AND_TAIL).order()
    assert _is_upstream_first(graph, order)


def _is_upstream_first(graph: TaskGraph, order: list[str]) -> bool:
    position = {t: i for i, t in enumerate(order)}
    return all(position[u] < position[v] for u, v in graph.dag.edges if u in position and v in position)


def test_order_of_targets_contains_exactly_their_ancestors() -> None:
    graph = _graph(DIAMOND_AND_TAIL)
    assert graph.order(["b"]) == ["a", "b"]
    assert set(graph.order(["d"])) == {"a", "b", "c", "d"}
    assert _is_upstream_first(graph, graph.order(["d"]))
    assert graph.order(["lone"]) == ["lone"]


def test_order_of_an_unknown_target_suggests_close_names() -> None:
    graph = _graph(DIAMOND_AND_TAIL)
    with pytest.raises(UnknownTask) as info:
        graph.order(["lon"])
    assert str(info.value) == "There is no task `lon`. Did you mean `lone`? `%dag plan` lists the tasks defined so far."


def test_downstream_lists_every_descendant_upstream_first() -> None:
    """a --> b --> d --> e, a --> c --> d."""
    graph = _graph(DIAMOND_AND_TAIL)
    assert set(graph.downstream("a")) == {"b", "c", "d", "e"}
    assert _is_upstream_first(graph, ["a", *graph.downstream("a")])
    assert graph.downstream("c") == ["d", "e"]
    assert graph.downstream("e") == []
    assert graph.downstream("lone") == []


def test_upstream_is_in_parameter_order() -> None:
    graph = _graph(DIAMOND_AND_TAIL)
    assert graph.upstream("d") == ["b", "c"]
    assert graph.upstream("a") == []


def test_drop_removes_the_task_and_its_edges() -> None:
    graph = _graph(DIAMOND_AND_TAIL)
    graph.drop("e")
    assert "e" not in graph
    assert graph.downstream("d") == []
    with pytest.raises(UnknownTask):
        graph.drop("e")


def test_spec_records_params_defaults_and_code_digest() -> None:
    (fn,) = _functions("def clean(raw, min_len=0.5):\n    return raw\n")
    spec = spec_from_function(fn, volatile=True)
    assert spec.name == "clean"
    assert spec.params == ("raw", "min_len")
    assert dict(spec.defaults) == {"min_len": 0.5}
    assert spec.volatile is True
    (same,) = _functions("def clean(raw, min_len=0.5):\n    # a comment\n    return raw\n")
    (edited,) = _functions("def clean(raw, min_len=0.5):\n    return raw[:1]\n")
    source = "def clean(raw, min_len=0.5):\n    return raw\n"
    assert spec_from_function(fn, source=source).code_digest == spec_from_function(
        same, source="def clean(raw, min_len=0.5):\n    # a comment\n    return raw\n"
    ).code_digest
    assert spec_from_function(edited).code_digest != spec.code_digest
