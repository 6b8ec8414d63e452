"""Values that break dagnb's bookkeeping, next to ordinary ones, with a real disk cache, then a restart.

One notebook holds a value whose pickling raises (``multiprocessing.Queue``),
one whose size cannot be measured (``nbytes`` and ``__sizeof__`` raise, as a
dask DataFrame's ``nbytes`` does), one whose fingerprinting raises from its
own ``__reduce__`` (``ValueError``), an input file that cannot be read
(``/proc/self/mem``: a real EIO), a directory as a file input, and ordinary
tasks beside and below them. The run must finish, keep and cache every value
it can, and fail only the task whose input cannot be read.
"""

from __future__ import annotations

import multiprocessing
import warnings
from pathlib import Path

import faultlib
from notebook_cells import Notebook, runs

import dagnb
from dagnb.cache.store import DiskStore
from dagnb.errors import InputUnreadable


class Unsized:
    """Its size is unknown until computed (like a dask DataFrame)."""

    def __init__(self, rows: list[int]) -> None:
        self.rows = rows

    @property
    def nbytes(self) -> int:
        raise NotImplementedError("size unknown before compute()")

    def __sizeof__(self) -> int:
        raise NotImplementedError("size unknown")


class Refuses:
    """Its own pickling raises an error no pickler expects."""

    def __reduce__(self) -> None:
        raise ValueError("this object refuses to be pickled")


TASKS = [
    "def plain():\n    note('plain')\n    return [1, 2, 3]\n",
    "def queue():\n    note('queue')\n    return multiprocessing.Queue()\n",
    "def unsized(plain):\n    note('unsized')\n    return Unsized(plain)\n",
    "def refuses():\n    note('refuses')\n    return Refuses()\n",
    "def folder(path=dagnb.file(DATA)):\n    note('folder')\n    import os\n    return sorted(os.listdir(path))\n",
    "def unreadable(path=dagnb.file('/proc/self/mem')):\n    note('unreadable')\n    return 0\n",
    "def below(unsized, refuses, queue, folder):\n    note('below')\n    return sum(unsized.rows) + len(folder)\n",
]


def session(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.ns.update(multiprocessing=multiprocessing, Unsized=Unsized, Refuses=Refuses, dagnb=dagnb)
    nb.cell(f"DATA = {str(tmp_path / 'data')!r}")
    for source in TASKS:
        nb.task(source)
    return nb


def test_values_that_break_pickling_sizing_or_reading_lose_nothing(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text("x\n1\n")
    nb = session(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = nb.graph.run(keep_going=True, raise_errors=False)
    assert report.statuses == {"plain": "done", "queue": "done", "unsized": "done", "refuses": "done",
                               "folder": "done", "unreadable": "failed", "below": "done"}
    assert isinstance(report.errors["unreadable"], InputUnreadable)
    assert nb.graph["below"] == 7 and type(nb.ns["queue"]).__name__ == "Queue"
    warned = sorted((w.category.__name__, str(w.message).split(" cannot")[0]) for w in caught)
    assert warned == [("UnpicklableOutputWarning", "The value of task `queue`"),
                      ("UnpicklableOutputWarning", "The value of task `refuses`")], warned
    assert all(w.filename.startswith("<cell-") for w in caught), [w.filename for w in caught]
    ran_first = runs(nb.log)
    nb.graph.store.close()

    store = DiskStore(tmp_path / "cache")  # what could be pickled is in the cache
    stored = {t for t in ("plain", "unsized", "folder", "below") if (e := store.head(t)) and e.stored}
    assert stored == {"plain", "unsized", "folder", "below"}
    store.close()

    again = session(tmp_path)  # a restart
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = again.graph.run(keep_going=True, raise_errors=False)
    ran = runs(again.log)[len(ran_first):]
    assert sorted(ran) == ["queue", "refuses"], "only the values that cannot be pickled are recomputed"
    assert again.graph["below"] == 7 and report.statuses["unreadable"] == "failed"
    again.graph.store.close()
    faultlib.assert_usable(tmp_path / "cache")
    faultlib.record(
        "test_bad_values",
        "in one run beside ordinary tasks: a value whose pickling raises (multiprocessing.Queue), one whose "
        "`nbytes` and `__sizeof__` raise, one whose `__reduce__` raises ValueError, a directory as a file input, "
        "an input file that cannot be read (a real EIO); then a restart",
        "nothing: the run finished; only the task with the unreadable input failed (InputUnreadable, one "
        "paragraph); every other value bound, the picklable ones cached; warnings pointed at the tasks' cells; "
        "after the restart only the 2 unpicklable values were recomputed",
    )
