"""Sweeping the run history's task rows (``dagnb.cache.runlog.sweep``) on a real SQLite database.

A task row stays while a run names it. The sweep is one statement in
SQLite's own code where SQLite has its JSON functions, and a walk in Python
otherwise; both keep the same rows for the runs dagnb writes, and neither
lets a damaged run keep every row.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path

import pytest

from dagnb.cache import runlog


def _database(path: Path, rows: int, runs: list[str]) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(runlog.SCHEMA)
    db.executemany(
        f"INSERT INTO history_rows (id, {runlog._COLUMNS}) VALUES (?, ?, 'done', '', ?, ?, 0.5, 'main')",
        [(i, f"t{i}", f"k{i}", f"o{i}") for i in range(1, rows + 1)],
    )
    db.executemany("INSERT INTO runs (started, finished, rows, signature) VALUES (0, 1, ?, 'x')", [(r,) for r in runs])
    return db


def _kept(db: sqlite3.Connection) -> set[int]:
    return {row_id for (row_id,) in db.execute("SELECT id FROM history_rows")}


def test_a_task_row_stays_while_a_run_names_it(tmp_path: Path) -> None:
    runs = ["[1, 2]", "[2, 3]", "not json", "[99]", "[]"]
    db = _database(tmp_path / "m.sqlite", 6, runs)
    runlog.sweep(db)
    assert _kept(db) == {1, 2, 3}
    db.execute("DELETE FROM runs WHERE rows = '[1, 2]'")
    runlog.sweep(db)
    assert _kept(db) == {2, 3}


def test_a_null_in_a_damaged_run_does_not_keep_every_row(tmp_path: Path) -> None:
    db = _database(tmp_path / "m.sqlite", 4, ["[1, null]", '[2, "x", 3.5]'])
    runlog.sweep(db)  # `id NOT IN (1, NULL)` is unknown for every row: the nulls are not counted
    assert _kept(db) == {1, 2}


@pytest.mark.parametrize("seed", range(5))
def test_the_statement_and_the_walk_keep_the_same_rows(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    runs = [json.dumps(rng.sample(range(1, 300), rng.randint(0, 8))) for _ in range(400)]
    runs += ["[1, 2", "", "{}", "null"]  # damaged: they name nothing either way
    walked, swept = _database(tmp_path / "a.sqlite", 300, runs), _database(tmp_path / "b.sqlite", 300, runs)
    runlog._sweep_walking(walked)
    runlog.sweep(swept)
    assert _kept(swept) == _kept(walked) == {i for r in runs[:400] for i in json.loads(r)}
    trace: list[str] = []
    swept.set_trace_callback(trace.append)
    runlog.sweep(swept)
    assert len(trace) == 1, "one statement: the walk over the runs is SQLite's"
