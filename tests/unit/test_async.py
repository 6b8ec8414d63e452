"""Async tasks: ``async def`` in a task cell, awaited on dagnb's event loop, concurrently."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagnb.errors import TaskFailed
from notebook_cells import Notebook

FETCHES = [
    "async def fetch_a():\n    note('a')\n    await asyncio.sleep(0.3)\n    return 1\n",
    "async def fetch_b():\n    note('b')\n    await asyncio.sleep(0.3)\n    return 2\n",
    "async def fetch_c():\n    note('c')\n    await asyncio.sleep(0.3)\n    return 3\n",
    "def total(fetch_a, fetch_b, fetch_c):\n    note('total')\n    return fetch_a + fetch_b + fetch_c\n",
]


def _fetches(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.cell("import asyncio\n")
    for source in FETCHES:
        nb.task(source)
    return nb


def test_async_tasks_run_at_the_same_time_and_feed_sync_ones(tmp_path: Path) -> None:
    nb = _fetches(tmp_path)
    report = nb.graph.run()  # the inline backend: only async tasks overlap
    assert nb.graph["total"] == 6 and report.executed == ["fetch_a", "fetch_b", "fetch_c", "total"]
    spans = {s.task: s for s in nb.graph.trace.spans}
    a, b, c = spans["fetch_a"], spans["fetch_b"], spans["fetch_c"]
    assert max(a.start, b.start, c.start) < min(a.end, b.end, c.end), "the three awaits overlapped"
    assert {a.lane, b.lane, c.lane} == {"async"} and spans["total"].lane == "main"
    assert sorted(nb.log.read_text().split()) == ["a", "b", "c", "total"]


def test_async_results_are_cached_like_any_other(tmp_path: Path) -> None:
    _fetches(tmp_path).graph.run()
    again = _fetches(tmp_path)  # a new session over the same cache
    again.log.unlink()
    assert again.graph.run().cached == ["fetch_a", "fetch_b", "fetch_c", "total"]
    assert not again.log.exists()


def test_an_async_task_that_raises_fails_the_run(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.cell("import asyncio\n")
    nb.task("async def boom():\n    await asyncio.sleep(0)\n    raise ValueError('remote said no')\n")
    with pytest.raises(TaskFailed) as info:
        nb.graph.run()
    assert str(info.value).startswith("Task `boom` raised ValueError: remote said no.")
