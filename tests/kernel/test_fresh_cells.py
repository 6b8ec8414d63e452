"""A cached ``%%task`` cell asks only for its own task (``dagnb/freshness.py``), in a real IPython shell.

Executions are counted through the log file each task body appends to;
history rows are read from the disk cache.
"""

from __future__ import annotations

from typing import Any

from dagnb import Graph, session
from dagnb.notebook import magics
from tests.kernel.test_magics import executions, ip, ok, task  # noqa: F401 - `ip` is a fixture

__all__ = ["ip"]


def _chain(ip: Any, n: int) -> None:
    ok(ip, task("t1", body="return 1"))
    for i in range(2, n + 1):
        ok(ip, task(f"t{i}", f"t{i - 1}", f"return t{i - 1} + 1"))


def _rows(graph: Graph) -> int:
    return sum(len(run.tasks) for run in graph.store.runs(None))


def test_each_cell_of_a_chain_records_its_own_task_only_and_restart_loads_one_value_per_cell(ip: Any) -> None:
    _chain(ip, 30)
    graph = session.current()
    assert _rows(graph) == 30  # one row per cell, not one per upstream task per cell (465)
    assert executions(ip) == [f"t{i}" for i in range(1, 31)]
    magics.unload(ip)  # a new session over the same cache: Restart & Run All
    ip.extension_manager.loaded.discard("dagnb")
    session.set_current(None)
    for name in [f"t{i}" for i in range(1, 31)]:
        del ip.user_ns[name]
    ok(ip, "%load_ext dagnb")
    _chain(ip, 30)
    assert executions(ip) == [f"t{i}" for i in range(1, 31)]  # nothing ran again
    last = session.current().last_run
    assert last is not None and list(last.statuses) == ["t30"] and last.statuses["t30"] == "cached"
    assert ip.user_ns["t30"] == 30


def test_an_overwritten_upstream_variable_read_as_a_global_is_the_tasks_value(ip: Any) -> None:
    ok(ip, task("base", body="return 1"))
    ok(ip, task("mid", "base", "return base + 1"))
    ok(ip, "base = 1000")  # the user overwrites a task's variable in a plain cell
    ok(ip, task("top", body="return base + mid"))  # reads `base` as a global: an upstream task all the same
    assert ip.user_ns["top"] == 3
    assert ip.user_ns["base"] == 1


def test_an_upstream_that_reads_a_notebook_variable_is_checked_in_every_cell(ip: Any) -> None:
    ok(ip, "K = 1")
    ok(ip, task("scaled", body="return 10 * K"))
    ok(ip, task("shifted", "scaled", "return scaled + 1"))
    ok(ip, "K = 2")
    ok(ip, task("report", "shifted", "return shifted"))
    assert ip.user_ns["report"] == 21
    assert executions(ip) == ["scaled", "shifted", "scaled", "shifted", "report"]


def test_an_upstream_redefined_without_running_reruns_in_the_next_cell_below_it(ip: Any) -> None:
    ok(ip, task("a", body="return 1"))
    ok(ip, task("b", "a", "return a + 1"))
    ok(ip, task("a", body="return 5").replace("%%task", "%%task --no-run"))
    ok(ip, task("c", "b", "return b * 10"))
    assert ip.user_ns["c"] == 60
    assert executions(ip) == ["a", "b", "a", "b", "c"]


def test_a_value_restored_through_the_api_is_not_planned_up_to_date() -> None:
    graph = Graph()

    @graph.task
    def a() -> int:
        return 1

    @graph.task
    def b(a: int) -> int:
        return a + 1

    graph.run()
    first = graph.last_history_id

    @graph.task  # type: ignore[no-redef]
    def a() -> int:  # noqa: F811
        return 2

    graph.run()
    assert graph.restore(first) == {"a": "restored", "b": "restored"}
    plan = graph.plan()
    assert plan["a"].action != "fresh" and plan["b"].action != "fresh"
    assert graph.run().statuses == {"a": "cached", "b": "cached"}  # loaded back from the cache
    assert graph["b"] == 3
