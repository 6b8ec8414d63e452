"""The oracle for map and conditional tasks: incremental runs equal from-scratch runs.

A notebook-like session holds a list ``items`` and a threshold ``limit``::

    items --> doubled (--map items) --> total --> report(total, big="none")
                                          `-----> big (--when total > limit)

Hypothesis draws the initial values and a sequence of edits (replace, append
or remove an element; change the limit; undo to an earlier list). After each
edit and incremental run, every value equals a fresh session's from-scratch
run over a cold cache and a plain-Python model, and the element calls that ran
are exactly the new elements (counted in a log file the map function appends
to).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

import dagnb
from dagnb.graph import spec_from_function

SOURCE = """
def doubled(items, log=LOG):
    with open(log, "a") as handle:
        handle.write(f"{items}\\n")
    return items * 2

def total(doubled):
    return sum(doubled)

def big(total, limit):
    return f"big: {total}"

def report(total, big="none"):
    return f"{total} / {big}"
"""


def _session(cache: str | None, log: Path, items: list[int], limit: int) -> dagnb.Graph:
    graph = dagnb.Graph(cache_dir=cache)
    ns = graph.namespace
    ns.update({"LOG": str(log), "items": list(items), "limit": limit, "__name__": "__main__"})
    exec(SOURCE, ns)
    graph.add(spec_from_function(ns["doubled"], map="items"))
    graph.add(spec_from_function(ns["total"]))
    graph.add(spec_from_function(ns["big"], when="total > limit"))
    graph.add(spec_from_function(ns["report"]))
    return graph


def _values(graph: dagnb.Graph) -> dict[str, object]:
    return {t: graph.results[t].value for t in ("doubled", "total", "report") if t in graph.results}


def _model(items: list[int], limit: int) -> dict[str, object]:
    """The values in plain Python: what both runs must equal."""
    doubled = [x * 2 for x in items]
    total = sum(doubled)
    big = f"big: {total}" if total > limit else "none"
    return {"doubled": doubled, "total": total, "report": f"{total} / {big}"}


def _calls(log: Path) -> list[int]:
    calls = [int(line) for line in log.read_text().split()] if log.exists() else []
    log.write_text("")
    return calls


edits = st.lists(
    st.one_of(
        st.tuples(st.just("set"), st.integers(0, 9), st.integers(-50, 50)),
        st.tuples(st.just("append"), st.integers(-50, 50), st.just(0)),
        st.tuples(st.just("remove"), st.integers(0, 9), st.just(0)),
        st.tuples(st.just("limit"), st.integers(-100, 200), st.just(0)),
        st.tuples(st.just("undo"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=40, deadline=None)
@given(items=st.lists(st.integers(-50, 50), min_size=1, max_size=8), limit=st.integers(-100, 200), steps=edits)
def test_map_and_conditions_incremental_equals_from_scratch(items: list[int], limit: int, steps: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        log = root / "calls.txt"
        graph = _session(str(root / "cache"), log, items, limit)
        graph.run()
        seen = set(items)  # elements whose result the cache has
        _calls(log)
        history = [list(items)]
        for kind, a, b in steps:
            current = list(graph.namespace["items"])
            if kind == "set" and current:
                current[a % len(current)] = b
            elif kind == "append":
                current.append(a)
            elif kind == "remove" and len(current) > 1:
                current.pop(a % len(current))
            elif kind == "limit":
                graph.namespace["limit"] = a
            elif kind == "undo":
                current = list(history[0])
            graph.namespace["items"] = current
            history.append(current)
            graph.run()
            ran = _calls(log)
            assert set(ran) == set(current) - seen, f"calls {ran} for new elements of {current}"
            assert len(ran) == len(set(ran)), "a repeated element is computed once"
            seen |= set(current)

            scratch_log = root / "scratch.txt"
            scratch = _session(None, scratch_log, current, graph.namespace["limit"])
            scratch.run()
            assert _values(graph) == _values(scratch) == _model(current, graph.namespace["limit"])
            skipped = graph.last_run is not None and graph.last_run.statuses.get("big") == "skipped"
            assert skipped == (sum(x * 2 for x in current) <= graph.namespace["limit"])
            assert graph.last_run is not None and graph.last_run.ok, "a false condition is not a failure"
