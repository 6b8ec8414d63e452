"""The metadata store of a disk cache: rows in ``DIR/meta.sqlite``, each signed with this user's secret.

Tables: ``entries`` (key -> a task's record, :mod:`dagnb.cache.records`),
``blobs`` (fingerprint -> a value's signature, size and chunk digests, and a
small value's own bytes), shared by every scope; and per scope (a notebook,
or a folder: :mod:`dagnb.cache.heads`) ``heads`` (task -> the key it last
had), ``hits`` (key -> count and time saved) and the run history
(:mod:`dagnb.cache.runlog`, read and written through
:class:`~dagnb.cache.run_rows.RunRows`). A :class:`Metadata` reads and
writes the rows of one scope at a time (:attr:`Metadata.scope`).

Invariants:

* Every row that steers a load is signed (:class:`~dagnb.cache.trust.Signer`)
  over its content; a row that fails its signature is ignored (an entry with
  a warning, once per key), never used, and never re-signed.
* The created and last-used times and the ``task`` and ``output`` columns
  are not signed: they only order pruning and find rows, whose signed
  record is then checked (an entry found under another task's name is not
  used).
* Each write is one transaction (:meth:`Metadata.writing`, ``BEGIN
  IMMEDIATE``), under the store's lock: SQLite in WAL mode makes it atomic
  and durable across a killed process.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dagnb.cache import heads, runlog
from dagnb.cache.heads import head_fields, hit_fields
from dagnb.cache.records import CacheEntry, TaskRecord
from dagnb.cache.run_rows import RunRows
from dagnb.cache.trust import Signer
from dagnb.errors import DagnbCacheWarning

__all__ = ["SCHEMA", "Metadata"]

SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, task TEXT NOT NULL, output TEXT NOT NULL,
    record TEXT NOT NULL, signature TEXT NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS entries_task ON entries (task);
CREATE INDEX IF NOT EXISTS entries_output ON entries (output);
CREATE TABLE IF NOT EXISTS blobs (
    fingerprint TEXT PRIMARY KEY, signature TEXT NOT NULL, nbytes INTEGER NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL, digests BLOB NOT NULL DEFAULT x'', data BLOB, owner INTEGER);
"""
    + heads.SCHEMA
    + runlog.SCHEMA
)

ValueRow = tuple[Any, ...]  # signature, nbytes, digests, data (a small value's bytes, or None), owner


