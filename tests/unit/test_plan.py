"""Planning: what a run would do and why, without running or loading anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from notebook_cells import Notebook, runs

from dagnb.cache.store import CacheMiss


def _chain(tmp_path: Path) -> Notebook:
    """A notebook with a helper, a global, an external input and a default::

        a --> b          b uses helper h (-> g), global K, external x, default y=Y
    """
    nb = Notebook(tmp_path)
    nb.cell("K = 10\nx = 1\nY = 5\n")
    nb.cell("def g(v):\n    return v + 1\n")
    nb.cell("def h(v):\n    return g(v) * 2\n")
    nb.task("def a():\n    note('a')\n    return 3\n")
    nb.task("def b(a, x, y=Y):\n    note('b')\n    return h(a) + K + x + y\n")
    return nb


def test_why_a_new_task_is_stale(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    assert nb.graph.why("a").reasons == ("new",)
    assert str(nb.graph.why("a")) == "a is stale: new."


def test_why_after_a_run_is_up_to_date(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    nb.run()
    why = nb.graph.why("b")
    assert not why.stale and why.reasons == ()
    assert str(why) == "b is up to date: its key is unchanged."


EDITS: list[tuple[str, Any, tuple[str, ...]]] = [
    ("own code", lambda nb: nb.task("def b(a, x, y=Y):\n    note('b')\n    return h(a) + K + x - y\n"),
     ("code changed",)),
    ("helper", lambda nb: nb.cell("def h(v):\n    return g(v) * 3\n"), ("helper h changed",)),
    ("helper's helper", lambda nb: nb.cell("def g(v):\n    return v + 2\n"), ("helper h changed",)),
    ("global", lambda nb: nb.cell("K = 11\n"), ("global K changed",)),
    ("external input", lambda nb: nb.cell("x = 2\n"), ("input x changed",)),
    ("default", lambda nb: (nb.cell("Y = 6\n"), nb.task("def b(a, x, y=Y):\n    note('b')\n"
                                                       "    return h(a) + K + x + y\n")),
     ("input y changed",)),
    ("two things at once", lambda nb: nb.cell("K = 11\nx = 2\n"), ("global K changed", "input x changed")),
]


@pytest.mark.parametrize(("edit", "reasons"), [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_why_names_exactly_what_changed(tmp_path: Path, edit: Any, reasons: tuple[str, ...]) -> None:
    nb = _chain(tmp_path)
    nb.run()
    edit(nb)
    why = nb.graph.why("b")
    assert why.stale
    assert why.reasons == reasons
    _, ran = nb.run()
    assert ran == ["b"], "what why() reports is what runs"


def test_why_names_the_upstream_that_changed(tmp_path: Path) -> None:
    """a --> b: a is edited and rerun alone; b now reads a new a."""
    nb = _chain(tmp_path)
    nb.run()
    nb.task("def a():\n    note('a')\n    return 4\n")
    assert nb.graph.why("b").reasons == ("upstream a reruns first",)
    nb.run("a")
    assert nb.graph.why("b").reasons == ("upstream a changed",)


def test_plan_lists_what_would_run_and_what_is_cached(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    nb.task("def lone():\n    note('lone')\n    return 0\n")
    plan = nb.graph.plan()
    assert plan.to_run == ["a", "b", "lone"]
    assert plan.cached == []
    nb.run()
    nb.cell("K = 11\n")
    plan = nb.graph.plan()
    assert plan.to_run == ["b"]
    assert sorted(plan.cached) == ["a", "lone"]
    assert plan["b"].action == "run"
    assert plan.summary() == "plan: 1 to run, 2 cached"


def test_plan_marks_dependents_of_a_rerun_as_pending(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    nb.run()
    nb.task("def a():\n    note('a')\n    return 4\n")
    plan = nb.graph.plan()
    assert [(d.task, d.action) for d in plan.decisions] == [("a", "run"), ("b", "wait")]
    assert plan.to_run == ["a", "b"]


def test_plan_of_a_target_covers_only_its_upstream(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    nb.task("def lone():\n    note('lone')\n    return 0\n")
    assert nb.graph.plan(["a"]).to_run == ["a"]


def test_plan_force(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    nb.run()
    plan = nb.graph.plan(force=["a"])
    assert plan["a"].action == "run" and plan["a"].reasons == ("forced",)


def test_planning_never_runs_nor_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _chain(tmp_path)
    first.run()
    first.graph.store.close()
    restarted = _chain(tmp_path)  # values only on disk

    def no_load(entry: Any) -> Any:
        raise AssertionError("planning loaded a value")

    monkeypatch.setattr(restarted.graph.store, "load", no_load)
    before = runs(restarted.log)
    plan = restarted.graph.plan()
    assert [d.action for d in plan.decisions] == ["load", "load"]
    restarted.graph.why("b")
    assert runs(restarted.log) == before
    assert restarted.graph.results == {}
    assert callable(restarted.ns["a"]), "still the function: no value was bound"


def test_plan_renders_text_and_html(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    plan = nb.graph.plan()
    assert plan.render_text() == "plan: 2 to run, 0 cached\n  a  run  (new)\n  b  run if needed  (upstream a reruns first)"
    bundle = plan._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "<code>b</code>" in bundle["text/html"]


def test_a_value_lost_from_the_cache_is_planned_as_load_then_recomputed(tmp_path: Path) -> None:
    """Metadata says cached; the load fails; the run recomputes (never errors)."""
    first = _chain(tmp_path)
    first.run()
    first.graph.store.close()
    restarted = _chain(tmp_path)

    def lost(entry: Any) -> Any:
        raise CacheMiss("gone")

    restarted.graph.store.load = lost  # type: ignore[method-assign]
    with pytest.warns(Warning):
        _, ran = restarted.run()
    assert ran == ["a", "b"]


# --------------------------------------------------- statuses shown by views


def _shown(nb: Notebook) -> dict[str, str]:
    graph = nb.graph
    plan = graph.plan()
    return plan.statuses(graph.statuses, lambda t: t in graph.results or graph.store.head(t) is not None)


def test_statuses_before_any_run_are_pending(tmp_path: Path) -> None:
    assert _shown(_chain(tmp_path)) == {"a": "pending", "b": "pending"}


def test_statuses_after_a_run_are_done_and_an_edit_makes_its_cone_stale(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    nb.run()
    assert _shown(nb) == {"a": "done", "b": "done"}
    nb.task("def a():\n    note('a')\n    return 4\n")
    assert _shown(nb) == {"a": "stale", "b": "stale"}


def test_statuses_after_a_restart_are_pending_until_loaded_then_cached(tmp_path: Path) -> None:
    _chain(tmp_path).run()
    nb = _chain(tmp_path)  # a new session on the same cache directory
    assert _shown(nb) == {"a": "pending", "b": "pending"}
    nb.run()
    assert _shown(nb) == {"a": "cached", "b": "cached"}


def test_statuses_keep_a_failure_until_the_next_run(tmp_path: Path) -> None:
    nb = _chain(tmp_path)
    nb.task("def a():\n    note('a')\n    raise ValueError('no')\n")
    nb.graph.run(raise_errors=False)
    assert _shown(nb) == {"a": "failed", "b": "skipped"}
