"""The task graph kept up to date definition by definition equals the graph built from scratch.

Hypothesis draws sequences of definitions (new tasks, redefinitions with other
parameters or other globals read, drops) over a small set of names. After each
step, the incrementally kept edges, reverse edges, run order and downstream
sets must equal those of a graph built from the same specs at once.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from notebook_cells import define

from dagnb.errors import CycleError
from dagnb.graph import TaskGraph, spec_from_function

NAMES = ("a", "b", "c", "d", "e")

# The namespace holds no function but the tasks' own: a notebook helper read by a task is walked when
# the task is (re)linked, so a helper changed between definitions would be a difference of timing, not
# of bookkeeping (docs/reference.md, Known limits). `%dag drop` and a refused definition leave no function behind.


def _spec(ns: dict[str, Any], name: str, params: tuple[str, ...], reads: tuple[str, ...]) -> Any:
    body = " + ".join([*params, *reads]) or "0"
    define(ns, f"def {name}({', '.join(params)}):\n    return {body}\n")
    return spec_from_function(ns[name])


steps = st.lists(
    st.tuples(
        st.sampled_from(("define", "define", "define", "drop", "drop-keep")),
        st.sampled_from(NAMES),
        st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
        st.lists(st.sampled_from(NAMES), max_size=2, unique=True),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(steps)
def test_the_graph_kept_up_to_date_equals_the_graph_built_at_once(ops: list[Any]) -> None:
    ns: dict[str, Any] = {}
    graph = TaskGraph()
    for op, name, params, reads in ops:
        if op.startswith("drop"):
            if name in graph:
                if op == "drop":
                    del ns[name]  # first, as `%dag drop` of a task that ran: its variable goes with it
                graph.drop(name)  # "drop-keep": a task defined with --no-run leaves its function, now a helper
        else:
            params = tuple(p for p in params if p != name)
            reads = tuple(r for r in reads if r != name and r not in params)
            before = ns.get(name)
            try:
                graph.add(_spec(ns, name, params, reads))
            except CycleError:
                ns.pop(name)
                if before is not None:
                    ns[name] = before
        fresh = TaskGraph()
        fresh.specs = dict(graph.specs)  # the table assigned at once: everything derived again
        for task in graph.specs:
            assert graph.upstream(task) == fresh.upstream(task), task
            assert sorted(graph.children(task)) == sorted(fresh.children(task)), task
            assert graph.downstream(task) == fresh.downstream(task), task
        assert graph.order() == fresh.order()
        for task in graph.specs:
            assert graph.order([task]) == fresh.order([task])
