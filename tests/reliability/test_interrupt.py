"""A run interrupted by a real SIGINT (Ctrl-C in a kernel) while a slow task runs, then resumed.

``first`` and ``side`` finish, ``slow`` is running when SIGINT arrives,
``last`` (after ``slow``) has not started. The interrupt is sent by a
thread that waits until ``slow`` has written its name to the log, so it
always lands inside ``slow``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import warnings
from pathlib import Path

import faultlib
import numpy as np
import pytest
from notebook_cells import Notebook, runs

from dagnb.cache.store import DiskStore
from dagnb.errors import RunInterrupted

TASKS = [
    """
def first():
    note("first")
    return list(range(10))
""",
    """
def side(first):
    note("side")
    import numpy as np
    return np.asarray(first) * 1.5
""",
    """
def slow(first):
    note("slow")
    import os
    import time
    while os.path.exists(HOLD):  # held until interrupted; the resumed run finds no hold
        time.sleep(0.01)
    return sum(first)
""",
    """
def last(slow, side):
    note("last")
    return slow + float(side.sum())
""",
]


def session(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.cell(f"HOLD = {str(tmp_path / 'hold')!r}")
    for source in TASKS:
        nb.task(source)
    return nb


def interrupt_when_started(log: Path, task: str) -> threading.Thread:
    """Send SIGINT to this process once ``task`` has logged that it runs."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while task not in runs(log) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


def test_an_interrupted_run_keeps_what_finished_and_resumes_with_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    nb = session(tmp_path)
    (tmp_path / "hold").touch()
    watcher = interrupt_when_started(nb.log, "slow")
    with pytest.raises(KeyboardInterrupt) as raised:
        nb.graph.run()
    watcher.join()
    assert isinstance(raised.value, RunInterrupted) and raised.value.report is nb.graph.last_run
    assert str(raised.value) == (
        "The run was interrupted. Finished and kept: `first` (ran) and `side` (ran). Cancelled: `slow` (it was "
        "running) and `last` (not started). Run it again to resume: only the 2 unfinished tasks run, the others "
        "are kept."
    )
    assert nb.graph.last_run.reasons["slow"] == "it was running"
    assert runs(nb.log) == ["first", "side", "slow"]
    assert nb.graph.statuses["slow"] == "cancelled" and nb.graph.statuses["last"] == "skipped"
    assert nb.ns["first"] == list(range(10)) and faultlib.same(nb.ns["side"], np.arange(10) * 1.5)
    assert "slow" not in nb.graph.results and "last" not in nb.graph.results
    assert callable(nb.ns["slow"]), "the name still holds the function, not a half value"
    assert faultlib.tmp_files(root) == []

    store = DiskStore(root)  # what finished is in the cache, and loads right
    for task, value in (("first", list(range(10))), ("side", np.arange(10) * 1.5)):
        entry = store.head(task)
        assert entry is not None and entry.stored and faultlib.same(store.load(entry), value), task
    assert store.head("slow") is None and store.head("last") is None
    store.close()

    (tmp_path / "hold").unlink()
    report, ran = nb.run()  # the same session, resumed
    assert ran == ["slow", "last"] and report.ok
    assert nb.graph["last"] == 45 + 45 * 1.5
    nb.graph.store.close()

    again = session(tmp_path)  # a restart: everything loads, nothing runs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report, ran = again.run()
    assert ran == [] and report.ok and again.graph["last"] == 45 + 45 * 1.5
    again.graph.store.close()
    assert faultlib.tmp_files(root) == []
    faultlib.assert_usable(root)
    faultlib.record(
        "test_interrupt",
        "a real SIGINT while `slow` ran (inline backend); 2 tasks done before it, 2 not finished",
        "nothing: RunInterrupted (a KeyboardInterrupt) raised, its one paragraph naming the 2 tasks kept, `slow` "
        "as running and `last` as not started; the 2 finished tasks bound and cached; the resumed run executed "
        "only the 2 unfinished; a restart loaded all 4; no temporary files",
    )


