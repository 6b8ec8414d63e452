"""The disk cache: metadata in ``DIR/meta.sqlite``; a small value in its row there, a large one in ``DIR/blobs/ab/abcdef….pkl``.

Invariants:

* Everything that steers a load is signed with this user's cache key
  (:mod:`dagnb.cache.trust`) or derived from what is: entries (with the outputs a
  hit replays), values (every byte), heads, hit counts and the run history.
  A row that fails its signature is ignored (with a warning), never used,
  and never re-signed: dagnb signs only what it wrote or has just verified.
* A value is verified and unpickled from the same private copy of its bytes
  (:mod:`dagnb.cache.blobs`); paths come only from valid fingerprints, and no
  symbolic link in the cache is followed.
* Only a value that fails its signature is removed (and, in a cache shared
  with a group, only if it is this user's file); a value that cannot be read
  right now (too many open files, a permission) is a miss and stays.
* A value whose pickle is at most :data:`~dagnb.cache.writer.ROW_LIMIT` bytes is
  kept in its ``blobs`` row (plain pickle, signed as a ``row``); a larger
  one in a file (joblib, signed as a ``blob``). Either is signed over the
  BLAKE3 digests of its bytes.
* Metadata lives in SQLite in WAL mode: each write (or, during a run, each
  batch of writes: :mod:`dagnb.cache.writer`) is one transaction, so a killed
  kernel leaves the last committed state. ``flush`` returns once every
  write is committed: a run that returned is in the cache. The run history
  is bounded (:mod:`dagnb.cache.runlog`).
* A cache this user cannot write is used read-only: hits load, nothing is
  written, and the commands that would change it say why they cannot.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import pickle
import threading
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dagnb.cache import runlog
from dagnb.cache.blobs import BlobFiles, valid_fingerprint
from dagnb.cache.folder import FORMAT_VERSION, open_cache
from dagnb.cache.valuecopy import Mismatch, Payload
from dagnb.errors import DagnbCacheWarning
from dagnb.cache.runlog import RunRecord, TaskRecord
from dagnb.cache.store import CacheEntry, CacheInfo, CacheMiss, CacheReadOnly, Store
from dagnb.cache.upkeep import CacheUpkeep
from dagnb.cache.trust import DIGEST, cache_key, hash_chunk, sign, user_name, verify
from dagnb.cache.writer import BatchWriter, Failure, HeadWrite, Pending, PutWrite, Write, small_pickle

__all__ = ["DiskStore", "FORMAT_VERSION"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, task TEXT NOT NULL, output TEXT NOT NULL,
    record TEXT NOT NULL, signature TEXT NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS entries_task ON entries (task);
CREATE INDEX IF NOT EXISTS entries_output ON entries (output);
CREATE TABLE IF NOT EXISTS blobs (
    fingerprint TEXT PRIMARY KEY, signature TEXT NOT NULL, nbytes INTEGER NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL, digests BLOB NOT NULL DEFAULT x'', data BLOB, owner INTEGER);
CREATE TABLE IF NOT EXISTS heads (task TEXT PRIMARY KEY, key TEXT NOT NULL, signature TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hits (
    key TEXT PRIMARY KEY, count INTEGER NOT NULL, saved REAL NOT NULL, signature TEXT NOT NULL);
""" + runlog.SCHEMA

MISMATCH = ("its value file does not match its signature (it was altered or truncated, or written with another "
            "cache key)")


def _blob_fields(fingerprint: str, nbytes: int, row: bool = False) -> tuple[str, ...]:
    return ("row" if row else "blob", fingerprint, str(nbytes), DIGEST)


