"""The cache: metadata by key, values by fingerprint.

Two stores in one (Hamilton's split): *metadata* maps a task's key to its
output fingerprint, costs, captured outputs and the parts its key was made
of; *blobs* map an output fingerprint to the value, so identical outputs are
stored once. Every key a task ever had is kept, so undoing an edit is a hit.

Invariants:

* Planning reads metadata only; a value is read when a task is loaded.
* A blob is written to a temporary name, fsynced and renamed into place.
  Every blob and every entry is signed with this user's cache key
  (:mod:`dagnb.trust`); the signature is verified before anything is
  unpickled, so a blob that is missing, truncated, altered or written by
  someone else is reported (:class:`DagnbCacheWarning`) and treated as a
  miss, never returned.
* Metadata lives in SQLite in WAL mode: each write is one transaction, so a
  killed kernel leaves the last committed state.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import tempfile
import threading
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import DagnbCacheWarning, DagnbError
from .trust import ChunkHasher, cache_key, file_digests, sign, verify

__all__ = [
    "CacheEntry",
    "CacheFormatError",
    "CacheInfo",
    "CacheMiss",
    "DiskStore",
    "MemoryStore",
    "Pruned",
    "RunRecord",
    "Store",
    "TaskRecord",
    "Verified",
    "open_store",
    "parse_size",
]

FORMAT_VERSION = 2  # 1: unsigned entries (read as untrusted: the cache is rebuilt); 2: signed
_MMAP_FROM = 64 * 2**20  # blobs this large load memory-mapped (copy-on-write)


@dataclass
class CacheEntry:
    """What the cache knows of one key of one task."""

    key: str
    task: str
    output: str
    parts: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    nbytes: int = 0
    stored: bool = True
    created: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    value_bytes: int = 0
    sources: dict[str, str] = field(default_factory=dict)  # helper name -> its own code digest (not keyed)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CacheEntry:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class CacheInfo:
    """Totals for ``%dag cache info``."""

    location: str
    entries: int
    blobs: int
    nbytes: int
    tasks: dict[str, int]

    def __str__(self) -> str:
        size = _human(self.nbytes)
        per_task = ", ".join(f"{t} ({n})" for t, n in sorted(self.tasks.items())) or "none"
        return (
            f"cache at {self.location}: {self.entries} keys, {self.blobs} values, {size}\n"
            f"keys per task: {per_task}"
        )


def _human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class TaskRecord:
    """One task in a recorded run."""

    task: str
    status: str
    reason: str = ""
    key: str | None = None
    output: str | None = None
    duration: float = 0.0
    worker: str = ""


@dataclass(frozen=True)
class RunRecord:
    """A run as the history keeps it; ``id`` counts runs of this cache, across sessions."""

    id: int
    started: float
    finished: float
    tasks: list[TaskRecord] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for t in self.tasks if t.status == status)


@dataclass(frozen=True)
class Verified:
    """What ``verify`` found: how many entries and values were checked, and which were bad (and removed)."""

    entries: int
    values: int
    bad_entries: list[str] = field(default_factory=list)
    bad_values: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.bad_entries or self.bad_values)

    def __str__(self) -> str:
        if self.ok:
            return f"verified {self.entries} entries and {self.values} values: all intact and signed with your key"
        return (
            f"verified {self.entries} entries and {self.values} values: removed {len(self.bad_entries)} entries "
            f"and {len(self.bad_values)} values that were altered, truncated or not signed with your key "
            f"(their tasks recompute on the next run)"
        )


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` evicted."""

    values: int
    nbytes: int
    kept_bytes: int

    def __str__(self) -> str:
        return f"evicted {self.values} values ({_human(self.nbytes)}); the cache now holds {_human(self.kept_bytes)}"


_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 10**6, "mb": 10**6, "mib": 2**20,
          "g": 10**9, "gb": 10**9, "gib": 2**30, "t": 10**12, "tb": 10**12, "tib": 2**40}


