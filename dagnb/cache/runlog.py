"""The run history in a cache's metadata: signed, each task row stored once, bounded.

A run is one row of ``runs``: its id, its scope (the notebook, or folder,
that ran it: :mod:`dagnb.cache.heads`), start and end, the ids of its task
rows in order, and a signature (HMAC-SHA256 with the secret) over all of
that *and* the content of each of those task rows. Task rows live in
``history_rows``, one per distinct (task, status, reason, key, output,
duration, worker): a task that was already up to date in many runs (every
cell of a long chain re-runs the cells above it) is stored once, so a Run
All over a chain of N tasks writes O(N) task rows, not O(N²).

Invariants:

* A run is read back only if its signature verifies: an edited, moved or
  forged row, or a run written with another secret, is never used (a forged
  run raises :class:`ForgedRun` when asked for by id, and is left out of
  listings).
* A scope reads only its own runs (listed, or asked for by id); run ids
  count the runs of the whole cache.
* At most :data:`KEEP_RUNS` runs are kept per scope; recording more drops
  that scope's oldest, and the task rows no kept run names.
* A format-3 or 4 cache read as it is (``legacy``: opened read-only, so not
  migrated) has no scope column: its runs, signed without a scope, are read
  as one scope's.
* Reading one run reads that run and its own task rows, nothing else.

The caller holds the write transaction and the lock around each function
that writes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from dagnb.cache.records import TASK_COLUMNS, RunRecord, TaskRecord
from dagnb.cache.trust import Signer

__all__ = ["KEEP_RUNS", "SCHEMA", "ForgedRun", "RunRecord", "TaskRecord"]

KEEP_RUNS = 5000  # a Run All of a long notebook records one small run per cell
_SLACK = 50  # trimming waits until this many runs are over the bound: one sweep per 50 runs
_BATCH = 500  # ids per `IN (...)` query, below SQLite's limit on parameters

SCHEMA = """
CREATE TABLE IF NOT EXISTS history_rows (
    id INTEGER PRIMARY KEY, task TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    key TEXT NOT NULL, output TEXT NOT NULL, duration REAL NOT NULL, worker TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS history_rows_all ON history_rows (task, status, reason, key, output, duration, worker);
CREATE INDEX IF NOT EXISTS history_rows_output ON history_rows (output);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, finished REAL NOT NULL,
    rows TEXT NOT NULL, signature TEXT NOT NULL, scope TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS runs_scope ON runs (scope, id);
"""
_COLUMNS = ", ".join(TASK_COLUMNS)


class ForgedRun(Exception):
    """A recorded run whose signature does not verify."""

    def __init__(self, run: int) -> None:
        super().__init__(run)
        self.run = run


def _fields(
    run: int, scope: str | None, started: float, finished: float, rows: Iterable[tuple[object, ...]]
) -> list[str]:
    """What a run's signature covers; ``scope=None``: as formats 3 and 4 signed it, before runs had a scope."""
    scoped = () if scope is None else ("scope", scope)
    fields = ["run", str(run), *scoped, repr(float(started)), repr(float(finished))]
    for row in rows:
        fields += [repr(part) if isinstance(part, float) else str(part) for part in row]
    return fields


def record(
    db: sqlite3.Connection, signer: Signer, scope: str, started: float, finished: float, tasks: list[TaskRecord]
) -> int:
    """Add a run of ``scope`` (its task rows stored once each), sign it, keep the history bounded; return its id."""
    rows = [t.stored() for t in tasks]
    ids = [_row_id(db, row) for row in rows]
    run = int(
        db.execute(
            "INSERT INTO runs (started, finished, rows, signature, scope) VALUES (?, ?, ?, '', ?)",
            (started, finished, json.dumps(ids), scope),
        ).lastrowid
        or 0
    )
    signature = signer.sign(_fields(run, scope, started, finished, rows))
    db.execute("UPDATE runs SET signature = ? WHERE id = ?", (signature, run))
    if run % _SLACK == 0:
        trim(db)
    return run


def _row_id(db: sqlite3.Connection, row: tuple[object, ...]) -> int:
    where = " AND ".join(f"{c.strip()} = ?" for c in _COLUMNS.split(","))
    found = db.execute(f"SELECT id FROM history_rows WHERE {where}", row).fetchone()
    if found:
        return int(found[0])
    return int(db.execute(f"INSERT INTO history_rows ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", row).lastrowid or 0)


def read(
    db: sqlite3.Connection, signer: Signer, run: int, scope: str | None = None, legacy: bool = False
) -> RunRecord | None:
    """Run ``run`` of ``scope`` (of any scope when ``None``), verified (``None`` if there is no such run).

    ``legacy``: ``db`` is a format-3 or 4 cache read as it is (no scope column).

    Raises:
        ForgedRun: its signature does not verify.
    """
    column = "NULL" if legacy else "scope"
    head = db.execute(
        f"SELECT id, started, finished, rows, signature, {column} FROM runs WHERE id = ?", (run,)
    ).fetchone()
    if head is None or (scope is not None and not legacy and head[5] != scope):
        return None
    found = _verified(db, signer, [head])
    if not found:
        raise ForgedRun(run)
    return found[0]


def _verified(db: sqlite3.Connection, signer: Signer, heads: list[tuple[Any, ...]]) -> list[RunRecord]:
    """The runs of ``heads`` (rows of ``runs``, in walk order), verified, up to the first that is not.

    Their task rows are read together, a batch of queries for all of them (not a query per run).
    """
    wanted = []
    for head in heads:
        try:
            wanted.append([int(i) for i in json.loads(head[3])])
        except (ValueError, TypeError):
            break  # unreadable: forged, and the walk stops there
    stored = _rows_by_id(db, {i for ids in wanted for i in ids})
    found = []
    for (run, started, finished, _, signature, scope), ids in zip(heads, wanted):
        rows = [stored[i] for i in ids if i in stored]
        if len(rows) != len(ids) or not signer.check(signature, _fields(run, scope, started, finished, rows)):
            break
        found.append(RunRecord(run, started, finished, [TaskRecord.from_row(r) for r in rows], scope or ""))
    return found


def _rows(db: sqlite3.Connection, ids: list[int]) -> list[tuple[object, ...]] | None:
    """The task rows ``ids`` in that order (``None`` if any is missing)."""
    found = _rows_by_id(db, set(ids))
    if len(found) != len(set(ids)):
        return None
    return [found[i] for i in ids]


def _rows_by_id(db: sqlite3.Connection, ids: set[int]) -> dict[int, tuple[object, ...]]:
    """The task rows ``ids`` that are there, by id."""
    found: dict[int, tuple[object, ...]] = {}
    unique = sorted(ids)
    for start in range(0, len(unique), _BATCH):
        batch = unique[start : start + _BATCH]
        marks = ", ".join("?" * len(batch))
        for row_id, *row in db.execute(f"SELECT id, {_COLUMNS} FROM history_rows WHERE id IN ({marks})", batch):
            found[row_id] = tuple(row)
    return found


def recent(
    db: sqlite3.Connection, signer: Signer, scope: str, limit: int | None, legacy: bool = False
) -> tuple[list[RunRecord], int]:
    """The newest ``limit`` runs of ``scope`` (all when ``None``), newest first, and how many were forged.

    ``legacy``: every run of a format-3 or 4 cache read as it is.
    """
    where, args = ("", ()) if legacy else ("WHERE scope = ?", (scope,))
    query = f"SELECT id FROM runs {where} ORDER BY id DESC" + (" LIMIT ?" if limit else "")
    found, forged = [], 0
    for (run,) in db.execute(query, (*args, int(limit)) if limit else args).fetchall():
        try:
            record_ = read(db, signer, run, legacy=legacy)
        except ForgedRun:
            forged += 1
            continue
        if record_ is not None:
            found.append(record_)
    return found, forged


def before(
    db: sqlite3.Connection, signer: Signer, scope: str, run: int, limit: int, legacy: bool = False
) -> tuple[list[RunRecord], int | None]:
    """Up to ``limit`` runs of ``scope`` older than run ``run``, newest first, verified; read in one batch.

    The list stops at the first run whose signature does not verify, whose id comes second (``None``
    when every run read verified). Fewer than ``limit`` runs and no forged one: there are no more.
    """
    column, where, args = ("NULL", "", ()) if legacy else ("scope", "scope = ? AND", (scope,))
    heads = db.execute(
        f"SELECT id, started, finished, rows, signature, {column} FROM runs WHERE {where} id < ? "
        "ORDER BY id DESC LIMIT ?",
        (*args, run, limit),
    ).fetchall()
    found = _verified(db, signer, heads)
    return found, (int(heads[len(found)][0]) if len(found) < len(heads) else None)


def trim(db: sqlite3.Connection, keep: int = KEEP_RUNS) -> int:
    """In each scope, drop runs older than its newest ``keep``; then, if any went, task rows no run names.
    How many runs went (the sweep reads every run: nothing to sweep when none went)."""
    gone = 0
    for (scope,) in db.execute("SELECT DISTINCT scope FROM runs").fetchall():
        cutoff = db.execute(
            "SELECT id FROM runs WHERE scope = ? ORDER BY id DESC LIMIT 1 OFFSET ?", (scope, keep)
        ).fetchone()
        if cutoff:
            gone += db.execute("DELETE FROM runs WHERE scope = ? AND id <= ?", (scope, cutoff[0])).rowcount
    if gone:
        sweep(db)
    return int(gone)


#: The task row ids some run names; a run whose list is not JSON names none (it cannot be read anyway), and
#: only integers count (a null in the list would make ``NOT IN`` unknown for every row, and keep them all).
_NAMED = (
    "SELECT j.value FROM runs, json_each(CASE WHEN json_valid(runs.rows) THEN runs.rows ELSE '[]' END) AS j "
    "WHERE j.type = 'integer'"
)


def sweep(db: sqlite3.Connection) -> None:
    """Delete task rows that no run names any longer.

    One statement where SQLite has its JSON functions (3.38 and later, or
    built with them): the walk over every run's list then runs in SQLite's
    own code, which lets the kernel's other threads have the interpreter.
    A task row is kept if any run names it, so the two ways keep the same
    rows for every run dagnb wrote.
    """
    try:
        db.execute(f"DELETE FROM history_rows WHERE id NOT IN ({_NAMED})")
    except sqlite3.OperationalError as error:
        if "json" not in str(error):
            raise  # a locked or failing database: the caller's transaction says so
        _sweep_walking(db)


def _sweep_walking(db: sqlite3.Connection) -> None:
    """:func:`sweep` in Python, for an SQLite without JSON functions."""
    named: set[int] = set()
    for (ids_text,) in db.execute("SELECT rows FROM runs"):
        try:
            named.update(int(i) for i in json.loads(ids_text))
        except (ValueError, TypeError):
            continue  # a damaged run: its rows go (it cannot be read anyway)
    stale = [row_id for (row_id,) in db.execute("SELECT id FROM history_rows") if row_id not in named]
    db.executemany("DELETE FROM history_rows WHERE id = ?", [(i,) for i in stale])


def forget_task(db: sqlite3.Connection, signer: Signer, task: str) -> None:
    """Take ``task`` out of every run (each re-signed after its signature is checked; forged runs go)."""
    mine = {row_id for (row_id,) in db.execute("SELECT id FROM history_rows WHERE task = ?", (task,))}
    if not mine:
        return
    for run, ids_text in db.execute("SELECT id, rows FROM runs").fetchall():
        try:
            ids = [int(i) for i in json.loads(ids_text)]
        except (ValueError, TypeError):
            ids = []
        if not mine & set(ids):
            continue
        try:
            kept = read(db, signer, run)
        except ForgedRun:
            kept = None
        if kept is None:
            db.execute("DELETE FROM runs WHERE id = ?", (run,))
            continue
        rest = [(row_id, t) for row_id, t in zip(ids, kept.tasks) if t.task != task]
        fields = _fields(run, kept.scope, kept.started, kept.finished, [t.stored() for _, t in rest])
        db.execute(
            "UPDATE runs SET rows = ?, signature = ? WHERE id = ?",
            (json.dumps([row_id for row_id, _ in rest]), signer.sign(fields), run),
        )
    sweep(db)


def migrate_to_5(db: sqlite3.Connection, signer: Signer, scope: str) -> None:
    """Format 4 to 5: every run goes to ``scope``; one whose format-4 signature holds is signed anew with it.

    A run whose signature fails stays as it was (never used, and removed by
    ``verify``): dagnb signs only what it has just verified.
    """
    if "scope" not in {row[1] for row in db.execute("PRAGMA table_info(runs)")}:
        db.execute("ALTER TABLE runs ADD COLUMN scope TEXT NOT NULL DEFAULT ''")
    for run, started, finished, ids_text, signature in db.execute(
        "SELECT id, started, finished, rows, signature FROM runs"
    ).fetchall():
        try:
            rows = _rows(db, [int(i) for i in json.loads(ids_text)])
        except (ValueError, TypeError):
            rows = None
        if rows is not None and signer.check(signature, _fields(run, None, started, finished, rows)):
            signature = signer.sign(_fields(run, scope, started, finished, rows))
        db.execute("UPDATE runs SET scope = ?, signature = ? WHERE id = ?", (scope, signature, run))


def clear(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM runs")
    db.execute("DELETE FROM history_rows")


def counts(db: sqlite3.Connection) -> tuple[int, int]:
    """How many runs and distinct task rows the history holds."""
    runs = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    rows = db.execute("SELECT COUNT(*) FROM history_rows").fetchone()[0]
    return int(runs), int(rows)