class _RowBytes:
    """A small value's pickle, read from its row: the same bytes are checked and unpickled (a Payload's duties)."""

    def __init__(self, data: bytes, owner: int | None) -> None:
        self._data, self.owner = bytes(data), owner

    def matches(self, expected: list[bytes]) -> bool:
        return expected == [hash_chunk(self._data)]

    def load(self, expected: list[bytes]) -> Any:
        if not self.matches(expected):
            raise Mismatch("the row's bytes do not match their signed digest")
        return pickle.loads(self._data)

    def close(self) -> None:
        pass


class DiskStore(CacheUpkeep, Store):
    """The cache in a folder, shared safely by kernels, processes and (with a group) users.

    Responsibilities: sign and verify every row it writes or reads; write
    values atomically and read them back verified; keep the history bounded;
    open read-only what this user cannot write.
    """

    SCHEMA = _SCHEMA

    def __init__(self, directory: str | os.PathLike[str], key: bytes | None = None) -> None:
        self.root = Path(directory).expanduser().resolve()
        self.location = str(self.root)
        self._key = key if key is not None else cache_key()  # a key that cannot be trusted: nothing is opened
        self._warned: set[str] = set()
        self._verified: set[str] = set()  # fingerprints whose existing file this store has checked
        self._lock = threading.RLock()
        self._pending = Pending()  # writes handed to the writer and not yet committed
        self._writer: BatchWriter | None = None  # during a batch
        opened = open_cache(self.root, _SCHEMA)
        self._db, self.read_only = opened.db, opened.read_only
        self._files = BlobFiles(self.root, opened.modes)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(blobs)")}
        self._value_columns = "data, owner" if "data" in columns else "NULL, NULL"  # format 3, read-only
        if self.read_only:
            warnings.warn(
                f"The cache at {self.location} is read-only for you ({self.read_only}). dagnb uses it read-only: "
                f"the values it holds load as usual, and new results stay in memory for this session (recomputed "
                f"after a restart). To keep them, use a cache you can write (`DAGNB_CACHE_DIR`, "
                f"`%dag cache --dir PATH`).",
                DagnbCacheWarning,
                stacklevel=3,
            )

    # ---------------------------------------------------------- signing

    def _sign(self, *fields: str) -> str:
        return sign(self._key, fields)

    def _signed(self, signature: str, *fields: str) -> bool:
        return verify(self._key, signature, fields)

    def _entry(self, key: str, record: str, signature: str, warn: bool = True) -> CacheEntry | None:
        """The entry, if this user's key signed it; else ``None`` (warned once per key)."""
        if self._signed(signature, "entry", key, record):
            try:
                entry = CacheEntry.from_json(record)
            except ValueError:
                return None
            return entry if entry.key == key else None
        if warn and key not in self._warned:
            self._warned.add(key)
            warnings.warn(
                f"A cache entry of task `{_task_of(record)}` in {self.location} is not signed with your cache key, "
                f"so dagnb ignores it and recomputes (it may come from someone else's cache; see 'A cache you can "
                f"trust' in dagnb's docs/cache.md to share a cache on purpose).",
                DagnbCacheWarning,
                stacklevel=3,
            )
        return None

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _blob_path(self, fingerprint: str) -> Path:
        return self._files.path(fingerprint)

    def _writable(self, action: str) -> None:
        if self.read_only:
            raise CacheReadOnly(self.location, self.read_only, action)

    # ---------------------------------------------------------- entries

    def entry(self, key: str) -> CacheEntry | None:
        with self._lock:
            pending = self._pending.entry(key)
        if pending is not None:
            return pending
        rows = self._query("SELECT record, signature FROM entries WHERE key = ?", (key,))
        return self._entry(key, *rows[0]) if rows else None

    def entries_of(self, task: str) -> list[CacheEntry]:
        with self._lock:
            pending = [copy.copy(w.entry) for w in self._pending.entries.values() if w.entry.task == task][::-1]
        rows = self._query(
            "SELECT key, record, signature FROM entries WHERE task = ? ORDER BY last_used DESC, created DESC", (task,)
        )
        keys = {e.key for e in pending}
        found = [e for e in (self._entry(*row) for row in rows) if e is not None and e.task == task]
        return pending + [e for e in found if e.key not in keys]

    def head(self, task: str) -> CacheEntry | None:
        with self._lock:
            written = self._pending.heads.get(task)
        if written is not None:
            return self.entry(written.key)
        rows = self._query(
            "SELECT h.key, h.signature, e.record, e.signature FROM heads h JOIN entries e ON e.key = h.key "
            "WHERE h.task = ?", (task,)
        )
        if not rows or not self._signed(rows[0][1], "head", task, rows[0][0]):
            return None
        entry = self._entry(rows[0][0], *rows[0][2:])
        return entry if entry is not None and entry.task == task else None

    def set_head(self, task: str, key: str) -> None:
        if not self.read_only:
            self._write(HeadWrite(task, key))

    def last_durations(self, tasks: Iterable[str]) -> dict[str, float]:
        wanted = set(tasks)
        found = {}
        # unverified on purpose: a duration only orders the ready queue, it is never loaded as a value
        for task, record in self._query("SELECT h.task, e.record FROM heads h JOIN entries e ON e.key = h.key"):
            with contextlib.suppress(ValueError, TypeError):
                if task in wanted:
                    found[task] = float(CacheEntry.from_json(record).duration)
        return found

    # ---------------------------------------------------------- values

    def has_value(self, fingerprint: str) -> bool:
        with self._lock:
            if fingerprint in self._pending.values:
                return True
        return bool(self._query("SELECT 1 FROM blobs WHERE fingerprint = ?", (fingerprint,)))

    def put(self, entry: CacheEntry, value: Any) -> None:
        """Write the value (once per fingerprint) and the entry.

        The value is pickled here (a small one to bytes, a large one into a
        temporary file); the fsync, the rename into place and the rows are
        then done for a whole batch of writes, the rename and rows inside one
        write transaction, so of two processes storing the same fingerprint
        at once exactly one value and its own row win, and a file never sits
        beside another writer's row. Outside a batch that happens before
        ``put`` returns; in a batch, by the next :meth:`flush`.
        In a read-only cache nothing is written and ``entry.stored`` is false.
        """
        if self.read_only:
            entry.stored = False
            return
        entry.created = entry.created or time.time()
        self._write(self._prepare(entry, value))

    def _prepare(self, entry: CacheEntry, value: Any) -> PutWrite:
        """The write of ``entry``, with the value's bytes unless a good copy is stored already."""
        if not entry.stored or self._has_good_value(entry.output):
            return PutWrite(copy.copy(entry))
        data = small_pickle(value)
        if data is not None:
            entry.nbytes = len(data)
            return PutWrite(copy.copy(entry), row=data, digests=[hash_chunk(data)])
        import joblib

        written = self._files.write(entry.output, lambda handle: joblib.dump(value, handle))
        entry.nbytes = written.nbytes
        return PutWrite(copy.copy(entry), written=written)

    def _write(self, write: Write) -> None:
        """Hand ``write`` to the batch, or commit it now (raising what its value's write raised)."""
        with self._lock:
            if self._writer is not None:
                self._pending.add(write)
                self._writer.add(write)
                return
        failures = self._commit([write])
        if failures:
            raise failures[0][1]

    def begin_batch(self) -> None:
        with self._lock:
            if self._writer is None and not self.read_only:
                self._writer = BatchWriter(self._commit, self._committed)

    def flush(self) -> list[Failure]:
        with self._lock:
            writer, self._writer = self._writer, None  # writes from now on are committed by their caller
        return writer.close() if writer is not None else []

    def commit_pending(self) -> None:
        """Commit the writes of the batch so far, and go on batching (its failures wait for :meth:`flush`)."""
        with self._lock:
            writer = self._writer
        if writer is not None:
            writer.flush(keep=True)

    def _committed(self, writes: list[Write]) -> None:
        with self._lock:
            self._pending.done(writes)

    def _commit(self, writes: list[Write]) -> list[Failure]:
        """Commit ``writes`` in one transaction; a value whose file cannot be synced or placed is recorded unstored.

        Returns the failed values, with their error (the others are committed).
        Raises what SQLite raises (then nothing of the batch is committed).
        """
        failures: list[Failure] = []
        for write in writes:  # before the transaction: an fsync holds no lock
            if isinstance(write, PutWrite) and write.written is not None:
                try:
                    write.written.sync()
                except OSError as exc:
                    failures.append(self._unstored(write, exc))
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                failures += self._commit_rows(writes)
        finally:
            for write in writes:
                if isinstance(write, PutWrite) and write.written is not None:
                    write.written.discard()  # another writer stored this value meanwhile (or the transaction failed)
        return failures

    def _unstored(self, write: PutWrite, exc: BaseException) -> Failure:
        if write.written is not None:
            write.written.discard()
        write.written, write.entry.stored = None, False
        return write.entry, exc

    def _commit_rows(self, writes: list[Write]) -> list[Failure]:
        """Inside the write transaction: values placed and their rows, entries and heads, a statement per table."""
        now, failures = time.time(), []
        puts = [w for w in writes if isinstance(w, PutWrite)]
        present = self._present({w.entry.output for w in puts})
        values, entries = [], []
        for write in puts:
            entry = write.entry
            if entry.output not in present and (write.row is not None or write.written is not None):
                try:
                    values.append(self._value_values(write, now))
                    present.add(entry.output)
                except OSError as exc:  # the rename into place failed
                    failures.append(self._unstored(write, exc))
            entry.stored = entry.output in present  # pruned by another process since we looked, or stored by one
            record = entry.to_json()
            entries.append((entry.key, entry.task, entry.output, record, self._sign("entry", entry.key, record),
                            entry.created, now))
        self._db.executemany("INSERT INTO blobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values)
        self._db.executemany("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)", entries)
        self._db.executemany("INSERT OR REPLACE INTO heads VALUES (?, ?, ?)", [
            (w.task, w.key, self._sign("head", w.task, w.key)) for w in writes if isinstance(w, HeadWrite)])
        return failures

    def _present(self, fingerprints: set[str]) -> set[str]:
        found, wanted = set(), sorted(fingerprints)
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            found.update(fp for (fp,) in self._db.execute(
                f"SELECT fingerprint FROM blobs WHERE fingerprint IN ({', '.join('?' * len(part))})", part))
        return found

    def _value_values(self, write: PutWrite, now: float) -> tuple[Any, ...]:
        """The ``blobs`` row of a value: its bytes in the row, or its file placed (raising what the rename raises)."""
        output = write.entry.output
        if write.row is not None:
            signature = sign(self._key, _blob_fields(output, len(write.row), row=True), write.digests)
            owner = os.geteuid() if hasattr(os, "geteuid") else None
            return output, signature, len(write.row), now, now, b"".join(write.digests), write.row, owner
        written = write.written
        assert written is not None
        written.place()
        signature = sign(self._key, _blob_fields(output, written.nbytes), written.digests)
        return output, signature, written.nbytes, now, now, b"".join(written.digests), None, None

    def _value_row(self, fingerprint: str) -> list[tuple[Any, ...]]:
        return self._query(f"SELECT signature, nbytes, digests, {self._value_columns} FROM blobs "
                           f"WHERE fingerprint = ?", (fingerprint,))

    def _has_good_value(self, fingerprint: str) -> bool:
        """A stored value for ``fingerprint`` that this user's key signed (its bytes checked once per store)."""
        with self._lock:
            if fingerprint in self._pending.values:  # written by this store, in the batch not yet committed
                return True
        rows = self._value_row(fingerprint)
        if not rows:  # asked every time: a prune or clear (here or in another process) may have removed it
            self._verified.discard(fingerprint)
            return False
        if fingerprint in self._verified:
            return True
        try:
            self._check_whole(fingerprint, *rows[0])  # forgets a forged one, so it is written again
        except CacheMiss:
            return False
        self._verified.add(fingerprint)
        return True

    def load(self, entry: CacheEntry) -> Any:
        with self._lock:
            pending = self._pending.values.get(entry.output)
        if pending is not None and pending.row is not None:
            return pickle.loads(pending.row)  # this process's own bytes, not yet committed
        if pending is not None:  # a file not yet in place: wait for it
            self.commit_pending()
        rows = self._value_row(entry.output)
        if not rows:
            raise CacheMiss("its value is not in the cache")
        expected, payload = self._read_signed(entry.output, *rows[0])
        try:
            return payload.load(expected)  # each chunk unpickled only once its digest matched
        except Mismatch:
            raise self._forget_bad(entry.output, payload.owner) from None
        except Exception as exc:  # signed by us, and still unreadable: a bug or a library change
            raise CacheMiss(f"its value cannot be unpickled ({type(exc).__name__}: {exc})") from None

    def _check_whole(self, fingerprint: str, signature: str, nbytes: int, digests: bytes,
                     data: bytes | None = None, owner: int | None = None) -> None:
        """Read and check every byte of a value (for verify, and before trusting a value already there)."""
        expected, payload = self._read_signed(fingerprint, signature, nbytes, digests, data, owner)
        try:
            if not payload.matches(expected):
                raise self._forget_bad(fingerprint, payload.owner)
        finally:
            payload.close()

    def _read_signed(self, fingerprint: str, signature: str, nbytes: int, digests: bytes,
                     data: bytes | None = None, owner: int | None = None) -> tuple[list[bytes], Payload | _RowBytes]:
        """The chunk digests the signature vouches for, and the value's bytes read once (not yet checked).

        A row whose signature fails, or a file that is not what it says, is
        forgotten (row and file); a file that cannot be read right now is a
        miss and stays.
        """
        if not valid_fingerprint(fingerprint):
            self._forget_row(fingerprint)
            raise CacheMiss("its value row names no valid fingerprint", "bad")
        expected = [bytes(digests[i : i + 32]) for i in range(0, len(digests), 32)]
        row = data is not None
        if not verify(self._key, signature, _blob_fields(fingerprint, nbytes, row), expected):
            raise self._forget_bad(fingerprint, owner if row else self._owner(fingerprint))
        if row:
            return expected, _RowBytes(data, owner)  # type: ignore[arg-type]
        try:
            return expected, self._files.read(fingerprint, nbytes)
        except FileNotFoundError:
            self._forget_row(fingerprint)  # the file is gone: only the row is left to forget
            raise CacheMiss("its value file cannot be read (No such file or directory)", "bad") from None
        except Mismatch as exc:
            raise self._forget_bad(fingerprint, exc.owner) from None
        except OSError as exc:  # too many open files, a permission, a symbolic link in the way: not corruption
            raise CacheMiss(f"its value file cannot be read ({exc.strerror or exc})", "unreadable") from None

    def _owner(self, fingerprint: str) -> int | None:
        try:
            return self._files.path(fingerprint).lstat().st_uid
        except OSError:
            return None

    def _forget_bad(self, fingerprint: str, owner: int | None) -> CacheMiss:
        """Remove a value that failed its signature, unless it is another user's (then: say whose)."""
        if self._files.modes.shared and owner is not None and owner != os.geteuid():
            return CacheMiss(f"its value file was written by {user_name(owner)} with another cache key (share "
                             f"`DAGNB_CACHE_KEY` to use each other's values)", "foreign")
        self._verified.discard(fingerprint)
        if not self.read_only:
            self._forget_row(fingerprint)
            with contextlib.suppress(OSError, ValueError):
                self._files.remove(fingerprint)
        return CacheMiss(MISMATCH, "bad")

    def _forget_row(self, fingerprint: str) -> None:
        if self.read_only:
            return
        with self._lock, self._db:
            self._db.execute("DELETE FROM blobs WHERE fingerprint = ?", (fingerprint,))

    # ---------------------------------------------------------- hits

    def touch(self, hits: Iterable[tuple[str, float]]) -> None:
        hits = list(hits)
        if not hits or self.read_only:
            return
        now = time.time()
        rows = [(now, key) for key, _ in hits]
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE entries SET last_used = ? WHERE key = ?", rows)
            self._db.executemany(
                "UPDATE blobs SET last_used = ? WHERE fingerprint = (SELECT output FROM entries WHERE key = ?)", rows
            )
            for key, saved in hits:
                count, total = self._hit_count(key)
                count, total = count + 1, total + saved
                self._db.execute("INSERT OR REPLACE INTO hits VALUES (?, ?, ?, ?)",
                                 (key, count, total, self._sign("hits", key, str(count), repr(float(total)))))

    def _hit_count(self, key: str) -> tuple[int, float]:
        row = self._db.execute("SELECT count, saved, signature FROM hits WHERE key = ?", (key,)).fetchone()
        if row and self._signed(row[2], "hits", key, str(row[0]), repr(float(row[1]))):
            return int(row[0]), float(row[1])
        return 0, 0.0  # none yet, or not ours: counting starts again

    def hit_totals(self) -> dict[str, tuple[int, float]]:
        rows = self._query("SELECT h.key, h.count, h.saved, h.signature, e.record, e.signature "
                           "FROM hits h JOIN entries e ON e.key = h.key")
        totals: dict[str, tuple[int, float]] = {}
        for key, count, saved, signature, record, entry_signature in rows:
            entry = self._entry(key, record, entry_signature, warn=False)
            if entry is None or not self._signed(signature, "hits", key, str(count), repr(float(saved))):
                continue
            before = totals.get(entry.task, (0, 0.0))
            totals[entry.task] = (before[0] + int(count), before[1] + float(saved))
        return totals

    # ---------------------------------------------------------- history

    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        if self.read_only:
            return 0
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            return runlog.record(self._db, self._key, started, finished, tasks)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        with self._lock:
            found, forged = runlog.recent(self._db, self._key, limit)
        if forged and "runs" not in self._warned:
            self._warned.add("runs")
            warnings.warn(f"{forged} runs in the history of the cache at {self.location} are not signed with your "
                          f"cache key; dagnb leaves them out (`dagnb cache verify` removes them).",
                          DagnbCacheWarning, stacklevel=3)
        return found

    def run(self, run_id: int) -> RunRecord | None:
        with self._lock:
            return runlog.read(self._db, self._key, run_id)

    def info(self) -> CacheInfo:
        entries = self._query("SELECT task, COUNT(*) FROM entries GROUP BY task")
        blobs = self._query("SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM blobs")[0]
        with self._lock:
            runs, rows = runlog.counts(self._db)
        metadata = sum(_size(self.root / name) for name in ("meta.sqlite", "meta.sqlite-wal"))
        tasks = {task: count for task, count in entries}
        return CacheInfo(self.location, sum(tasks.values()), blobs[0], blobs[1], tasks, metadata, runs, rows,
                         self.read_only)

    def close(self) -> None:
        for failed, exc in self.flush():  # a run flushes and says why; this is a batch no run ended
            warnings.warn(f"The value of task `{failed.task}` could not be written to the cache at {self.location} "
                          f"({exc}); it was not kept.", DagnbCacheWarning, stacklevel=2)
        with self._lock:
            self._db.close()


def _task_of(record: str) -> str:
    with contextlib.suppress(ValueError, AttributeError):
        task = json.loads(record).get("task")
        if isinstance(task, str):
            return task
    return "?"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0