SWALLOWING = [
    """
def first():
    note("first")
    return list(range(10))
""",
    """
def train(first):
    note("train")
    import os
    import time
    steps = 0
    try:
        while os.path.exists(HOLD):  # the usual training loop: stop early on Ctrl-C, keep what was learnt
            time.sleep(0.01)
            steps += 1
    except KeyboardInterrupt:
        return "partial"
    return "complete"
""",
    """
def report(train):
    note("report")
    return f"model: {train}"
""",
]


def swallowing(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.cell(f"HOLD = {str(tmp_path / 'hold')!r}")
    for source in SWALLOWING:
        nb.task(source)
    return nb


def test_a_task_that_catches_the_interrupt_is_interrupted_not_cached_and_reruns(tmp_path: Path) -> None:
    from dagnb.errors import TaskInterrupted

    nb = swallowing(tmp_path)
    (tmp_path / "hold").touch()
    watcher = interrupt_when_started(nb.log, "train")
    with pytest.raises(TaskInterrupted) as raised:
        nb.graph.run()
    watcher.join()
    assert str(raised.value) == (
        "Task `train` was interrupted: it caught the KeyboardInterrupt and returned early, so its value may be "
        "partial. The value is bound for you to look at, but not cached; its status is `interrupted`, tasks after "
        "it did not start, and the next run runs `train` again."
    )
    assert isinstance(raised.value, KeyboardInterrupt)
    assert raised.value.paragraph() == str(raised.value) + (
        " Finished and kept: `first` (ran) and `train` (interrupted: its value is partial, in memory only). "
        "Cancelled: `report` (not started). Run it again to resume: only the 2 unfinished tasks run, the others "
        "are kept."
    )
    assert runs(nb.log) == ["first", "train"]
    assert nb.graph.statuses == {"first": "done", "train": "interrupted", "report": "skipped"}
    assert nb.ns["train"] == nb.graph["train"] == "partial", "the partial value stays in memory, to look at"
    assert nb.graph.last_run is not None and nb.graph.last_run.interrupted == ["train"]
    assert nb.graph.last_run.line("train") == "train: interrupted (it caught Ctrl-C; not cached)"
    assert nb.graph.plan()["train"].reasons == ("interrupted last time",)
    store = DiskStore(tmp_path / "cache")
    assert store.head("train") is None and store.head("report") is None, "nothing of the partial run is cached"
    store.close()

    (tmp_path / "hold").unlink()
    report, ran = nb.run()  # the same session: train runs again, to completion
    assert ran == ["train", "report"] and report.reasons["train"] == "interrupted last time"
    assert nb.graph["report"] == "model: complete"
    nb.graph.store.close()

    again = swallowing(tmp_path)  # a restart loads the complete value
    report, ran = again.run()
    assert ran == [] and again.graph["report"] == "model: complete"
    again.graph.store.close()
    faultlib.assert_usable(tmp_path / "cache")
    faultlib.record(
        "test_interrupt (swallowed)",
        "a real SIGINT while `train` ran, which caught the KeyboardInterrupt and returned a partial value",
        "nothing: TaskInterrupted raised; `train` `interrupted`, its partial value bound but never cached; "
        "`report` not started; the next run reran `train`; a restart loaded the complete values",
    )


def test_a_restart_after_a_swallowed_interrupt_runs_the_task_again(tmp_path: Path) -> None:
    from dagnb.errors import TaskInterrupted

    nb = swallowing(tmp_path)
    (tmp_path / "hold").touch()
    watcher = interrupt_when_started(nb.log, "train")
    with pytest.raises(TaskInterrupted):
        nb.graph.run()
    watcher.join()
    nb.graph.store.close()
    (tmp_path / "hold").unlink()
    again = swallowing(tmp_path)
    report, ran = again.run()
    assert ran == ["train", "report"] and again.graph["train"] == "complete"
    again.graph.store.close()