class Metadata(RunRows):
    """The signed rows of one cache folder.

    Responsibilities: read entries, heads, hit counts, value rows and runs,
    checking each signature; sign and write them, a transaction at a time;
    count them for ``info``. Values themselves are read and checked by
    :class:`~dagnb.cache.values.ValueStore`.
    """

    def __init__(self, db: sqlite3.Connection, signer: Signer, location: str, scope: str = "./") -> None:
        self.signer, self.location = signer, location
        self.scope = scope  # whose heads, hit counts and runs: the name its rows carry (dagnb.scope)
        self.lock = threading.RLock()
        self.warned: set[str] = set()
        self.trusting = True  # False where there is no secret to check against: nothing is trusted, nothing warned
        self._ahead: tuple[str, ValueRow] | None = None  # the value row read with the last entry (see `entry`)
        self.use(db)

    def use(self, db: sqlite3.Connection) -> None:
        """Read and write ``db`` from now on (a cache started afresh after its metadata was set aside)."""
        columns = {row[1] for row in db.execute("PRAGMA table_info(blobs)")}
        self.db = db
        self.value_columns = "data, owner" if "data" in columns else "NULL, NULL"  # format 3, read-only
        self._entry_sql = (  # an entry and the value row of its output, in one statement
            "SELECT e.record, e.signature, b.signature, b.nbytes, b.digests, "
            + ("b.data, b.owner" if "data" in columns else "NULL, NULL")
            + " FROM entries e LEFT JOIN blobs b ON b.fingerprint = e.output WHERE e.key = ?"
        )
        self.legacy = not heads.scoped(db)  # format 3 or 4, read-only: read as it is (see dagnb.cache.heads)

    def _mine(self, alias: str) -> tuple[str, tuple[str, ...]] | None:
        """The condition that picks this scope's rows of table ``alias``, or ``None`` when it has none here."""
        if not self.legacy:
            return f"{alias}.scope = ?", (self.scope,)
        return ("1", ()) if heads.is_folder(self.scope) else None  # read as it is: the rows count as a folder's

    @property
    def _signed_scope(self) -> str | None:
        """The scope this scope's rows are signed with (``None``: a format-3 or 4 cache, signed without one)."""
        return None if self.legacy else self.scope

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, under the lock (committed on leaving, rolled back on an exception)."""
        with self.lock, self.db:
            self._ahead = None  # a value row read before a write is not served after it
            self.db.execute("BEGIN IMMEDIATE")
            yield self.db

    def signed(self, signature: str | None, *fields: str) -> bool:
        return self.signer.check(signature, fields)

    # ---------------------------------------------------------- entries

    def checked_entry(self, key: str, record: str, signature: str, warn: bool = True) -> CacheEntry | None:
        """The entry, if this user's secret signed it; else ``None`` (warned once per key)."""
        if self.signed(signature, "entry", key, record):
            try:
                entry = CacheEntry.from_json(record)
            except ValueError:
                return None
            return entry if entry.key == key else None
        if warn:
            self._warn_once(
                key,
                f"A cache entry of task `{_task_of(record)}` in {self.location} is not signed with your secret, "
                f"so dagnb ignores it and recomputes (it may come from someone else's cache; see 'A cache you can "
                f"trust' in dagnb's docs/cache.md to share a cache on purpose).",
                stacklevel=4,
            )
        return None

    def _warn_once(self, what: str, message: str, stacklevel: int) -> None:
        """Warn ``message`` once per ``what`` in this store, and only where a secret is there to check against."""
        if self.trusting and what not in self.warned:
            self.warned.add(what)
            warnings.warn(message, DagnbCacheWarning, stacklevel=stacklevel + 1)

    def entry(self, key: str) -> CacheEntry | None:
        """The signed entry of ``key``; the value row of its output, read in the same statement, is kept for
        the next :meth:`value_row` ``ahead`` (a hit loads its value next: one query instead of two)."""
        with self.lock:
            rows = self.db.execute(self._entry_sql, (key,)).fetchall()
            self._ahead = None
            if not rows:
                return None
            record, signature, *value = rows[0]
            entry = self.checked_entry(key, record, signature)
            if entry is not None and value[0] is not None:
                self._ahead = (entry.fingerprint, tuple(value))
            return entry

    def entries(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        """The signed entries of ``keys`` that have one, by key: a query per 500 keys, not one per key."""
        found = {}
        for row in self._where_in("SELECT key, record, signature FROM entries WHERE key", keys):
            entry = self.checked_entry(*row)  # no comprehension: a warning names the caller's line
            if entry is not None:
                found[entry.key] = entry
        return found

    def _where_in(self, sql: str, values: Iterable[str]) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (a query ending in a column) ``IN`` the ``values``: one query per 500 of them."""
        wanted, rows = sorted(set(values)), []
        for start in range(0, len(wanted), 500):
            batch = tuple(wanted[start : start + 500])
            rows += self.query(f"{sql} IN ({', '.join('?' * len(batch))})", batch)
        return rows

    def entries_of(self, task: str) -> list[CacheEntry]:
        """The signed entries of ``task``, most recently used first."""
        rows = self.query(
            "SELECT key, record, signature FROM entries WHERE task = ? ORDER BY last_used DESC, created DESC", (task,)
        )
        return [e for e in (self.checked_entry(*row) for row in rows) if e is not None and e.task == task]

    def head(self, task: str) -> CacheEntry | None:
        mine = self._mine("h")
        if mine is None:
            return None
        rows = self.query(
            "SELECT h.key, h.signature, e.record, e.signature FROM heads h JOIN entries e ON e.key = h.key "
            f"WHERE {mine[0]} AND h.task = ?",
            (*mine[1], task),
        )
        if not rows or not self.signed(rows[0][1], *head_fields(self._signed_scope, task, rows[0][0])):
            return None
        entry = self.checked_entry(rows[0][0], *rows[0][2:])
        return entry if entry is not None and entry.task == task else None

    def last_durations(self, tasks: Iterable[str]) -> dict[str, float]:
        wanted, mine = set(tasks), self._mine("h")
        found: dict[str, float] = {}
        if mine is None:
            return found
        # unverified on purpose: a duration only orders the ready queue, it is never loaded as a value
        query = f"SELECT h.task, e.record FROM heads h JOIN entries e ON e.key = h.key WHERE {mine[0]}"
        for task, record in self.query(query, mine[1]):
            with contextlib.suppress(ValueError, TypeError):
                if task in wanted:
                    found[task] = float(CacheEntry.from_json(record).duration)
        return found

    def entry_row(self, entry: CacheEntry, now: float) -> tuple[Any, ...]:
        """The signed ``entries`` row of ``entry``, last used ``now``."""
        record = entry.to_json()
        return (
            entry.key,
            entry.task,
            entry.fingerprint,
            record,
            self.signer.sign(("entry", entry.key, record)),
            entry.created,
            now,
        )

    def head_row(self, task: str, key: str, scope: str) -> tuple[str, str, str, str]:
        return scope, task, key, self.signer.sign(head_fields(scope, task, key))

    def write_rows(
        self,
        db: sqlite3.Connection,
        values: list[ValueRow],
        entries: list[tuple[Any, ...]],
        heads: list[tuple[str, str, str, str]],
    ) -> None:
        """Inside a write transaction: value rows, entries and heads, a statement per table."""
        db.executemany("INSERT INTO blobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
        db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", entries)
        db.executemany("INSERT OR REPLACE INTO heads VALUES (?, ?, ?, ?)", heads)

    # ---------------------------------------------------------- value rows

    def has_value(self, fingerprint: str) -> bool:
        return bool(self.query("SELECT 1 FROM blobs WHERE fingerprint = ?", (fingerprint,)))

    def value_row(self, fingerprint: str, ahead: bool = False) -> ValueRow | None:
        """The value row of ``fingerprint``; ``ahead``: the one read with the last entry, if it is that one's."""
        with self.lock:
            kept, self._ahead = self._ahead, None
            if ahead and kept is not None and kept[0] == fingerprint:
                return kept[1]
            rows = self.db.execute(
                f"SELECT signature, nbytes, digests, {self.value_columns} FROM blobs WHERE fingerprint = ?",
                (fingerprint,),
            ).fetchall()
        return rows[0] if rows else None

    def value_rows_of(self, fingerprints: Iterable[str]) -> dict[str, ValueRow]:
        """The value rows of ``fingerprints`` that have one, by fingerprint (a query per 500)."""
        sql = f"SELECT fingerprint, signature, nbytes, digests, {self.value_columns} FROM blobs WHERE fingerprint"
        return {fingerprint: tuple(row) for fingerprint, *row in self._where_in(sql, fingerprints)}

    def value_rows(self) -> list[tuple[Any, ...]]:
        """Every value row, its fingerprint first (for ``verify``)."""
        return self.query(f"SELECT fingerprint, signature, nbytes, digests, {self.value_columns} FROM blobs")

    def present(self, db: sqlite3.Connection, fingerprints: set[str]) -> set[str]:
        """Inside a transaction: which of ``fingerprints`` have a value row."""
        found: set[str] = set()
        wanted = sorted(fingerprints)
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            found.update(
                fp
                for (fp,) in db.execute(
                    f"SELECT fingerprint FROM blobs WHERE fingerprint IN ({', '.join('?' * len(part))})", part
                )
            )
        return found

    def forget_value(self, fingerprint: str) -> None:
        with self.lock, self.db:
            self._ahead = None
            self.db.execute("DELETE FROM blobs WHERE fingerprint = ?", (fingerprint,))

    # ---------------------------------------------------------- hits

    def touch(self, hits: list[tuple[str, float]]) -> None:
        """Count each hit ``(key, time saved)`` and mark its entry and value used now."""
        with self.writing() as db:
            self._touch_rows(db, hits)

    def settle_run(
        self, hits: list[tuple[str, float]], started: float, finished: float, tasks: list[TaskRecord]
    ) -> int:
        """:meth:`touch` and :meth:`record_run` in one transaction (what the end of every run writes)."""
        return self.settle_runs([(hits, started, finished, tasks)])

    def settle_runs(self, runs: list[tuple[list[tuple[str, float]], float, float, list[TaskRecord]]]) -> int:
        """:meth:`settle_run` of each run, in order, in one transaction; the id of the last."""
        last = 0
        with self.writing() as db:
            for hits, started, finished, tasks in runs:
                self._touch_rows(db, hits)
                last = runlog.record(db, self.signer, self.scope, started, finished, tasks)
        return last

    def _touch_rows(self, db: sqlite3.Connection, hits: list[tuple[str, float]]) -> None:
        now = time.time()
        rows = [(now, key) for key, _ in hits]
        db.executemany("UPDATE entries SET last_used = ? WHERE key = ?", rows)
        db.executemany(
            "UPDATE blobs SET last_used = ? WHERE fingerprint = (SELECT output FROM entries WHERE key = ?)", rows
        )
        for key, saved in hits:
            count, total = self._hit_count(key)
            db.execute(
                "INSERT OR REPLACE INTO hits VALUES (?, ?, ?, ?, ?)", self._hit_row(key, count + 1, total + saved)
            )

    def _hit_row(self, key: str, count: int, saved: float) -> tuple[Any, ...]:
        return self.scope, key, count, saved, self.signer.sign(hit_fields(self.scope, key, count, saved))

    def _hit_count(self, key: str) -> tuple[int, float]:
        row = self.db.execute(
            "SELECT count, saved, signature FROM hits WHERE scope = ? AND key = ?", (self.scope, key)
        ).fetchone()
        if row and self.hit_signed(self.scope, key, *row):
            return int(row[0]), float(row[1])
        return 0, 0.0  # none yet, or not ours: counting starts again

    def hit_signed(self, scope: str | None, key: str, count: int, saved: float, signature: str) -> bool:
        return self.signed(signature, *hit_fields(scope, key, count, saved))

    def hit_totals(self) -> dict[str, tuple[int, float]]:
        totals: dict[str, tuple[int, float]] = {}
        mine = self._mine("h")
        if mine is None:
            return totals
        rows = self.query(
            "SELECT h.key, h.count, h.saved, h.signature, e.record, e.signature "
            f"FROM hits h JOIN entries e ON e.key = h.key WHERE {mine[0]}",
            mine[1],
        )
        for key, count, saved, signature, record, entry_signature in rows:
            entry = self.checked_entry(key, record, entry_signature, warn=False)
            if entry is None or not self.hit_signed(self._signed_scope, key, count, saved, signature):
                continue
            before = totals.get(entry.task, (0, 0.0))
            totals[entry.task] = (before[0] + int(count), before[1] + float(saved))
        return totals

    # ---------------------------------------------------------- totals

    def counts(self) -> tuple[dict[str, int], int, int, int, int]:
        """Keys per task, values and their bytes, runs and history rows."""
        tasks = {task: count for task, count in self.query("SELECT task, COUNT(*) FROM entries GROUP BY task")}
        values, nbytes = self.query("SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM blobs")[0]
        with self.lock:
            runs, rows = runlog.counts(self.db)
        return tasks, values, nbytes, runs, rows

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _task_of(record: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        task = json.loads(record).get("task")
        if isinstance(task, str):
            return task
    return "?"


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
