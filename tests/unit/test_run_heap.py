"""The garbage collector during a run (``dagnb.run.heap``): what was alive before a long run is frozen, never lost.

Each task body reads the collector's state itself (``gc.get_freeze_count``),
so these tests see what the run did to the process, not what dagnb reports.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from dagnb import Graph
from dagnb.cache.store import MemoryStore
from dagnb.errors import RunInterrupted, TaskFailed
from dagnb.run.heap import FROM_TASKS

SEEN: list[int] = []  # gc.get_freeze_count() as each task body saw it


def _chain(n: int, last: str = "return {prev} + 1", **names: Any) -> Graph:
    """``t0 -> t1 -> ... -> t{n-1}``; each body records the frozen count; the last one's body is ``last``,
    which may read ``names``."""
    graph = Graph(store=MemoryStore())
    for i in range(n):
        params = f"t{i - 1}" if i else ""
        body = last.format(prev=f"t{i - 1}") if i == n - 1 and i else (f"return t{i - 1} + 1" if i else "return 0")
        namespace: dict[str, Any] = {"gc": gc, "SEEN": SEEN, **names}
        exec(f"def t{i}({params}):\n    SEEN.append(gc.get_freeze_count())\n    {body}\n", namespace)
        graph.task(namespace[f"t{i}"])
    return graph


@pytest.fixture(autouse=True)
def _nothing_frozen() -> Iterator[None]:
    SEEN.clear()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_a_long_run_freezes_what_was_alive_before_it_and_hands_it_back() -> None:
    graph = _chain(FROM_TASKS)
    report = graph.run()
    assert len(SEEN) == FROM_TASKS and min(SEEN) > 0, "every body ran with the objects alive before the run frozen"
    assert gc.get_freeze_count() == 0, "handed back to the collector when the run ended"
    assert graph[f"t{FROM_TASKS - 1}"] == FROM_TASKS - 1 and not report.failed


def test_a_short_run_leaves_the_collector_alone() -> None:
    graph = _chain(FROM_TASKS - 1)
    graph.run()
    assert SEEN == [0] * (FROM_TASKS - 1)


def test_garbage_made_before_a_long_run_is_collected_first_not_frozen() -> None:
    class Node:
        pass

    dead: list[int] = []
    graph = _chain(FROM_TASKS, last="return {prev} if DEAD else None", DEAD=dead)
    thresholds = gc.get_threshold()
    gc.set_threshold(10**7)  # no pass of its own before or during the run: only dagnb's collection can find it
    try:
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        watch = weakref.ref(cycle, lambda _: dead.append(1))
        del cycle
        graph.run()
    finally:
        gc.set_threshold(*thresholds)
    assert watch() is None
    assert graph[f"t{FROM_TASKS - 1}"] == FROM_TASKS - 2, "the cycle made before the run was collected before it"


def test_a_run_that_fails_or_is_stopped_hands_the_objects_back() -> None:
    graph = _chain(FROM_TASKS, last="raise ValueError('boom')")
    with pytest.raises(TaskFailed):
        graph.run()
    assert min(SEEN) > 0 and gc.get_freeze_count() == 0
    SEEN.clear()
    stopped = _chain(FROM_TASKS, last="raise KeyboardInterrupt")
    with pytest.raises(RunInterrupted):
        stopped.run()
    assert min(SEEN) > 0 and gc.get_freeze_count() == 0


def test_objects_frozen_by_the_application_stay_frozen() -> None:
    gc.freeze()  # a server that froze its objects before forking, say
    frozen = gc.get_freeze_count()
    graph = _chain(FROM_TASKS)
    graph.run()
    assert min(SEEN) > 0 and 0 < gc.get_freeze_count() <= frozen, "dagnb neither unfreezes nor freezes more"


def _seen_on_load() -> str:
    """Called when a stored value is unpickled: the frozen count as loading saw it."""
    SEEN.append(gc.get_freeze_count())
    return "loaded"


class _Probe:
    """A value that records, when it is loaded from the cache, what the collector had frozen."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _seen_on_load, ()


@pytest.mark.parametrize("tasks", [FROM_TASKS, FROM_TASKS - 1])
def test_restoring_a_long_run_freezes_what_was_alive_before_and_hands_it_back(tmp_path: Any, tasks: int) -> None:
    def graph() -> Graph:
        made = Graph(cache_dir=str(tmp_path / "cache"))
        for i in range(tasks):
            namespace: dict[str, Any] = {"_Probe": _Probe}
            exec(f"def p{i}():\n    return _Probe()\n", namespace)
            made.task(namespace[f"p{i}"])
        return made

    first = graph()
    first.run()
    run_id = first.store.last_run_id
    first.close()
    again = graph()
    SEEN.clear()
    restored = again.restore(run_id)
    assert list(restored.values()) == ["restored"] * tasks and again["p0"] == "loaded"
    assert len(SEEN) == tasks and gc.get_freeze_count() == 0
    assert (min(SEEN) > 0) is (tasks >= FROM_TASKS), "frozen while the values of a long run load, not a short one"
    again.close()