def parse_size(text: str) -> int:
    """``2GB``, ``500MiB``, ``1.5g``, ``1000`` -> bytes; ValueError with the accepted forms otherwise."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"`{text}` is not a size; write a number with an optional unit, like 500MB, 2GB or 1.5GiB")
    return int(float(match.group(1)) * _UNITS[unit])


class CacheMiss(Exception):
    """A value the metadata promised could not be read back; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Store(ABC):
    """What the planner and executor need from a cache."""

    location = "memory"

    @abstractmethod
    def entry(self, key: str) -> CacheEntry | None:
        """The metadata of ``key``, if any."""

    @abstractmethod
    def has_value(self, fingerprint: str) -> bool:
        """Whether a value with this fingerprint is stored."""

    @abstractmethod
    def put(self, entry: CacheEntry, value: Any) -> None:
        """Record ``entry`` and, when ``entry.stored``, its value (once per fingerprint).

        Raises whatever pickling raises; the entry is then recorded unstored.
        """

    @abstractmethod
    def load(self, entry: CacheEntry) -> Any:
        """The value of ``entry``, or :class:`CacheMiss`."""

    def entries_of(self, task: str) -> list[CacheEntry]:
        """Every entry of ``task``, most recently used first."""
        return []

    def last_durations(self, tasks: Iterable[str]) -> dict[str, float]:
        """How long each task took under the key it last had (tasks never run are left out)."""
        found = {}
        for task in tasks:
            entry = self.head(task)
            if entry is not None:
                found[task] = entry.duration
        return found

    @abstractmethod
    def head(self, task: str) -> CacheEntry | None:
        """The entry of the key ``task`` last had."""

    @abstractmethod
    def set_head(self, task: str, key: str) -> None:
        """Remember ``key`` as the key ``task`` last had."""

    @abstractmethod
    def info(self) -> CacheInfo:
        """Counts and sizes."""

    @abstractmethod
    def clear(self, task: str | None = None) -> int:
        """Forget one task's keys (or everything); return how many keys went."""

    def touch(self, hits: Iterable[tuple[str, float]]) -> None:
        """Record cache hits ``(key, compute time it saved)``: counted, and marked used now."""

    def verify(self) -> Verified:
        """Check every entry and value (signature, size); remove the bad ones."""
        return Verified(0, 0)

    def discard_value(self, fingerprint: str) -> None:
        """Forget a value held only in memory (a disk copy is independent, and stays)."""

    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        """Keep a finished run in the history; return its id (0 where no history is kept)."""
        return 0

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Recent runs, newest first."""
        return []

    def prune(self, max_bytes: int, keep: Iterable[str] = ()) -> Pruned:
        """Evict least-recently-used values until the rest take at most ``max_bytes``.

        Values whose fingerprint is in ``keep`` (those a live session holds)
        are never evicted. Entries of an evicted value stay, marked not
        stored: ``%dag why`` still explains them, and the task recomputes.
        """
        return Pruned(0, 0, self.info().nbytes)

    def hit_totals(self) -> dict[str, tuple[int, float]]:
        """Per task: how many times any of its keys was a cache hit, and the time that saved."""
        return {}

    def close(self) -> None:
        """Release files and connections."""


class MemoryStore(Store):
    """The cache of a :class:`dagnb.Graph` built without a cache directory."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._values: dict[str, Any] = {}
        self._heads: dict[str, str] = {}
        self._hits: dict[str, tuple[int, float]] = {}
        self._runs: list[RunRecord] = []

    def entry(self, key: str) -> CacheEntry | None:
        return self._entries.get(key)

    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        self._runs.append(RunRecord(len(self._runs) + 1, started, finished, tasks))
        return len(self._runs)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        newest = self._runs[::-1]
        return newest[:limit] if limit else newest

    def has_value(self, fingerprint: str) -> bool:
        return fingerprint in self._values

    def put(self, entry: CacheEntry, value: Any) -> None:
        self._entries[entry.key] = entry
        if entry.stored:
            self._values.setdefault(entry.output, value)

    def discard_value(self, fingerprint: str) -> None:
        self._values.pop(fingerprint, None)  # the same object a task damaged: never hand it out again
        for entry in self._entries.values():
            if entry.output == fingerprint:
                entry.stored = False

    def load(self, entry: CacheEntry) -> Any:
        try:
            return self._values[entry.output]
        except KeyError:
            raise CacheMiss("the value is not in memory") from None

    def entries_of(self, task: str) -> list[CacheEntry]:
        return [e for e in reversed(self._entries.values()) if e.task == task]

    def head(self, task: str) -> CacheEntry | None:
        key = self._heads.get(task)
        return self._entries.get(key) if key else None

    def set_head(self, task: str, key: str) -> None:
        self._heads[task] = key

    def touch(self, hits: Iterable[tuple[str, float]]) -> None:
        for key, saved in hits:
            count, total = self._hits.get(key, (0, 0.0))
            self._hits[key] = (count + 1, total + saved)

    def hit_totals(self) -> dict[str, tuple[int, float]]:
        totals: dict[str, tuple[int, float]] = {}
        for key, (count, saved) in self._hits.items():
            entry = self._entries.get(key)
            if entry is not None:
                before = totals.get(entry.task, (0, 0.0))
                totals[entry.task] = (before[0] + count, before[1] + saved)
        return totals

    def info(self) -> CacheInfo:
        tasks: dict[str, int] = {}
        for e in self._entries.values():
            tasks[e.task] = tasks.get(e.task, 0) + 1
        return CacheInfo("memory", len(self._entries), len(self._values), 0, tasks)

    def clear(self, task: str | None = None) -> int:
        gone = [k for k, e in self._entries.items() if task is None or e.task == task]
        for key in gone:
            del self._entries[key]
        live = {e.output for e in self._entries.values()}
        self._values = {fp: v for fp, v in self._values.items() if fp in live}
        self._heads = {t: k for t, k in self._heads.items() if k in self._entries}
        self._hits = {k: h for k, h in self._hits.items() if k in self._entries}
        return len(gone)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, task TEXT NOT NULL, output TEXT NOT NULL,
    record TEXT NOT NULL, signature TEXT NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS entries_task ON entries (task);
