"""``--when``: a task that runs only when a condition over its inputs holds.

::

    rows --> big (when len(rows) > LIMIT) --> needs_big
                                       `--> optional(big="small")
"""

from __future__ import annotations

from pathlib import Path

import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.errors import TaskDefinitionError, TaskFailed


def _session(tmp_path: Path, limit: int) -> Notebook:
    nb = Notebook(tmp_path)
    nb.cell(f"LIMIT = {limit}\n")
    nb.task("def rows():\n    note('rows')\n    return [1, 2, 3]\n")
    nb.task("def big(rows, limit=LIMIT):\n    note('big')\n    return 'big'\n")
    graph = nb.graph
    graph.add(dagnb.graph.spec_from_function(nb.ns["big"], when="len(rows) > limit"))
    nb.task("def needs_big(big):\n    note('needs_big')\n    return big + '!'\n")
    nb.task("def optional(big='small'):\n    note('optional')\n    return big.upper()\n")
    return nb


def test_a_false_condition_skips_the_task_and_dependents_without_a_default(tmp_path: Path) -> None:
    nb = _session(tmp_path, limit=5)
    report = nb.graph.run()
    assert report.statuses == {"rows": "done", "big": "skipped", "needs_big": "skipped", "optional": "done"}
    assert report.line("big") == "big: skipped (condition `len(rows) > limit` is false)"
    assert report.line("needs_big") == "needs_big: skipped (upstream big was skipped (condition))"
    assert nb.graph["optional"] == "SMALL", "a parameter with a default receives the default"
    assert sorted(nb.log.read_text().split()) == ["optional", "rows"]
    assert report.ok and report.by_condition == ["big", "needs_big"], "a condition is not a failure"


def test_a_true_condition_runs_and_feeds_its_dependents(tmp_path: Path) -> None:
    nb = _session(tmp_path, limit=1)
    report = nb.graph.run()
    assert report.executed == ["rows", "big", "needs_big", "optional"]
    assert (nb.graph["needs_big"], nb.graph["optional"]) == ("big!", "BIG")


def test_when_the_condition_turns_true_the_default_gives_way_to_the_value(tmp_path: Path) -> None:
    nb = _session(tmp_path, limit=5)
    nb.graph.run()
    nb.log.unlink()
    nb.cell("LIMIT = 1\n")
    nb.task("def big(rows, limit=LIMIT):\n    note('big')\n    return 'big'\n")
    nb.graph.add(dagnb.graph.spec_from_function(nb.ns["big"], when="len(rows) > limit"))
    nb.graph.run()
    assert sorted(nb.log.read_text().split()) == ["big", "needs_big", "optional"]
    assert nb.graph["optional"] == "BIG"


def test_a_condition_that_raises_fails_the_task_with_its_error(tmp_path: Path) -> None:
    graph = dagnb.Graph()

    @graph.task
    def rows() -> list[int]:
        return [1]

    @graph.task(when="rows[5] > 0")
    def pick(rows: list[int]) -> int:
        return rows[5]

    with pytest.raises(TaskFailed) as info:
        graph.run()
    assert str(info.value) == (
        "The condition `--when rows[5] > 0` of task `pick` raised IndexError: list index out of range. "
        "Fix the condition (it sees the task's inputs); the task did not run."
    )


@pytest.mark.parametrize(("when", "message"), [
    ("len(rows >", "Task `pick`: `--when len(rows >` is not a Python expression ('(' was never closed). "
                   "Write a condition such as `len(rows) > 0`."),
    ("len(row) > 1", "Task `pick`: `--when len(row) > 1` uses `row`, which is not one of its parameters (`rows`). "
                     "Did you mean `rows`? A condition may use the task's inputs and simple builtins "
                     "(len, any, all, min, max, ...)."),
    ("open('x')", "Task `pick`: `--when open('x')` uses `open`, which is not one of its parameters (`rows`). "
                  "A condition may use the task's inputs and simple builtins (len, any, all, min, max, ...)."),
], ids=["syntax", "typo", "not a safe builtin"])
def test_a_bad_condition_is_refused_when_the_task_is_defined(when: str, message: str) -> None:
    def pick(rows: list[int]) -> int:
        return rows[0]

    with pytest.raises(TaskDefinitionError) as info:
        dagnb.Graph().task(when=when)(pick)
    assert str(info.value) == message
