"""Everything that steers a load is signed: history rows, heads, hit counts; prune launders nothing.

Restoring a past run (``%dag run --as-of RUN``, ``graph.restore``) binds
exactly the values that run had: a volatile task and a ``--force``d one get
the output their run recorded, not the newest value of their key, so
``double == 2 * stamp`` holds after every restore, in the same session and
after a restart. Then the metadata is attacked the way anyone who can write
``meta.sqlite`` could: a history row edited to another task's output, a
signed row naming another task's entry, a head pointing at another task's
key, hit counts raised, forged entries whose value prune evicts (prune
used to re-sign them with the user's key), records that are not entries.
"""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import faultlib
import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.cache.runlog import ForgedRun
from dagnb.cache.store import CacheEntry, DiskStore, TaskRecord
from dagnb.cache.trust import sign
from dagnb.errors import CommandError, DagnbCacheWarning

STAMP = """
def stamp():
    note("stamp")
    import os
    return int.from_bytes(os.urandom(6), "little")  # another value every time it runs
"""
DOUBLE = """
def double(stamp):
    note("double")
    return 2 * stamp
"""
SEED = """
def seed():
    note("seed")
    import os
    return int.from_bytes(os.urandom(6), "little")
"""
PLUS = """
def plus(seed):
    note("plus")
    return seed + 1
"""


