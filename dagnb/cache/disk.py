"""The disk cache: a folder's metadata store and its values, signed, composed into one :class:`Store`.

``DIR/meta.sqlite`` holds the signed rows (:mod:`dagnb.cache.metadata`), a
small value in its row; a large value is a file ``DIR/blobs/ab/abcdef….pkl``
(:mod:`dagnb.cache.values` over :mod:`dagnb.cache.blobs`); the secret that
signs them is :mod:`dagnb.cache.trust`'s; the folder's format and
permissions are :mod:`dagnb.cache.folder`'s.

Invariants:

* Everything that steers a load is signed with this user's secret or
  derived from what is: entries (with what a hit replays), values
  (every byte), heads, hit counts and the run history. dagnb signs only
  what it wrote or has just verified.
* Heads, hit counts and the run history are those of one scope (the
  notebook, or the folder, this store reads and writes for:
  :meth:`DiskStore.use_scope`); entries and values are shared by every scope.
* Each write (or, during a run, each batch of writes:
  :mod:`dagnb.cache.writer`) is one SQLite transaction, so a killed kernel
  leaves the last committed state. ``flush`` returns once every write is
  committed: a run that returned is in the cache. Its bookkeeping (hit
  counts and history row) may be handed to the store's settler thread
  (``settle_run(later=True)``: :mod:`dagnb.cache.settler`), and every read
  or write of what it writes waits for it first.
* A cache this user cannot write is used read-only: hits load, nothing is
  written (new results stay in memory, as the warning at opening says), and
  the commands that would change it say why they cannot.
* A cache opened with ``read_only=True`` creates, changes and moves
  nothing (no secret, no folder, no lock, no migration, no writer thread),
  and every write asked of it raises :class:`CacheOpenedReadOnly`. Neither
  is a cache of an older format this dagnb migrates: it is read as it is.
"""

from __future__ import annotations

import copy
import os
import pickle
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dagnb.cache.base import CacheInfo, CacheMiss, CacheOpenedReadOnly, CacheReadOnly, Store
from dagnb.cache.blobs import BlobFiles
from dagnb.cache.folder import FORMAT_VERSION, open_cache
from dagnb.cache.heads import migrate_to_5
from dagnb.cache.metadata import SCHEMA, Metadata, file_size
from dagnb.cache.records import CacheEntry
from dagnb.cache.run_book import RunBook
from dagnb.cache.settler import Settler
from dagnb.cache.trust import Signer, existing_secret, load_secret, secret_path
from dagnb.cache.upkeep import CacheUpkeep
from dagnb.cache.values import MISMATCH, ValueStore
from dagnb.cache.writer import BatchWriter, Failure, HeadWrite, Pending, PutWrite, Write
from dagnb.errors import DagnbCacheWarning
from dagnb.scope import Scope

__all__ = ["DiskStore", "FORMAT_VERSION", "MISMATCH"]


