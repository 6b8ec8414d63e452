"""A run's bookkeeping written on the disk store's settler thread (``settle_run(later=True)``).

The notebook hands each run's hit counts and history row to the settler, so
a cell of cache hits does not wait for them; whatever reads or writes them
next waits for the settler first. These tests use a real disk cache, real
threads and real processes; ``tests/kernel/test_settled_cells.py`` the
magics in a real IPython shell.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dagnb.cache.store import CacheEntry, DiskStore, TaskRecord
from dagnb.errors import DagnbCacheWarning
from dagnb.fingerprints.values import fingerprint
from dagnb.scope import Scope


def _store(root: Path) -> DiskStore:
    store = DiskStore(root)
    store.put(CacheEntry(key="k1", task="a", fingerprint=fingerprint(1)), 1)
    return store


def _row(task: str = "a") -> TaskRecord:
    return TaskRecord(task, "cached", "", "k1", fingerprint(1), 0.0, "main")


def test_runs_settled_later_are_read_in_order_with_their_hits(tmp_path: Path) -> None:
    store = _store(tmp_path)
    for i in range(20):
        store.settle_run([("k1", 0.5)], float(i), float(i) + 0.5, [_row()], later=True)
    assert [(r.started, [t.task for t in r.tasks]) for r in store.runs(None)] == [
        (float(i), ["a"]) for i in reversed(range(20))
    ]
    assert store.hit_totals() == {"a": (20, 10.0)}
    assert store.last_run_id == store.runs(1)[0].id
    assert store.info().runs == 20
    store.close()


def test_a_run_settled_later_goes_to_the_scope_it_ran_in(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.use_scope(Scope.of_notebook(tmp_path / "a.ipynb"))
    store.settle_run([("k1", 1.0)], 1.0, 2.0, [_row()], later=True)
    store.use_scope(Scope.of_notebook(tmp_path / "b.ipynb"))
    assert (store.runs(), store.hit_totals()) == ([], {}), "nothing of a.ipynb's run is b.ipynb's"
    store.use_scope(Scope.of_notebook(tmp_path / "a.ipynb"))
    assert [r.started for r in store.runs()] == [1.0] and store.hit_totals() == {"a": (1, 1.0)}
    store.close()


def test_a_run_the_settler_could_not_write_is_said_at_the_next_read_and_later_runs_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path)
    write = store.meta.settle_runs
    calls: list[int] = []

    def locked_once(runs: list[object]) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return write(runs)  # type: ignore[arg-type]

    monkeypatch.setattr(store.meta, "settle_runs", locked_once)
    store.settle_run([("k1", 1.0)], 1.0, 2.0, [_row()], later=True)
    with pytest.warns(DagnbCacheWarning) as said:
        assert store.runs() == []
    assert [str(w.message) for w in said] == [
        f"dagnb could not record a run in the cache at {store.location} (database is locked); values are unaffected."
    ]
    store.settle_run([("k1", 1.0)], 3.0, 4.0, [_row()], later=True)
    assert [r.started for r in store.runs()] == [3.0] and store.hit_totals() == {"a": (1, 1.0)}
    assert store.load(store.entry("k1")) == 1  # type: ignore[arg-type]
    store.close()


def test_a_process_that_exits_right_after_settling_later_has_written_its_run(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from dagnb.cache.store import CacheEntry, DiskStore, TaskRecord
        from dagnb.fingerprints.values import fingerprint
        store = DiskStore({str(tmp_path)!r})
        store.put(CacheEntry(key="k1", task="a", fingerprint=fingerprint(1)), 1)
        for i in range(50):
            store.settle_run([("k1", 1.0)], float(i), float(i), [TaskRecord("a", "cached", "", "k1")], later=True)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    store = DiskStore(tmp_path)
    assert len(store.runs(None)) == 50 and store.hit_totals() == {"a": (50, 50.0)}
    store.close()


def test_the_settler_thread_is_woken_by_a_first_item_only(tmp_path: Path) -> None:
    """In a kernel a thread's wake-up takes the interpreter from the cell: items after the first wake nothing."""
    import threading

    from dagnb.cache.settler import Settler

    written: list[list[int]] = []
    settler = Settler(lambda batch: written.append(batch) or len(written))

    class Counting(threading.Condition):
        wakes = 0

        def notify_all(self) -> None:
            Counting.wakes += 1
            super().notify_all()

    settler._ready = Counting()
    for i in range(50):
        settler.add(i)
    assert Counting.wakes == 1, "one wake for the first item; the thread then waits its delay for the rest"
    assert settler.wait() == [] and [i for batch in written for i in batch] == list(range(50))
    settler.close()
