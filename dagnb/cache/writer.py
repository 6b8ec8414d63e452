"""Writing the disk cache in batches, on a thread of its own, while a run goes on.

A :class:`~dagnb.cache.disk.DiskStore` in a batch (``begin_batch``, which
``Graph.run`` calls) prepares each write on the caller's thread (the value
pickled, a small one to bytes, a large one into a temporary file) and hands
it to a :class:`BatchWriter`, which commits many at once.

Invariants:

* Writes are committed in the order they were given, a batch per SQLite
  write transaction, by one thread per store (or by the caller, in
  :meth:`BatchWriter.flush`). The thread starts with the first write, so a
  run that only loads values starts none. A batch is all or nothing in the metadata.
* Until its batch is committed, a write is visible to this store's own
  reads (:class:`Pending`), and to no other store or process.
* :meth:`BatchWriter.flush` returns once every write given before it is
  committed or has failed; it returns the failures, each with its entry, so
  the run can say which values stay in memory only. A failure never loses a
  value the session holds.
* A value's bytes are taken on the caller's thread, when the task finishes:
  a downstream task that changes the value in place later cannot change
  what is written under its fingerprint.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagnb.cache.base import CacheEntry
    from dagnb.cache.blobs import Written

__all__ = ["ROW_LIMIT", "BatchWriter", "Failure", "HeadWrite", "Pending", "PutWrite", "small_pickle"]

ROW_LIMIT = 64 * 1024  # a value whose pickle is at most this many bytes lives in its metadata row, not a file
_BATCH_WRITES = 512  # the writer commits once this many writes wait ...
_BATCH_BYTES = 64 * 2**20  # ... or this many bytes of value files wait for their fsync ...
_BATCH_AGE = 0.5  # ... or the oldest has waited this long (seconds)

Failure = tuple["CacheEntry", BaseException]


@dataclass
class PutWrite:
    """An entry to record and, when it brings one, its value: pickled bytes (``row``) or a file (``written``)."""

    entry: CacheEntry
    row: bytes | None = None
    digests: list[bytes] = field(default_factory=list)
    written: Written | None = None

    @property
    def nbytes(self) -> int:
        return self.written.nbytes if self.written is not None else 0


@dataclass
class HeadWrite:
    """The key a task last had, in one scope (a notebook, or a folder: :mod:`dagnb.cache.heads`)."""

    task: str
    key: str
    scope: str
    nbytes: int = 0


Write = PutWrite | HeadWrite


class _TooLarge(Exception):
    pass


class _CappedBuffer(io.RawIOBase):
    """A byte buffer that refuses to grow past :data:`ROW_LIMIT` (so a large value is not pickled twice whole)."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        self.size += size
        if self.size > ROW_LIMIT:
            raise _TooLarge
        self.parts.append(bytes(data))
        return size


def small_pickle(value: Any) -> bytes | None:
    """The pickle of ``value`` if it is at most :data:`ROW_LIMIT` bytes, else ``None`` (pickling stops early).

    Raises whatever pickling raises.
    """
    buffer = _CappedBuffer()
    try:
        pickle.Pickler(buffer, protocol=5).dump(value)
    except _TooLarge:
        return None
    return b"".join(buffer.parts)


class Pending:
    """Writes given to the writer and not yet committed, as this store's reads must see them.

    Responsibilities: answer ``entry``, ``head`` and value lookups from the
    writes not yet committed; forget a write once it is committed or failed
    (unless a later write replaced it).
    """

    def __init__(self) -> None:
        self.entries: dict[str, PutWrite] = {}
        self.heads: dict[tuple[str, str], HeadWrite] = {}  # by (scope, task)
        self.values: dict[str, PutWrite] = {}

    def add(self, write: Write) -> None:
        if isinstance(write, HeadWrite):
            self.heads[write.scope, write.task] = write
            return
        self.entries[write.entry.key] = write
        if write.row is not None or write.written is not None:
            self.values[write.entry.fingerprint] = write

    def entry(self, key: str) -> CacheEntry | None:
        write = self.entries.get(key)
        return copy.copy(write.entry) if write is not None else None

    def done(self, writes: list[Write]) -> None:
        for write in writes:
            if isinstance(write, HeadWrite):
                _drop(self.heads, (write.scope, write.task), write)
            else:
                _drop(self.entries, write.entry.key, write)
                _drop(self.values, write.entry.fingerprint, write)


def _drop(table: dict[Any, Any], name: Any, write: Write) -> None:
    if table.get(name) is write:
        del table[name]


class BatchWriter:
    """Commits a store's writes in batches on its own thread; :meth:`flush` waits for them.

    Responsibilities: gather writes; start a batch when enough wait (or the
    oldest has waited long enough); hand each batch to ``commit`` (the
    store's, which returns the writes that failed); keep those failures for
    the next :meth:`flush`.
    """

    def __init__(self, commit: Callable[[list[Write]], list[Failure]], done: Callable[[list[Write]], None]) -> None:
        self._commit, self._done = commit, done
        self._waiting: list[Write] = []
        self._bytes = 0
        self._since = 0.0
        self._busy = False
        self._closed = False
        self._failures: list[Failure] = []
        self._ready = threading.Condition()
        self._pid = os.getpid()
        self._thread: threading.Thread | None = None  # started by the first write: a run of cache hits needs none

    def add(self, write: Write) -> None:
        with self._ready:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="dagnb-cache-writer", daemon=True)
                self._thread.start()
            if not self._waiting:
                self._since = time.monotonic()
            self._waiting.append(write)
            self._bytes += write.nbytes
            if len(self._waiting) >= _BATCH_WRITES or self._bytes >= _BATCH_BYTES:
                self._ready.notify_all()

    def flush(self, keep: bool = False) -> list[Failure]:
        """Commit every write given so far (on this thread, once the batch in flight is done); the failures.

        With ``keep``, the failures are kept for the next flush instead.
        """
        with self._ready:
            self._ready.wait_for(lambda: not self._busy)
            batch = self._take()
            self._busy = bool(batch)
        if batch:
            self._run(batch)
        with self._ready:
            if keep:
                return []
            failures, self._failures = self._failures, []
            return failures

    def close(self) -> list[Failure]:
        """Flush, then end the thread."""
        failures = self.flush()
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        thread = self._thread
        if thread is not None and self._pid == os.getpid() and thread is not threading.current_thread():
            thread.join()
        return failures

    def _take(self) -> list[Write]:
        batch, self._waiting, self._bytes = self._waiting, [], 0
        return batch

    def _due(self) -> bool:
        if self._closed or self._busy or not self._waiting:
            return self._closed
        full = len(self._waiting) >= _BATCH_WRITES or self._bytes >= _BATCH_BYTES
        return full or time.monotonic() - self._since >= _BATCH_AGE

    def _loop(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(self._due, timeout=_BATCH_AGE)
                if self._closed:
                    return
                if self._busy or not self._due():
                    continue
                batch = self._take()
                self._busy = True
            self._run(batch)

    def _run(self, batch: list[Write]) -> None:
        failures: list[Failure] = []
        try:
            failures = self._commit(batch)
        except BaseException as exc:  # the whole transaction failed (a full disk, a lock held too long)
            failures = [(w.entry, exc) for w in batch if isinstance(w, PutWrite)]
            if not isinstance(exc, Exception):
                raise
        finally:
            self._done(batch)
            with self._ready:
                self._failures += failures
                self._busy = False
                self._ready.notify_all()