def session(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.task(STAMP, volatile=True)
    nb.task(DOUBLE)
    nb.task(SEED)
    nb.task(PLUS)
    return nb


def values(nb: Notebook) -> dict[str, int]:
    return {t: nb.ns[t] for t in ("stamp", "double", "seed", "plus")}


def test_restoring_a_run_binds_exactly_its_values_volatile_and_forced_included(tmp_path: Path) -> None:
    nb = session(tmp_path)
    had = {}
    for run, force in ((1, ()), (2, ("seed",)), (3, ("seed",))):
        report, _ = nb.run(force=list(force))
        assert nb.graph.last_history_id == run
        had[run] = values(nb)
    assert len({v["stamp"] for v in had.values()}) == 3 and len({v["seed"] for v in had.values()}) == 3
    executed = faultlib_runs(tmp_path)
    for run in (1, 2, 3, 1):
        outcome = nb.graph.restore(run)
        assert set(outcome.values()) == {"restored"}, outcome
        assert values(nb) == had[run], f"run {run}"
        assert nb.ns["double"] == 2 * nb.ns["stamp"] and nb.ns["plus"] == nb.ns["seed"] + 1
    nb.graph.store.close()

    again = session(tmp_path)  # a restart: the history and the values are in the cache
    for run in (2, 1):
        assert set(again.graph.restore(run).values()) == {"restored"}
        assert values(again) == had[run]
    assert faultlib_runs(tmp_path) == executed, "restoring runs nothing"
    again.graph.store.close()
    faultlib.record_case("test_history_rows", "restored runs 1, 2, 3 of a volatile and a forced task, in the "
                                              "session and after a restart: every value exactly its run's")


def faultlib_runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    return log.read_text().split() if log.exists() else []


def test_as_of_in_a_real_ipython_shell(tmp_path: Path) -> None:
    shell = faultlib.ipython_shell(tmp_path / "cache")
    try:
        shell.user_ns["LOG"] = str(tmp_path / "log.txt")
        faultlib.ipython_cell(shell, "%%task --volatile\ndef stamp():\n    import os\n"
                                     "    return int.from_bytes(os.urandom(6), 'little')\n")
        faultlib.ipython_cell(shell, "%%task\ndef double(stamp):\n    return 2 * stamp\n")
        first = (shell.user_ns["stamp"], shell.user_ns["double"])  # run 2 (the cell of `double`)
        faultlib.ipython_cell(shell, "%dag run")  # run 3: stamp reruns, double with it
        assert shell.user_ns["stamp"] != first[0]
        said = faultlib.ipython_cell(shell, "%dag run --as-of 2")
        assert said == "values of run 2:\n  stamp   restored\n  double  restored"
        assert (shell.user_ns["stamp"], shell.user_ns["double"]) == first
    finally:
        faultlib.unload_ipython(shell)


# ----------------------------------------------------------- forged rows


def filled(tmp_path: Path) -> tuple[Notebook, Path]:
    nb = session(tmp_path)
    nb.run()
    return nb, tmp_path / "cache"


def edit(root: Path, sql: str, args: tuple[Any, ...] = ()) -> None:
    db = sqlite3.connect(root / "meta.sqlite")
    with db:
        db.execute(sql, args)
    db.close()


def test_an_edited_history_row_is_refused(tmp_path: Path) -> None:
    nb, root = filled(tmp_path)
    stamp = nb.graph.results["stamp"]
    before = values(nb)
    edit(root, "UPDATE history_rows SET output = ? WHERE task = 'double'", (stamp.fingerprint,))  # another task's value
    with pytest.raises(CommandError) as refused:
        nb.graph.restore(1)
    assert str(refused.value) == (
        f"Run 1 in the history of the folder `{Path.cwd().name}` is not signed with your secret (it was altered, or written by "
        "someone else), so dagnb does not use it. `dagnb cache verify` removes such runs.")
    assert values(nb) == before, "nothing was bound"
    with pytest.warns(DagnbCacheWarning, match="1 runs in the history of the cache at .* are not signed"):
        assert nb.graph.history().runs == []
    faultlib.record_case("test_history_rows", "a history row edited to another task's output: the run refused")


def test_a_row_naming_another_tasks_entry_is_refused(tmp_path: Path) -> None:
    nb, _ = filled(tmp_path)
    stamp = nb.graph.results["stamp"]
    before = values(nb)
    run = nb.graph.store.record_run(0.0, 1.0, [TaskRecord("double", "done", key=stamp.key, fingerprint=stamp.fingerprint)])
    said = nb.graph.restore(run)
    assert said["double"] == (
        "not restored: the history names a cache entry of task `stamp` for it, so dagnb refuses it "
        "(`dagnb cache verify` checks the cache)")
    assert set(said.values()) - {said["double"]} <= {"restored"}, "the other tasks: the values earlier runs left"
    assert values(nb) == before
    faultlib.record_case("test_history_rows", "a signed row naming another task's entry: refused with a message")


def test_an_edited_head_or_hit_count_is_ignored(tmp_path: Path) -> None:
    nb, root = filled(tmp_path)
    seed = nb.graph.results["seed"]
    nb.graph.store.touch([(seed.key, 2.0)])
    edit(root, "UPDATE heads SET key = ? WHERE task = 'plus'", (seed.key,))
    edit(root, "UPDATE hits SET count = 1000, saved = 99999.0")
    nb.graph.store.close()
    store = DiskStore(root)
    assert store.head("plus") is None, "a head that points at another task's key is not used"
    assert store.hit_totals() == {}, "forged hit counts are not counted"
    store.touch([(seed.key, 1.5)])
    assert store.hit_totals() == {"seed": (1, 1.5)}, "counting starts again from what dagnb signed"
    store.close()
    again = session(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report, ran = again.run()
    assert ran == ["stamp", "double"] and again.ns["plus"] == again.ns["seed"] + 1  # only the volatile ones run
    again.graph.store.close()
    faultlib.record_case("test_history_rows", "a head pointed at another task's key, hit counts raised: ignored")


def _forge_entry(root: Path, key: str, record: str) -> None:
    """An entry row of the attacker's: its own signature (not the user's key)."""
    edit(root, "INSERT INTO entries VALUES (?, 'seed', ?, ?, ?, 0, 0)",
         (key, json.loads(record).get("output", "x") if record.startswith("{") else "x", record,
          sign(b"attacker-key-attacker-key-attacker", ("entry", key, record))))


def test_prune_never_signs_an_entry_it_did_not_verify(tmp_path: Path) -> None:
    nb, root = filled(tmp_path)
    output = nb.graph.results["seed"].fingerprint
    forged = CacheEntry("forged-key", "seed", output, captured=[{"name": "stdout", "text": "forged\n"}]).to_json()
    _forge_entry(root, "forged-key", forged)
    for number, record in enumerate(['{"hello": 1}', "[1, 2]", "not json", json.dumps({"key": 1, "task": 2,
                                                                                        "output": output})]):
        edit(root, "INSERT INTO entries VALUES (?, 'seed', ?, ?, 'forged', 0, 0)", (f"odd-{number}", output, record))
    nb.graph.store.close()
    store = DiskStore(root)
    pruned = store.prune(0)  # every value evicted: each entry of `seed` is re-signed as not stored
    assert pruned.values == 4
    with pytest.warns(DagnbCacheWarning, match="is not signed with your secret"):
        assert store.entry("forged-key") is None, "prune re-signed a forged entry"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert [store.entry(f"odd-{n}") for n in range(4)] == [None] * 4
    entry = store.entry(nb.graph.results["seed"].key)
    assert entry is not None and entry.stored is False, "dagnb's own entry is re-signed, marked not stored"
    store.close()
    faultlib.assert_usable(root)
    faultlib.record_case("test_history_rows", "prune over a forged entry and 4 records that are no entries: "
                                              "none re-signed, no crash")


def test_verify_removes_forged_runs_heads_and_hits(tmp_path: Path) -> None:
    nb, root = filled(tmp_path)
    edit(root, "UPDATE runs SET finished = finished + 1")
    edit(root, "UPDATE heads SET signature = 'forged' WHERE task = 'seed'")
    nb.graph.store.close()
    store = DiskStore(root)
    result = store.verify()
    assert (result.forged_runs, result.ok) == (1, False)
    assert str(result).endswith("removed 1 runs of the history that are not signed with your secret")
    assert store.verify().ok and store.runs() == [] and store.head("seed") is None
    store.close()
    assert dagnb.Graph(cache_dir=str(root)).history().runs == []


def test_restore_says_why_a_task_was_not_restored(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task(SEED)
    nb.task(PLUS)
    nb.task("def broken():\n    note('broken')\n    raise ValueError('no')\n")
    nb.run(raise_errors=False, keep_going=True)
    run = nb.graph.last_history_id
    nb.graph.store.prune(0)  # every value evicted; the entries stay
    nb.graph.drop("seed")
    assert nb.graph.restore(run) == {
        "seed": "no longer a task",
        "plus": "not restored: its value is not in the cache",
        "broken": "not restored: it had no value in that run (failed)",
    }
    nb.graph.store.close()


# ------------------------------------------------------- walking back


def test_restore_walks_back_one_run_per_task_and_stops_at_a_forged_run(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    names = [nb.task(f"def a{i}():\n    note('a{i}')\n    return {i} * 7\n") for i in range(40)]
    ids = []
    for name in names:  # one run per task, as a Run All of cells records (more runs than one batch reads)
        nb.run(name)
        ids.append(nb.graph.last_history_id)
    assert [len(nb.graph.store.run(i).tasks) for i in ids] == [1] * 40
    for name in names:
        nb.ns[name] = None
    said = nb.graph.restore(ids[-1])
    assert said == {name: "restored" for name in names}
    assert [nb.ns[name] for name in names] == [i * 7 for i in range(40)]
    assert list(said) == names, "in run order"

    nb.graph.store.close()
    edit(tmp_path / "cache", "UPDATE runs SET finished = finished + 1 WHERE id = ?", (ids[9],))  # the run of a9
    again = Notebook(tmp_path)
    for i in range(40):
        again.task(f"def a{i}():\n    note('a{i}')\n    return {i} * 7\n")
    said = again.graph.restore(ids[-1])
    assert said == {name: "restored" for name in names[10:]}, "the walk back stops at the forged run"
    assert [name in again.graph.results for name in names[:10]] == [False] * 10, "no value bound to the older ones"
    assert faultlib_runs(tmp_path) == names, "restoring runs nothing"
    again.graph.store.close()
    faultlib.record_case("test_history_rows", "restored the last of 40 one-task runs (walked back in batches), "
                                              "then with run 10 forged: the 30 runs after it, nothing older")


def test_runs_before_reads_in_batches_newest_first_to_a_forged_run(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "cache")
    ids = [store.record_run(float(i), i + 0.5, [TaskRecord(f"t{i}", "done", key=f"k{i}", fingerprint=f"f{i}")])
           for i in range(70)]
    walked = list(store.runs_before(ids[-1]))
    assert [r.id for r in walked] == ids[-2::-1]
    assert [r.tasks[0].task for r in walked[:2]] == ["t68", "t67"] and walked[-1].started == 0.0
    assert list(store.runs_before(ids[0])) == []
    edit(tmp_path / "cache", "UPDATE history_rows SET output = 'other' WHERE task = 't30'")
    seen = []
    with pytest.raises(ForgedRun) as forged:
        for run in store.runs_before(ids[-1]):
            seen.append(run.id)
    assert (seen, forged.value.run) == (ids[-2:30:-1], ids[30])
    store.close()


def test_entries_reads_pending_and_committed_entries_at_once(tmp_path: Path) -> None:
    nb, _ = filled(tmp_path)
    store = nb.graph.store
    keys = {t: nb.graph.results[t].key for t in ("stamp", "double")}
    store.begin_batch()
    try:
        store.put(CacheEntry("new-key", "seed", "f" * 32, stored=False), None)
        found = store.entries([*keys.values(), "new-key", "no-such-key"])
        assert {k: e.task for k, e in found.items()} == {keys["stamp"]: "stamp", keys["double"]: "double",
                                                         "new-key": "seed"}
    finally:
        store.flush()
    edit(tmp_path / "cache", "UPDATE entries SET signature = 'forged' WHERE key = ?", (keys["stamp"],))
    with pytest.warns(DagnbCacheWarning, match="is not signed with your secret"):
        assert set(store.entries(keys.values())) == {keys["double"]}
    store.close()
