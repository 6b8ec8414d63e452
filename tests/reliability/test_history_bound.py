"""The run history is bounded, counted by ``cache info``, pruned and cleared with the cache, read run by run.

A notebook of a 300-task chain is run cell by cell, as Run All does: each
cell's run reaches every task above it, so a history that stores every
task of every run grows with the square of the depth (45,150 task rows
before). Each distinct task row is now stored once: the rows grow with the
depth. Then many more runs than the bound are recorded, the cache is
pruned and cleared, and a diff is watched statement by statement.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import faultlib
from notebook_cells import Notebook

from dagnb.cache.runlog import KEEP_RUNS
from dagnb.cache.store import DiskStore, TaskRecord

DEPTH = 300


def chain_run_all(tmp_path: Path) -> Notebook:
    """Define t0 <- t1 <- ... and run each right after its cell, as a notebook's Run All does."""
    nb = Notebook(tmp_path)
    nb.task("def t0():\n    return 0\n")
    nb.run("t0")
    for i in range(1, DEPTH):
        nb.task(f"def t{i}(t{i - 1}):\n    return t{i - 1} + 1\n")
        nb.run(f"t{i}")
    assert nb.graph[f"t{DEPTH - 1}"] == DEPTH - 1
    return nb


def test_a_run_all_over_a_chain_stores_rows_linear_in_its_depth(tmp_path: Path) -> None:
    nb = chain_run_all(tmp_path)
    info = nb.graph.store.info()
    reached = DEPTH * (DEPTH + 1) // 2  # task rows of all the runs, as each run saw them
    assert info.runs == DEPTH
    assert info.history_rows == 2 * DEPTH - 1, "a row per task that ran, and one per task that was up to date"
    files = sum((tmp_path / "cache" / n).stat().st_size for n in ("meta.sqlite", "meta.sqlite-wal")
                if (tmp_path / "cache" / n).exists())
    assert info.metadata_bytes == files and f"metadata: {faultlib_human(files)}" in str(info)
    run = nb.graph.run_record(DEPTH)
    assert [t.task for t in run.tasks] == [f"t{i}" for i in range(DEPTH)], "each run still reads back whole"
    nb.graph.store.close()
    faultlib.record_case("test_history_bound", f"Run All over a {DEPTH}-task chain: {info.history_rows} task rows "
                                               f"for {reached:,} reached (before: {reached:,} rows)")


def faultlib_human(nbytes: int) -> str:
    from dagnb.cache.results import _human

    return _human(nbytes)


def test_the_history_keeps_the_latest_runs_and_goes_with_prune_and_clear(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "cache")
    for run in range(KEEP_RUNS + 120):
        store.record_run(float(run), float(run) + 1, [TaskRecord("a", "done", key=f"k{run}", fingerprint="0" * 32),
                                                      TaskRecord("b", "cached", key="kb", fingerprint="1" * 32)])
    info = store.info()
    assert KEEP_RUNS <= info.runs < KEEP_RUNS + 50, "recording trims as it goes"
    assert info.history_rows == info.runs + 1, "the task rows of the trimmed runs went with them"
    store.prune(10**12)  # nothing to evict; the history is brought down to the bound
    info = store.info()
    assert (info.runs, info.history_rows) == (KEEP_RUNS, KEEP_RUNS + 1)
    assert [r.id for r in store.runs(2)] == [KEEP_RUNS + 120, KEEP_RUNS + 119], "the latest are kept"
    store.clear("a")
    run = store.run(KEEP_RUNS + 120)
    assert run is not None and [t.task for t in run.tasks] == ["b"], "clearing a task takes it out of the history"
    store.clear()
    assert (store.info().runs, store.info().history_rows) == (0, 0)
    store.close()
    faultlib.record_case("test_history_bound", f"{KEEP_RUNS + 120} runs recorded: the latest {KEEP_RUNS} kept, "
                                               f"their rows counted, cleared with a task and with the cache")


def test_a_diff_reads_only_the_two_runs_it_compares(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task("def a():\n    return 1\n")
    for _ in range(40):
        nb.run(force=["a"])
    read: list[str] = []
    nb.graph.store._db.set_trace_callback(read.append)
    diff = nb.graph.diff(3, 7)
    nb.graph.store._db.set_trace_callback(None)
    assert diff.render_text() == "from run 3 to run 7: no task changed key or value"
    runs = [sql for sql in read if re.search(r"\bFROM runs\b", sql)]
    assert len(runs) == 2 and all(re.search(r"WHERE id = (3|7)\b", sql) for sql in runs), runs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(nb.graph.history(5).runs) == 5
    nb.graph.store.close()
    faultlib.record_case("test_history_bound", "a diff of 2 runs out of 40: 2 runs read, by id")