class DiskStore(RunBook, CacheUpkeep, Store):
    """The cache in a folder, shared safely by kernels, processes and (with a group) users.

    Responsibilities: compose the metadata store and the values of one
    folder; see a batch's own writes before they are committed; commit
    writes (values placed, rows signed) a transaction at a time; refuse or
    skip writes when read-only.
    """

    SCHEMA = SCHEMA

    def __init__(
        self,
        directory: str | os.PathLike[str],
        secret: bytes | None = None,
        read_only: bool = False,
        scope: Scope | None = None,
    ) -> None:
        self.root = Path(directory).expanduser().resolve()
        self.location = str(self.root)
        self._looking = read_only  # opened read-only on purpose: every write raises
        signer, trusting = self._signer(secret)  # a secret that cannot be trusted: nothing is opened
        self._pending = Pending()  # writes handed to the writer and not yet committed
        self._writer: BatchWriter | None = None  # during a batch
        self._settler = Settler(self._settle_runs)  # the end-of-run bookkeeping handed over with `later`
        fallback = Scope.of_folder().name_in(self.root)  # where a migration puts the heads and runs of the cache
        opened = open_cache(self.root, SCHEMA, read_only, lambda db: migrate_to_5(db, signer, fallback))
        self.read_only = opened.read_only
        self.meta = Metadata(opened.db, signer, self.location)
        self.meta.trusting = trusting
        self._lock = self.meta.lock
        self.use_scope(scope or Scope.of_folder())
        self.values = ValueStore(self.meta, BlobFiles(self.root, opened.modes), bool(self.read_only))
        if self.read_only and not read_only:
            warnings.warn(
                _read_only_warning(self.location, self.read_only, opened.found), DagnbCacheWarning, stacklevel=3
            )

    def use_scope(self, scope: Scope) -> None:
        """Read and write the heads, hit counts and history of ``scope`` from now on."""
        self._settled()  # the runs recorded so far go to the scope they ran in
        self.scope = scope
        self.meta.scope = scope.name_in(self.root)

    def _signer(self, secret: bytes | None) -> tuple[Signer, bool]:
        """This user's signer, and whether it can trust anything (a read-only look creates no secret)."""
        if secret is not None:
            return Signer(secret), True
        if not self._looking:
            return Signer(load_secret()), True
        found = existing_secret()
        if found is not None:
            return Signer(found), True
        warnings.warn(
            f"There is no dagnb secret at {secret_path()} yet (dagnb creates it on first use), so nothing "
            f"in the cache at {self.location} can be trusted: every task counts as not cached.",
            DagnbCacheWarning,
            stacklevel=3,
        )
        return Signer(os.urandom(32)), False  # signs nothing that is stored: every row fails its check, unwarned

    # Three names the reliability tests reach for (the connection, the value files, a value's path).
    @property
    def _db(self) -> Any:
        return self.meta.db

    @property
    def _files(self) -> BlobFiles:
        return self.values.files

    def _blob_path(self, fingerprint: str) -> Path:
        return self.values.files.path(fingerprint)

    def _writable(self, action: str) -> None:
        if self._looking:
            raise CacheOpenedReadOnly(self.location, action)
        if self.read_only:
            raise CacheReadOnly(self.location, self.read_only, action)

    # ---------------------------------------------------------- entries

    def entry(self, key: str) -> CacheEntry | None:
        with self._lock:
            pending = self._pending.entry(key)
        return pending if pending is not None else self.meta.entry(key)

    def entries(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        wanted = set(keys)
        with self._lock:
            pending = {key: entry for key in wanted if (entry := self._pending.entry(key)) is not None}
        return {**self.meta.entries(wanted - pending.keys()), **pending}

    def entries_of(self, task: str) -> list[CacheEntry]:
        with self._lock:
            pending = [copy.copy(w.entry) for w in self._pending.entries.values() if w.entry.task == task][::-1]
        keys = {e.key for e in pending}
        return pending + [e for e in self.meta.entries_of(task) if e.key not in keys]

    def head(self, task: str) -> CacheEntry | None:
        with self._lock:
            written = self._pending.heads.get((self.meta.scope, task))
        return self.entry(written.key) if written is not None else self.meta.head(task)

    def set_head(self, task: str, key: str) -> None:
        if self._looking:
            raise CacheOpenedReadOnly(self.location, "set_head")
        if not self.read_only:
            self._write(HeadWrite(task, key, self.meta.scope))

    def last_durations(self, tasks: Iterable[str]) -> dict[str, float]:
        return self.meta.last_durations(tasks)

    # ---------------------------------------------------------- values

    def has_value(self, fingerprint: str) -> bool:
        with self._lock:
            if fingerprint in self._pending.values:
                return True
        return self.meta.has_value(fingerprint)

    def put(self, entry: CacheEntry, value: Any) -> None:
        """Write the value (once per fingerprint) and the entry.

        The value is pickled here (a small one to bytes, a large one into a
        temporary file); the fsync, the rename into place and the rows are
        then done for a whole batch of writes, the rename and rows inside one
        write transaction, so of two processes storing the same fingerprint
        at once exactly one value and its own row win, and a file never sits
        beside another writer's row. Outside a batch that happens before
        ``put`` returns; in a batch, by the next :meth:`flush`.
        In a cache read-only for this user nothing is written and
        ``entry.stored`` is false; one opened read-only raises.
        """
        if self._looking:
            raise CacheOpenedReadOnly(self.location, f"put (task `{entry.task}`)")
        if self.read_only:
            entry.stored = False
            return
        entry.created = entry.created or time.time()
        self._write(self._prepare(entry, value))

    def _prepare(self, entry: CacheEntry, value: Any) -> PutWrite:
        """The write of ``entry``, with the value's bytes unless a good copy is stored already."""
        if not entry.stored or self._has_good_value(entry.fingerprint):
            return PutWrite(copy.copy(entry))
        return self.values.pickled(entry, value)

    def _has_good_value(self, fingerprint: str) -> bool:
        with self._lock:
            if fingerprint in self._pending.values:  # written by this store, in the batch not yet committed
                return True
        return self.values.has_good(fingerprint)

    def load(self, entry: CacheEntry) -> Any:
        with self._lock:
            pending = self._pending.values.get(entry.fingerprint)
        if pending is not None and pending.row is not None:
            return pickle.loads(pending.row)  # this process's own bytes, not yet committed
        if pending is not None:  # a file not yet in place: wait for it
            self.commit_pending()
        return self.values.load(entry.fingerprint)

    def load_each(self, entries: list[CacheEntry]) -> list[tuple[Any, CacheMiss | None]]:
        with self._lock:
            pending = any(e.fingerprint in self._pending.values for e in entries)
        if pending:  # this process's own writes first, as `load` sees them
            return super().load_each(entries)
        return self.values.load_each([e.fingerprint for e in entries])

    # ---------------------------------------------------------- writing

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
        """Commit the writes of the batch so far, and go on batching (its failures wait for :meth:`flush`);
        the bookkeeping handed to the settler is written first."""
        self._settled()
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
                    failures.append(_unstored(write, exc))
        try:
            with self.meta.writing() as db:
                failures += self._commit_rows(db, writes)
        finally:
            for write in writes:
                if isinstance(write, PutWrite) and write.written is not None:
                    write.written.discard()  # another writer stored this value meanwhile (or the transaction failed)
        return failures

    def _commit_rows(self, db: Any, writes: list[Write]) -> list[Failure]:
        """Inside the write transaction: values placed and their rows, entries and heads."""
        now, failures = time.time(), []
        puts = [w for w in writes if isinstance(w, PutWrite)]
        present = self.meta.present(db, {w.entry.fingerprint for w in puts})
        values, entries = [], []
        for write in puts:
            entry = write.entry
            if entry.fingerprint not in present and (write.row is not None or write.written is not None):
                try:
                    values.append(self.values.row(write, now))
                    present.add(entry.fingerprint)
                except OSError as exc:  # the rename into place failed
                    failures.append(_unstored(write, exc))
            entry.stored = entry.fingerprint in present  # pruned by another process since we looked, or stored by one
            entries.append(self.meta.entry_row(entry, now))
        heads = [self.meta.head_row(w.task, w.key, w.scope) for w in writes if isinstance(w, HeadWrite)]
        self.meta.write_rows(db, values, entries, heads)
        return failures

    def info(self) -> CacheInfo:
        self._settled()
        tasks, values, nbytes, runs, rows = self.meta.counts()
        metadata = sum(file_size(self.root / name) for name in ("meta.sqlite", "meta.sqlite-wal"))
        return CacheInfo(
            self.location, sum(tasks.values()), values, nbytes, tasks, metadata, runs, rows, self.read_only
        )

    def close(self) -> None:
        self._settled(closing=True)
        for failed, exc in self.flush():  # a run flushes and says why; this is a batch no run ended
            warnings.warn(
                f"The value of task `{failed.task}` could not be written to the cache at {self.location} "
                f"({exc}); it was not kept.",
                DagnbCacheWarning,
                stacklevel=2,
            )
        self.meta.close()


def _read_only_warning(location: str, why: str, found: int | None) -> str:
    """What a session is told when it opens a cache it cannot write (``found``: an older format, read as it is)."""
    keep = (
        "new results stay in memory for this session (recomputed after a restart). To keep them, use a cache you "
        "can write (`DAGNB_CACHE_DIR`, `%dag cache --dir PATH`)"
    )
    if found is None:
        return f"The cache at {location} is read-only for you ({why}). dagnb uses it read-only: the values it holds load as usual, and {keep}."
    return (
        f"The cache at {location} was written by an older dagnb (format {found}) and is read-only for you ({why}), "
        f"so dagnb cannot update it to format {FORMAT_VERSION}: it reads it as it is. The values it holds load as "
        f"usual; its task heads, run history and hit counts count as the working folder's, so a session that knows "
        f"its notebook sees none of them; and {keep}. Its owner updates it by opening it once with this dagnb."
    )


def _unstored(write: PutWrite, exc: BaseException) -> Failure:
    if write.written is not None:
        write.written.discard()
    write.written, write.entry.stored = None, False
    return write.entry, exc
