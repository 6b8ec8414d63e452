"""The session's own bookkeeping is not an observer: a raising observer can never change it.

Observers (the trace, views, hooks) hear of each event after the session has
recorded it. One that raises is dropped, with a warning, and the session goes
on recording every run: its history, each task's status, the values it holds.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from notebook_cells import diamond

from dagnb.events import TaskFinished
from dagnb.run.taskrunner import TaskRunner


def test_a_raising_observer_changes_nothing_the_session_records(tmp_path: Path) -> None:
    nb = diamond(tmp_path)

    def broken(event: object) -> None:
        raise ValueError("a view with a bug")

    nb.graph.bus.subscribe(broken)
    with pytest.warns(RuntimeWarning, match=r"An event subscriber raised ValueError\('a view with a bug'\)"):
        nb.run()
    nb.task("def a():\n    note('a')\n    return 3\n")
    nb.task("def e(d):\n    note('e')\n    return d + 1\n")  # a new task gets a status too
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # dropped once: nothing more to say
        assert nb.run()[1] == ["a", "b", "c", "d", "e"]
    history = nb.graph.history()
    assert len(history.runs) == 2, "both runs reached the history"
    assert nb.graph.statuses == dict.fromkeys(["a", "b", "c", "d", "e"], "done")


def test_an_error_in_the_bookkeeping_is_said_and_the_next_event_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = diamond(tmp_path)
    record = TaskRunner.record
    failed: list[str] = []

    def flaky(runner: TaskRunner, event: object) -> None:
        if isinstance(event, TaskFinished) and event.task == "b" and not failed:
            failed.append("b")
            raise OSError("disk hiccup")
        record(runner, event)  # type: ignore[arg-type]

    monkeypatch.setattr(TaskRunner, "record", flaky)
    with pytest.warns(RuntimeWarning, match=r"^dagnb could not record TaskFinished of run 1 \(OSError\('disk hiccup'\)\); "
                                            r"the run goes on, and its next events are recorded\.$"):
        nb.run()
    assert nb.graph.statuses["d"] == "done" and "b" not in nb.graph.statuses
    assert nb.run()[1] == [] and nb.graph.statuses["b"] == "cached"



def test_after_an_observer_and_the_bookkeeping_each_raise_once_every_later_run_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nb = diamond(tmp_path)
    heard: list[str] = []

    def broken(event: object) -> None:
        heard.append(type(event).__name__)
        raise RuntimeError("always")

    settle_run = nb.graph.store.settle_run  # what the end of a run writes: its hits and its history row
    calls: list[int] = []

    def settle_run_once_broken(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("an unexpected row")
        settle_run(*args, **kwargs)  # type: ignore[arg-type]

    nb.graph.bus.subscribe(broken)
    monkeypatch.setattr(nb.graph.store, "settle_run", settle_run_once_broken)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        assert nb.run()[1] == ["a", "b", "c", "d"]
        assert nb.run()[1] == [], "a second run loads every value"
        nb.task("def c(a):\n    note('c')\n    return a + 2\n")
        assert nb.run()[1] == ["c", "d"], "an edit reruns exactly the edited task and its downstream"
        nb.task("def e(d):\n    note('e')\n    return d * 2\n")
        assert nb.run("e")[1] == ["e"]
    assert heard == ["RunStarted"], "the observer heard one event, then was dropped"
    assert [str(w.message) for w in said if issubclass(w.category, RuntimeWarning)] == [
        "An event subscriber raised RuntimeError('always') and was removed.",
        "dagnb could not record RunFinished of run 1 (ValueError('an unexpected row')); the run goes on, and its "
        "next events are recorded.",
    ]
    runs = nb.graph.history(None).runs
    assert len(runs) == 3, "every run after the failed record reached the history"
    assert [row.task for row in runs[0].tasks] == ["a", "b", "c", "d", "e"]
    assert [(row.task, row.status) for row in runs[1].tasks] == [
        ("a", "cached"), ("b", "cached"), ("c", "done"), ("d", "done")
    ]
    assert nb.graph.statuses == dict.fromkeys(["a", "b", "c", "d", "e"], "done"), "values in memory say how they came"
