"""Keeping the disk cache sound and small: ``verify``, ``prune`` and ``clear``.

A mixin of :class:`~dagnb.cache.disk.DiskStore` (it works on the store's
connection, key and value files), apart so that reading and writing values
and their upkeep each fit in a module.

Invariants:

* ``verify`` removes only what fails its signature (entries, values, heads,
  hit counts, runs) and symbolic links planted in the cache (the link, never
  its target); a value another user of a shared cache wrote with another secret,
  or one that cannot be read right now, is reported and kept. Metadata SQLite
  finds damaged is set aside whole, nothing deleted.
* ``prune`` and ``clear`` re-sign only rows whose signature they checked, and
  delete value files only after the rows that named them are committed away
  (a crash leaves an orphan file, never a row without its file).
* A read-only cache is verified without removing anything; ``prune`` and
  ``clear`` refuse with :class:`~dagnb.cache.store.CacheReadOnly`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dagnb.cache import runlog
from dagnb.cache.blobs import BlobFiles
from dagnb.cache.folder import open_cache, set_aside
from dagnb.cache.runlog import ForgedRun
from dagnb.cache.store import CacheMiss, Pruned, Verified

if TYPE_CHECKING:
    from dagnb.cache.disk import DiskStore

__all__ = ["CacheUpkeep"]

_LEFTOVER_AGE = 3600.0  # seconds before a temporary or unnamed value file counts as a killed writer's


class CacheUpkeep:
    """``verify``, ``prune`` and ``clear`` of a :class:`~dagnb.cache.disk.DiskStore`."""

    def verify(self: DiskStore) -> Verified:
        self.commit_pending()
        try:
            damage = str(self._query("PRAGMA quick_check")[0][0])
        except sqlite3.DatabaseError as exc:  # too damaged even to be checked
            damage = str(exc)
        if damage != "ok":
            return self._set_aside_damaged(damage)
        links = self._files.planted_links(remove=not self.read_only)
        rows = self._query("SELECT key, record, signature FROM entries")
        bad_entries = [key for key, record, signature in rows if not self._signed(signature, "entry", key, record)]
        values = len(self._query("SELECT 1 FROM blobs"))
        bad, kept, unreadable = self._verify_values()
        forged = self._forged_runs()
        if not self.read_only:
            with self._lock, self._db:
                self._db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in bad_entries])
                self._drop_unsigned_heads_and_hits()
                self._db.executemany("DELETE FROM runs WHERE id = ?", [(r,) for r in forged])
                runlog.sweep(self._db)
            self._sweep()
        return Verified(len(rows), values, bad_entries, bad, kept, unreadable, links, len(forged),
                        read_only=bool(self.read_only))

    def _verify_values(self: DiskStore) -> tuple[list[str], list[str], list[str]]:
        bad, kept, unreadable = [], [], []
        for fingerprint, *row in self._query(f"SELECT fingerprint, signature, nbytes, digests, {self._value_columns} "
                                             f"FROM blobs"):
            try:
                self._check_whole(fingerprint, *row)
            except CacheMiss as miss:
                if miss.kind == "unreadable":  # the error itself, for the report
                    unreadable.append(miss.reason.rsplit("(", 1)[-1].rstrip(")"))
                else:
                    (kept if miss.kind == "foreign" else bad).append(fingerprint)
        return bad, kept, unreadable

    def _forged_runs(self: DiskStore) -> list[int]:
        forged = []
        for (run,) in self._query("SELECT id FROM runs"):
            try:
                self.run(run)
            except ForgedRun:
                forged.append(run)
        return forged

    def _drop_unsigned_heads_and_hits(self: DiskStore) -> None:
        heads = self._db.execute("SELECT task, key, signature FROM heads").fetchall()
        self._db.executemany("DELETE FROM heads WHERE task = ?",
                             [(t,) for t, k, s in heads if not self._signed(s, "head", t, k)])
        self._db.execute("DELETE FROM heads WHERE key NOT IN (SELECT key FROM entries)")
        hits = self._db.execute("SELECT key, count, saved, signature FROM hits").fetchall()
        self._db.executemany("DELETE FROM hits WHERE key = ?", [
            (k,) for k, c, v, s in hits if not self._signed(s, "hits", k, str(c), repr(float(v)))])

    def _set_aside_damaged(self: DiskStore, problem: str) -> Verified:
        """Metadata SQLite finds damaged: moved aside with the values (nothing deleted), the cache starts afresh."""
        if self.read_only:
            return Verified(0, 0, damaged=f"SQLite says: {problem}; the cache is read-only for you, so it was left "
                                          f"as it is")
        with self._lock:
            self._db.close()
            aside = set_aside(self.root, "damaged")
            opened = open_cache(self.root, self.SCHEMA)
            self._db, self._files = opened.db, BlobFiles(self.root, opened.modes)
        return Verified(0, 0, damaged=f"SQLite says: {problem}. It was set aside into {aside} (nothing deleted), "
                                      f"and the cache starts afresh: its tasks recompute on the next run")

    def _sweep(self: DiskStore) -> int:
        known = {fp for (fp,) in self._query("SELECT fingerprint FROM blobs")}
        return self._files.sweep(known, _LEFTOVER_AGE, time.time())

    def prune(self: DiskStore, max_bytes: int, keep: Iterable[str] = ()) -> Pruned:
        self._writable("prune")
        self.commit_pending()
        self._sweep()
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
                self._mark_unstored(fingerprint)
            runlog.trim(self._db)
        for fingerprint in evicted:  # files go after the commit: a crash leaves an orphan, never a dangling row
            with contextlib.suppress(OSError, ValueError):
                self._files.remove(fingerprint)
        return Pruned(len(evicted), freed, total - freed)

    def _mark_unstored(self: DiskStore, fingerprint: str) -> None:
        """Entries of an evicted value say so; only entries whose signature holds are re-signed."""
        rows = self._db.execute("SELECT key, record, signature FROM entries WHERE output = ?", (fingerprint,))
        for key, record, signature in rows.fetchall():
            entry = self._entry(key, record, signature, warn=False)
            if entry is None or entry.output != fingerprint:
                continue  # not ours: left exactly as it is (ignored when read)
            entry.stored = False
            text = entry.to_json()
            self._db.execute("UPDATE entries SET record = ?, signature = ? WHERE key = ?",
                             (text, self._sign("entry", key, text), key))

    def clear(self: DiskStore, task: str | None = None) -> int:
        self._writable("clear")
        self.commit_pending()
        with self._lock, self._db:
            where, args = ("WHERE task = ?", (task,)) if task is not None else ("", ())
            gone = self._db.execute(f"DELETE FROM entries {where}", args).rowcount
            self._db.execute(f"DELETE FROM heads {where}", args)
            self._db.execute("DELETE FROM hits WHERE key NOT IN (SELECT key FROM entries)")
            if task is None:
                runlog.clear(self._db)
            else:
                runlog.forget_task(self._db, self._secret, task)
            orphans = [fp for (fp,) in self._db.execute(
                "SELECT fingerprint FROM blobs WHERE fingerprint NOT IN (SELECT output FROM entries) "
                "AND fingerprint NOT IN (SELECT output FROM history_rows)")]
            self._db.executemany("DELETE FROM blobs WHERE fingerprint = ?", [(fp,) for fp in orphans])
        for fp in orphans:
            with contextlib.suppress(OSError, ValueError):  # a row naming no valid fingerprint names no file
                self._files.remove(fp)
        return gone
