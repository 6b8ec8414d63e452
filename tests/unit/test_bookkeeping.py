"""dagnb's own bookkeeping never crashes a run: sizing, fingerprinting and pickling a user's value,
reading an input file, and an iterator that two tasks read.

Executions are counted in the log file the task bodies append to; a restart
is a new Graph over the same cache directory.
"""

from __future__ import annotations

import multiprocessing
import warnings
from pathlib import Path
from typing import Any

import pytest
from notebook_cells import Notebook, runs

import dagnb
from dagnb.errors import (
    InputUnreadable,
    IteratorReused,
    TaskFailed,
    UnfingerprintableWarning,
    UnpicklableOutputWarning,
)
from dagnb.run.costs import value_nbytes


class UnsizedFrame:
    """Like a dask DataFrame: its size is not known until it is computed."""

    def __init__(self, rows: list[int]) -> None:
        self.rows = rows

    @property
    def nbytes(self) -> int:
        raise NotImplementedError("nbytes is not known before compute()")

    def __sizeof__(self) -> int:
        raise NotImplementedError("nor is this")


def caught_warnings(nb: Notebook, **options: Any) -> tuple[Any, list[str], list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, ran = nb.run(**options)
    return report, ran, list(caught)


def test_a_value_whose_size_cannot_be_measured_is_stored_and_reloaded(tmp_path: Path) -> None:
    assert value_nbytes(UnsizedFrame([1])) == 0 and value_nbytes([UnsizedFrame([1])]) > 0
    for _ in range(2):  # the second time is a restart: the value loads from the cache
        nb = Notebook(tmp_path)
        nb.ns["UnsizedFrame"] = UnsizedFrame
        nb.task("def lazy():\n    note('lazy')\n    return UnsizedFrame([1, 2, 3])\n")
        nb.task("def total(lazy):\n    note('total')\n    return sum(lazy.rows)\n")
        report, _, caught = caught_warnings(nb)
        assert report.ok and nb.graph["total"] == 6 and caught == []
        nb.graph.store.close()
    assert runs(nb.log) == ["lazy", "total"], "the restart ran nothing"


def test_a_task_returning_a_dask_dataframe_runs_and_is_reloaded_after_a_restart(tmp_path: Path) -> None:
    """The case seen in a real notebook: `nbytes` of a dask DataFrame raises NotImplementedError."""
    pytest.importorskip("dask.dataframe")  # needs pyarrow
    for _ in range(2):
        nb = Notebook(tmp_path)
        nb.task("def frame():\n    note('frame')\n    import dask.dataframe as dd\n    import pandas as pd\n"
                "    return dd.from_pandas(pd.DataFrame({'x': range(10)}), npartitions=2)\n")
        nb.task("def total(frame):\n    note('total')\n    return int(frame.x.sum().compute())\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report, _ = nb.run()
        assert report.ok and nb.graph["total"] == 45
        nb.graph.store.close()
    assert runs(nb.log) == ["frame", "total"], "the restart ran nothing"


SOURCES = {
    "sibling": "def sibling():\n    note('sibling')\n    return [1, 2]\n",
    "queue": "def queue():\n    note('queue')\n    return multiprocessing.Queue()\n",
    "uses": "def uses(queue, sibling):\n    note('uses')\n    queue.put(sibling)\n    return queue.get(timeout=5)\n",
}


def test_a_value_whose_pickling_raises_stays_in_memory_and_its_sibling_is_kept(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.ns["multiprocessing"] = multiprocessing
    for source in SOURCES.values():
        nb.task(source)
    report, ran, caught = caught_warnings(nb)
    assert report.ok and ran == ["sibling", "queue", "uses"] and nb.graph["uses"] == [1, 2]
    [warning] = [w for w in caught if issubclass(w.category, (UnpicklableOutputWarning, UnfingerprintableWarning))]
    assert warning.category is UnpicklableOutputWarning
    assert str(warning.message) == (
        "The value of task `queue` cannot be pickled (RuntimeError: Queue objects should only be shared between "
        "processes through inheritance); it is kept in memory only and recomputed after a restart."
    )
    assert warning.filename.startswith("<cell-"), "the warning points at the task's cell, not at dagnb"
    assert nb.run()[1] == [], "in this session the queue stays in memory"
    nb.graph.store.close()

    again = Notebook(tmp_path)  # a restart: the sibling loads, the queue is recomputed
    again.ns["multiprocessing"] = multiprocessing
    for source in SOURCES.values():
        again.task(source)
    report, ran, _ = caught_warnings(again)
    assert ran == ["queue"] and again.graph["uses"] == [1, 2]  # `uses` is keyed by the key of `queue`




def test_a_directory_is_a_file_input_covering_its_listing_and_contents(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "nested").mkdir(parents=True)
    (data / "a.csv").write_text("x\n1\n")
    (data / "nested" / "b.csv").write_text("x\n2\n")
    nb = Notebook(tmp_path)
    nb.ns["dagnb"] = dagnb
    nb.cell(f"DATA = dagnb.file({str(data)!r})")
    nb.task("def files(folder=DATA):\n    note('files')\n    import os\n"
            "    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)\n")
    assert nb.run()[1] == ["files"] and nb.graph["files"] == ["a.csv", "nested/b.csv"]
    assert nb.run()[1] == []
    (data / "nested" / "b.csv").write_text("x\n3\n")  # a file's content, deep inside
    assert nb.run()[1] == ["files"]
    (data / "c.csv").write_text("")  # a new file
    assert nb.run()[1] == ["files"] and nb.graph["files"] == ["a.csv", "c.csv", "nested/b.csv"]
    (data / "empty").mkdir()  # a new (empty) folder is part of the listing too
    assert nb.run()[1] == ["files"]
    assert nb.graph.why("files").render_text() == "files is up to date: its key is unchanged."


UNREADABLE = (
    "Task `bad` did not run: its input file `/proc/self/mem` cannot be read (OSError: Input/output error). Fix "
    "the file's permissions or the path given to `dagnb.file(...)`; the other tasks are not affected."
)


def test_an_input_file_that_cannot_be_read_fails_that_task_only(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.ns["dagnb"] = dagnb
    nb.task("def bad(path=dagnb.file('/proc/self/mem')):\n    note('bad')\n    return 1\n")
    nb.task("def good():\n    note('good')\n    return 2\n")
    nb.task("def after(bad):\n    note('after')\n    return bad\n")
    report = nb.graph.run(keep_going=True, raise_errors=False)
    assert report.statuses == {"bad": "failed", "good": "done", "after": "skipped"}
    assert isinstance(report.errors["bad"], InputUnreadable) and str(report.errors["bad"]) == UNREADABLE
    assert runs(nb.log) == ["good"]
    with pytest.raises(TaskFailed) as raised:
        nb.graph.run(["bad"])
    assert str(raised.value) == UNREADABLE


ITERATOR = (
    "Task `second` did not run: its input `numbers` is an iterator (a generator, a `map`) that task `first` "
    "already read, so it is used up and `second` would see nothing. Make task `numbers` return a list "
    "(`return list(...)`), so that every task reading it gets all of it."
)


@pytest.mark.parametrize("made", ["(i for i in range(4))", "iter([0, 1, 2, 3])"], ids=["generator", "list iterator"])
def test_an_iterator_read_by_a_second_task_is_reported_with_the_fix(tmp_path: Path, made: str) -> None:
    nb = Notebook(tmp_path)
    nb.task(f"def numbers():\n    note('numbers')\n    return {made}\n")
    nb.task("def first(numbers):\n    note('first')\n    return sum(numbers)\n")
    nb.task("def second(numbers):\n    note('second')\n    return max(numbers)\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnpicklableOutputWarning)
        report = nb.graph.run(keep_going=True, raise_errors=False)
    assert report.statuses == {"numbers": "done", "first": "done", "second": "failed"}
    assert isinstance(report.errors["second"], IteratorReused) and str(report.errors["second"]) == ITERATOR
    assert nb.graph["first"] == 6 and runs(nb.log) == ["numbers", "first"]

    nb.task("def numbers():\n    note('numbers')\n    return [i for i in range(4)]\n")  # the fix
    report, ran = nb.run()
    assert report.ok and ran == ["numbers", "first", "second"] and nb.graph["second"] == 3
