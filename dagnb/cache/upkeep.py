"""Keeping the disk cache sound and small: ``verify``, ``prune`` and ``clear``.

A mixin of :class:`~dagnb.cache.disk.DiskStore` (it works on the store's
connection, key and value files), apart so that reading and writing values
and their upkeep each fit in a module.

Invariants:

* ``verify`` removes only what fails its signature (entries, values, heads,
  hit counts, runs) and symbolic links planted in the cache (the link, never
  its target); a value another user of a shared cache wrote with another secret,
  or one that cannot be read right now, is reported and kept. Metadata SQLite
  finds damaged is set aside whole, nothing deleted. It covers every
  scope's heads, hit counts and runs, not only the store's own.
* ``prune`` and ``clear`` re-sign only rows whose signature they checked, and
  delete value files only after the rows that named them are committed away
  (a crash leaves an orphan file, never a row without its file). Entries are
  shared, so ``clear TASK`` takes that task out of every scope (its heads and
  each scope's runs, each re-signed in its own scope).
* A read-only cache is verified without removing anything; ``prune`` and
  ``clear`` refuse with :class:`~dagnb.cache.store.CacheReadOnly`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dagnb.cache import runlog
from dagnb.cache.base import CacheMiss, Pruned, Verified
from dagnb.cache.blobs import BlobFiles
from dagnb.cache.folder import open_cache, set_aside
from dagnb.cache.heads import head_fields

if TYPE_CHECKING:
    import threading
    from pathlib import Path

    from dagnb.cache.metadata import Metadata
    from dagnb.cache.values import ValueStore

__all__ = ["CacheUpkeep"]

_LEFTOVER_AGE = 3600.0  # seconds before a temporary or unnamed value file counts as a killed writer's


class CacheUpkeep:
    """``verify``, ``prune`` and ``clear`` of a :class:`~dagnb.cache.disk.DiskStore` (over its metadata and values).

    The store it is mixed into provides what is declared here (declared, not
    imported: the store imports this module).
    """

    SCHEMA: str
    root: Path
    read_only: str | None
    meta: Metadata
    values: ValueStore
    _lock: threading.RLock

    def commit_pending(self) -> None:
        raise NotImplementedError

    def _writable(self, action: str) -> None:
        raise NotImplementedError

    def verify(self) -> Verified:
        self.commit_pending()
        meta = self.meta
        try:
            damage = str(meta.query("PRAGMA quick_check")[0][0])
        except sqlite3.DatabaseError as exc:  # too damaged even to be checked
            damage = str(exc)
        if damage != "ok":
            return self._set_aside_damaged(damage)
        # a cache opened read-only where there is no folder has no files to look at
        links = self.values.files.planted_links(remove=not self.read_only) if self.root.is_dir() else []
        rows = meta.query("SELECT key, record, signature FROM entries")
        bad_entries = [key for key, record, signature in rows if not meta.signed(signature, "entry", key, record)]
        values = len(meta.query("SELECT 1 FROM blobs"))
        bad, kept, unreadable = self._verify_values()
        forged = meta.forged_runs()
        if not self.read_only:
            with meta.lock, meta.db:
                meta.db.executemany("DELETE FROM entries WHERE key = ?", [(k,) for k in bad_entries])
                self._drop_unsigned_heads_and_hits()
                meta.db.executemany("DELETE FROM runs WHERE id = ?", [(r,) for r in forged])
                runlog.sweep(meta.db)
            self.values.sweep(_LEFTOVER_AGE)
        return Verified(
            len(rows), values, bad_entries, bad, kept, unreadable, links, len(forged), read_only=bool(self.read_only)
        )

    def _verify_values(self) -> tuple[list[str], list[str], list[str]]:
        bad: list[str] = []
        kept: list[str] = []
        unreadable: list[str] = []
        for fingerprint, *row in self.meta.value_rows():
            try:
                self.values.check_whole(fingerprint, *row)
            except CacheMiss as miss:
                if miss.kind == "unreadable":  # the error itself, for the report
                    unreadable.append(miss.reason.rsplit("(", 1)[-1].rstrip(")"))
                else:
                    (kept if miss.kind == "foreign" else bad).append(fingerprint)
        return bad, kept, unreadable

    def _drop_unsigned_heads_and_hits(self) -> None:
        """Every scope's heads and hit counts that fail their signature (a writable cache: format 5)."""
        meta, db = self.meta, self.meta.db
        heads = db.execute("SELECT scope, task, key, signature FROM heads").fetchall()
        forged = [(sc, t) for sc, t, k, s in heads if not meta.signed(s, *head_fields(sc, t, k))]
        db.executemany("DELETE FROM heads WHERE scope = ? AND task = ?", forged)
        db.execute("DELETE FROM heads WHERE key NOT IN (SELECT key FROM entries)")
        hits = db.execute("SELECT scope, key, count, saved, signature FROM hits").fetchall()
        forged = [(sc, k) for sc, k, c, v, s in hits if not meta.hit_signed(sc, k, c, v, s)]
        db.executemany("DELETE FROM hits WHERE scope = ? AND key = ?", forged)

    def _set_aside_damaged(self, problem: str) -> Verified:
        """Metadata SQLite finds damaged: moved aside with the values (nothing deleted), the cache starts afresh."""
        if self.read_only:
            return Verified(
                0, 0, damaged=f"SQLite says: {problem}; the cache is read-only for you, so it was left as it is"
            )
        with self._lock:
            self.meta.db.close()
            aside = set_aside(self.root, "damaged")
            opened = open_cache(self.root, self.SCHEMA)
            self.meta.use(opened.db)
            self.values.files = BlobFiles(self.root, opened.modes)
        return Verified(
            0,
            0,
            damaged=f"SQLite says: {problem}. It was set aside into {aside} (nothing deleted), "
            f"and the cache starts afresh: its tasks recompute on the next run",
        )

    def prune(self, max_bytes: int, keep: Iterable[str] = ()) -> Pruned:
        self._writable("prune")
        self.commit_pending()
        self.values.sweep(_LEFTOVER_AGE)
        kept = set(keep)
        blobs = self.meta.query("SELECT fingerprint, nbytes FROM blobs ORDER BY last_used, created")
        total = sum(n for _, n in blobs)
        evicted: list[str] = []
        freed = 0
        for fingerprint, nbytes in blobs:
            if total - freed <= max_bytes:
                break
            if fingerprint not in kept:
                evicted.append(fingerprint)
                freed += nbytes
        with self.meta.lock, self.meta.db:
            for fingerprint in evicted:
                self.meta.db.execute("DELETE FROM blobs WHERE fingerprint = ?", (fingerprint,))
                self._mark_unstored(fingerprint)
            runlog.trim(self.meta.db)
            runlog.sweep(self.meta.db)  # task rows no run names, whatever left them
        self.values.remove_files(evicted)  # after the commit: a crash leaves an orphan, never a dangling row
        return Pruned(len(evicted), freed, total - freed)

    def _mark_unstored(self, fingerprint: str) -> None:
        """Entries of an evicted value say so; only entries whose signature holds are re-signed."""
        db = self.meta.db
        rows = db.execute("SELECT key, record, signature FROM entries WHERE output = ?", (fingerprint,))
        for key, record, signature in rows.fetchall():
            entry = self.meta.checked_entry(key, record, signature, warn=False)
            if entry is None or entry.fingerprint != fingerprint:
                continue  # not ours: left exactly as it is (ignored when read)
            entry.stored = False
            _, _, _, text, signed, _, _ = self.meta.entry_row(entry, 0.0)
            db.execute("UPDATE entries SET record = ?, signature = ? WHERE key = ?", (text, signed, key))

    def clear(self, task: str | None = None) -> int:
        self._writable("clear")
        self.commit_pending()
        with self.meta.lock, self.meta.db as db:
            where, args = ("WHERE task = ?", (task,)) if task is not None else ("", ())
            gone = db.execute(f"DELETE FROM entries {where}", args).rowcount
            db.execute(f"DELETE FROM heads {where}", args)
            db.execute("DELETE FROM hits WHERE key NOT IN (SELECT key FROM entries)")
            if task is None:
                runlog.clear(db)
            else:
                runlog.forget_task(db, self.meta.signer, task)
            orphans = [
                fp
                for (fp,) in db.execute(
                    "SELECT fingerprint FROM blobs WHERE fingerprint NOT IN (SELECT output FROM entries) "
                    "AND fingerprint NOT IN (SELECT output FROM history_rows)"
                )
            ]
            db.executemany("DELETE FROM blobs WHERE fingerprint = ?", [(fp,) for fp in orphans])
        self.values.remove_files(orphans)
        return gone