CREATE TABLE IF NOT EXISTS blobs (
    fingerprint TEXT PRIMARY KEY, signature TEXT NOT NULL, nbytes INTEGER NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS heads (task TEXT PRIMARY KEY, key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hits (key TEXT PRIMARY KEY, count INTEGER NOT NULL, saved REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, finished REAL NOT NULL);
CREATE TABLE IF NOT EXISTS run_tasks (
    run INTEGER NOT NULL, position INTEGER NOT NULL, task TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    key TEXT, output TEXT, duration REAL NOT NULL, worker TEXT NOT NULL, PRIMARY KEY (run, position));
"""


class _HashingFile:
    """A file handle that hashes what is written through it (the chunks a signature covers)."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self.hash = ChunkHasher()
        self.nbytes = 0

    def write(self, data: Any) -> int:
        self.hash.update(data)
        written = self._handle.write(data)
        self.nbytes += written
        return written

    def tell(self) -> int:
        return self._handle.tell()

    def flush(self) -> None:
        self._handle.flush()


class DiskStore(Store):
    """Metadata in ``DIR/meta.sqlite``, values in ``DIR/blobs/ab/abcdef….pkl`` (joblib)."""

    def __init__(self, directory: str | os.PathLike[str], key: bytes | None = None) -> None:
        self.root = Path(directory).expanduser().resolve()
        self.location = str(self.root)
        self._key = key if key is not None else cache_key()
        self._warned: set[str] = set()
        self._verified: set[str] = set()  # fingerprints whose existing file this store has checked
        self._lock = threading.RLock()
        found = _stored_format(self.root)  # read-only: a cache this dagnb refuses is left exactly as it was
        if found is not None and found > FORMAT_VERSION:
            raise CacheFormatError(self.location, found)
        self.root.mkdir(parents=True, exist_ok=True)
        with _file_lock(self.root / ".dagnb.lock"):  # kernels opening one cache at once agree on its format
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        found = _stored_format(self.root)
        if found is not None and found > FORMAT_VERSION:
            raise CacheFormatError(self.location, found)
        if found is not None and found < FORMAT_VERSION:
            self._set_aside(found)
        (self.root / "blobs").mkdir(exist_ok=True)
        db = sqlite3.connect(self.root / "meta.sqlite", check_same_thread=False, timeout=30)
        live = _format_of(db)  # the probe above reads only checkpointed pages: ask the live database too
        if live is not None and live > FORMAT_VERSION:
            db.close()
            raise CacheFormatError(self.location, live)
        with db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
        return db

    def _set_aside(self, found: int) -> None:
        """An older format's files move to ``old-format-N/`` (nothing is deleted); the cache starts afresh."""
        aside = self.root / f"old-format-{found}"
        number = 1
        while aside.exists():  # never over an earlier set-aside copy
            number += 1
            aside = self.root / f"old-format-{found}-{number}"
        aside.mkdir()
        for name in ("meta.sqlite", "meta.sqlite-wal", "meta.sqlite-shm", "blobs"):
            if (self.root / name).exists():
                os.replace(self.root / name, aside / name)
        warnings.warn(
            f"The cache at {self.location} was written by an older dagnb (format {found}), whose entries "
            f"are not signed, so they cannot be trusted; dagnb starts it afresh (format {FORMAT_VERSION}) "
            f"and recomputes. The old files are in {aside}; delete them when you like.",
            DagnbCacheWarning,
            stacklevel=3,
        )

    def _sign_record(self, key: str, record: str) -> str:
        return sign(self._key, ("entry", key, record))

    def _entry(self, key: str, record: str, signature: str) -> CacheEntry | None:
        """The entry, if this user's key signed it; else ``None`` (warned once per key)."""
        if verify(self._key, signature, ("entry", key, record)):
            return CacheEntry.from_json(record)
        if key not in self._warned:
            self._warned.add(key)
            task = json.loads(record).get("task", "?") if record.startswith("{") else "?"
            warnings.warn(
                f"A cache entry of task `{task}` in {self.location} is not signed with your cache key, so "
                f"dagnb ignores it and recomputes (it may come from someone else's cache; see "
                f"'A cache you can trust' in dagnb's README to share a cache on purpose).",
                DagnbCacheWarning,
                stacklevel=3,
            )
        return None

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _blob_path(self, fingerprint: str) -> Path:
        return self.root / "blobs" / fingerprint[:2] / f"{fingerprint}.pkl"

    def entry(self, key: str) -> CacheEntry | None:
        rows = self._query("SELECT record, signature FROM entries WHERE key = ?", (key,))
        return self._entry(key, *rows[0]) if rows else None

    def has_value(self, fingerprint: str) -> bool:
        return bool(self._query("SELECT 1 FROM blobs WHERE fingerprint = ?", (fingerprint,)))

    def put(self, entry: CacheEntry, value: Any) -> None:
        """Write the value (once per fingerprint) and the entry.

        The value is written to a temporary file first; the rename into place
        and the rows are then done inside one write transaction, so of two
        processes storing the same fingerprint at once exactly one file and
        its own row win, and a file never sits beside another writer's row.
        """
        now = time.time()
        entry.created = entry.created or now
        tmp = blob = None
        if entry.stored and not self._has_good_value(entry.output):
            tmp, blob = self._write_temp(entry.output, value)
            entry.nbytes = blob[1]
        try:
            with self._lock, self._db:
                self._db.execute("BEGIN IMMEDIATE")
                present = self._db.execute("SELECT 1 FROM blobs WHERE fingerprint = ?", (entry.output,)).fetchone()
                if tmp is not None and blob is not None:
                    if present:
                        tmp.unlink(missing_ok=True)  # another writer stored this value meanwhile
                    else:
                        os.replace(tmp, self._blob_path(entry.output))
                        self._db.execute("INSERT INTO blobs VALUES (?, ?, ?, ?, ?)",
                                         (entry.output, blob[0], blob[1], now, now))
                elif entry.stored and not present:  # pruned by another process since we looked
                    entry.stored = False
                record = entry.to_json()
                self._db.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (entry.key, entry.task, entry.output, record, self._sign_record(entry.key, record), entry.created,
                     now),
                )
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    def _has_good_value(self, fingerprint: str) -> bool:
        """A stored value for ``fingerprint`` that this user's key signed (its file checked once per store)."""
        rows = self._query("SELECT signature, nbytes FROM blobs WHERE fingerprint = ?", (fingerprint,))
        if not rows:  # asked every time: a prune or clear (here or in another process) may have removed it
            self._verified.discard(fingerprint)
            return False
        if fingerprint in self._verified:
            return True
        try:
            self._check_blob(fingerprint, *rows[0])  # forgets a bad one, so it is written again
        except CacheMiss:
            return False
        self._verified.add(fingerprint)
        return True

    def _write_temp(self, fingerprint: str, value: Any) -> tuple[Path, tuple[str, int]]:
        """The value pickled into a fsynced temporary file beside its final place, and its signature."""
        import joblib

        final = self._blob_path(fingerprint)
        final.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-", suffix=".pkl")
        try:
            with os.fdopen(fd, "wb") as handle:
                writer = _HashingFile(handle)
                joblib.dump(value, writer)  # type: ignore[arg-type]
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        signature = sign(self._key, _blob_fields(fingerprint, writer.nbytes), writer.hash.finish())
        return Path(tmp), (signature, writer.nbytes)

    def load(self, entry: CacheEntry) -> Any:
        import joblib

        rows = self._query("SELECT signature, nbytes FROM blobs WHERE fingerprint = ?", (entry.output,))
        if not rows:
            raise CacheMiss("its value is not in the cache")
        data = self._check_blob(entry.output, *rows[0])
        try:
            if data is not None:
                return joblib.load(io.BytesIO(data))
            return joblib.load(self._blob_path(entry.output), mmap_mode="c")
        except Exception as exc:  # signed by us, and still unreadable: a bug or a library change
            raise CacheMiss(f"its value cannot be unpickled ({type(exc).__name__}: {exc})") from None

    def _check_blob(self, fingerprint: str, signature: str, nbytes: int) -> bytes | None:
        """Verify a value file against its signature before anything unpickles it.

        Returns its bytes, or ``None`` for a large file (memory-mapped by the caller).
        """
        path = self._blob_path(fingerprint)
        fields = _blob_fields(fingerprint, nbytes)
        try:
            data = path.read_bytes() if nbytes < _MMAP_FROM else None
            if data is not None:
                good = len(data) == nbytes and verify(self._key, signature, fields, data)
            else:
                good = path.stat().st_size == nbytes and sign(self._key, fields, file_digests(path)) == signature
        except OSError as exc:
            self._forget_blob(fingerprint)
            raise CacheMiss(f"its value file cannot be read ({exc.strerror})") from None
        if not good:
            self._forget_blob(fingerprint)
            raise CacheMiss(
                "its value file does not match its signature (it was altered or truncated, or written "
                "with another cache key)"
            )
        return data

    def _forget_blob(self, fingerprint: str) -> None:
        with self._lock, self._db:
            self._db.execute("DELETE FROM blobs WHERE fingerprint = ?", (fingerprint,))
        self._blob_path(fingerprint).unlink(missing_ok=True)

    def last_durations(self, tasks: Iterable[str]) -> dict[str, float]:
        wanted = set(tasks)
        # unverified on purpose: a duration only orders the ready queue, it is never loaded as a value
        rows = self._query("SELECT h.task, e.record FROM heads h JOIN entries e ON e.key = h.key")
        return {task: CacheEntry.from_json(record).duration for task, record in rows if task in wanted}

    def entries_of(self, task: str) -> list[CacheEntry]:
        rows = self._query(
            "SELECT key, record, signature FROM entries WHERE task = ? ORDER BY last_used DESC, created DESC", (task,)
        )
        return [e for e in (self._entry(*row) for row in rows) if e is not None]

    def head(self, task: str) -> CacheEntry | None:
        rows = self._query(
            "SELECT e.key, e.record, e.signature FROM heads h JOIN entries e ON e.key = h.key WHERE h.task = ?", (task,)
        )
        return self._entry(*rows[0]) if rows else None

    def set_head(self, task: str, key: str) -> None:
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO heads VALUES (?, ?)", (task, key))

    def touch(self, hits: Iterable[tuple[str, float]]) -> None:
        now = time.time()
        hits = list(hits)
        if not hits:
            return
        rows = [(now, key) for key, _ in hits]
        with self._lock, self._db:
            self._db.executemany("UPDATE entries SET last_used = ? WHERE key = ?", rows)
            self._db.executemany(
                "UPDATE blobs SET last_used = ? WHERE fingerprint = "
                "(SELECT output FROM entries WHERE key = ?)",
                rows,
            )
            self._db.executemany(
                "INSERT INTO hits VALUES (?, 1, ?) "
                "ON CONFLICT(key) DO UPDATE SET count = count + 1, saved = saved + excluded.saved",
                hits,
            )

    def verify(self) -> Verified:
        bad_entries = [
            key for key, record, signature in self._query("SELECT key, record, signature FROM entries")
            if not verify(self._key, signature, ("entry", key, record))
        ]
        bad_values = []
        blobs = self._query("SELECT fingerprint, signature, nbytes FROM blobs")
        for fingerprint, signature, nbytes in blobs:
            try:
                self._check_blob(fingerprint, signature, nbytes)  # forgets a bad one
            except CacheMiss:
                bad_values.append(fingerprint)
        with self._lock, self._db:
            self._db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in bad_entries])
            self._db.execute("DELETE FROM heads WHERE key NOT IN (SELECT key FROM entries)")
        self._remove_leftovers()
        return Verified(len(self._query("SELECT key FROM entries")) + len(bad_entries), len(blobs), bad_entries, bad_values)

    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        with self._lock, self._db:
            run = self._db.execute("INSERT INTO runs (started, finished) VALUES (?, ?)", (started, finished)).lastrowid
            self._db.executemany(
                "INSERT INTO run_tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(run, i, t.task, t.status, t.reason, t.key, t.output, t.duration, t.worker) for i, t in enumerate(tasks)],
            )
        return int(run or 0)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        heads = self._query("SELECT id, started, finished FROM runs ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else ""))
        found = []
        for run, started, finished in heads:
            rows = self._query(
                "SELECT task, status, reason, key, output, duration, worker FROM run_tasks WHERE run = ? ORDER BY position",
                (run,),
            )
            found.append(RunRecord(run, started, finished, [TaskRecord(*row) for row in rows]))
        return found

    def _remove_leftovers(self, older_than: float = 3600.0) -> int:
        """Delete temporary files of killed writers and value files no row names (an hour old at least)."""
        known = {fp for (fp,) in self._query("SELECT fingerprint FROM blobs")}
        cutoff, removed = time.time() - older_than, 0
        for path in (self.root / "blobs").glob("*/*"):
            stray = path.name.startswith(".tmp-") or (path.suffix == ".pkl" and path.stem not in known)
            try:
                if stray and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue  # another process removed or is replacing it
        return removed

    def prune(self, max_bytes: int, keep: Iterable[str] = ()) -> Pruned:
        self._remove_leftovers()
        kept = set(keep)
        blobs = self._query("SELECT fingerprint, nbytes FROM blobs ORDER BY last_used, created")
        total = sum(n for _, n in blobs)
        evicted: list[str] = []
        freed = 0
        for fingerprint, nbytes in blobs:
            if total - freed <= max_bytes:
                break
            if fingerprint not in kept:
                evicted.append(fingerprint)
                freed += nbytes
        with self._lock, self._db:
            for fingerprint in evicted:
                self._db.execute("DELETE FROM blobs WHERE fingerprint = ?", (fingerprint,))
                rows = self._db.execute("SELECT key, record FROM entries WHERE output = ?", (fingerprint,)).fetchall()
                for key, record in rows:
                    entry = CacheEntry.from_json(record)
                    entry.stored = False
                    text = entry.to_json()
                    self._db.execute("UPDATE entries SET record = ?, signature = ? WHERE key = ?",
                                     (text, self._sign_record(key, text), key))
        for fingerprint in evicted:  # files go after the commit: a crash leaves an orphan, never a dangling row
            self._blob_path(fingerprint).unlink(missing_ok=True)
        return Pruned(len(evicted), freed, total - freed)

    def hit_totals(self) -> dict[str, tuple[int, float]]:
        rows = self._query(
            "SELECT e.task, SUM(h.count), SUM(h.saved) FROM hits h JOIN entries e ON e.key = h.key GROUP BY e.task"
        )
        return {task: (int(count), float(saved)) for task, count, saved in rows}

    def info(self) -> CacheInfo:
        entries = self._query("SELECT task, COUNT(*) FROM entries GROUP BY task")
        blobs = self._query("SELECT COUNT(*), COALESCE(SUM(nbytes), 0) FROM blobs")[0]
        tasks = {task: count for task, count in entries}
        return CacheInfo(self.location, sum(tasks.values()), blobs[0], blobs[1], tasks)

    def clear(self, task: str | None = None) -> int:
        with self._lock, self._db:
            where, args = ("WHERE task = ?", (task,)) if task is not None else ("", ())
            gone = self._db.execute(f"DELETE FROM entries {where}", args).rowcount
            self._db.execute(f"DELETE FROM heads {where}", args)
            self._db.execute("DELETE FROM hits WHERE key NOT IN (SELECT key FROM entries)")
            orphans = [
                fp
                for (fp,) in self._db.execute(
                    "SELECT fingerprint FROM blobs WHERE fingerprint NOT IN (SELECT output FROM entries)"
                )
            ]
            self._db.executemany("DELETE FROM blobs WHERE fingerprint = ?", [(fp,) for fp in orphans])
        for fp in orphans:
            self._blob_path(fp).unlink(missing_ok=True)
        return gone

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _blob_fields(fingerprint: str, nbytes: int) -> tuple[str, ...]:
    return ("blob", fingerprint, str(nbytes))


def _stored_format(root: Path) -> int | None:
    """The format a cache directory records, read without changing anything (``None``: no cache yet)."""
    path = root / "meta.sqlite"
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, timeout=30)  # no -wal/-shm files
        try:
            row = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None  # no meta table yet: a cache being created
    return int(row[0]) if row else None


def _format_of(db: sqlite3.Connection) -> int | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) if row else None


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX ``flock``; elsewhere, none)."""
    try:
        import fcntl
    except ImportError:  # Windows: opening a cache at the same moment is not serialized
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class CacheFormatError(DagnbError):
    """A cache written by a newer dagnb."""

    def __init__(self, location: str, found: int) -> None:
        self.location, self.found = location, found
        super().__init__(
            f"The cache at {location} was written by a newer dagnb (cache format {found}); this dagnb "
            f"reads formats up to {FORMAT_VERSION}. Upgrade dagnb, or use another cache directory "
            f"(`DAGNB_CACHE_DIR`, `%dag cache --dir PATH`)."
        )


def open_store(directory: str | os.PathLike[str] | None) -> Store:
    """A :class:`DiskStore` at ``directory``, or a :class:`MemoryStore` for ``None``."""
    return MemoryStore() if directory is None else DiskStore(directory)
