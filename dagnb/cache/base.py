"""The store protocol and the memory store: metadata by key, values by fingerprint.

Two stores in one (Hamilton's split): *metadata* maps a task's key to its
value's fingerprint, costs, what the task printed (captured) and the parts
its key was made of; *blobs* map a fingerprint to the value, so identical
values are stored once. Every key a task ever had is kept, so undoing an edit is a hit.

This module holds the :class:`Store` interface, with :class:`MemoryStore`;
the disk cache, :class:`~dagnb.cache.disk.DiskStore`, builds on it in
:mod:`dagnb.cache.disk`, and :mod:`dagnb.cache.store` opens either.

Invariants:

* Planning reads metadata only; a value is read when a task is loaded.
* A record read from disk is decoded by its explicit codec
  (:mod:`dagnb.cache.records`): unknown fields ignored, absent optional
  ones defaulted; a record that is not a cache entry at all is never one
  (``ValueError``).
* The run history is part of the protocol: every store implements
  ``record_run`` and ``runs`` (a store without them cannot be made), or
  says it keeps none by mixing in :class:`NoHistory`.
* Heads, hit counts and the run history are those of the store's scope
  (:attr:`Store.scope`: a notebook, or a folder); a disk cache keeps one set
  per scope, a memory store belongs to one graph and keeps one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any

from dagnb.cache.records import CacheEntry, RunRecord, TaskRecord
from dagnb.cache.results import CacheInfo, Pruned, Verified, parse_size
from dagnb.errors import DagnbError
from dagnb.scope import Scope

__all__ = [
    "CacheEntry",
    "CacheInfo",
    "CacheMiss",
    "CacheOpenedReadOnly",
    "CacheReadOnly",
    "MemoryStore",
    "NoHistory",
    "Pruned",
    "RunRecord",
    "Store",
    "TaskRecord",
    "Verified",
    "parse_size",
]


class CacheReadOnly(DagnbError):
    """A change asked of a cache this user can only read."""

    def __init__(self, location: str, why: str, action: str) -> None:
        self.location, self.why, self.action = location, why, action
        super().__init__(
            f"The cache at {location} is read-only for you ({why}), so `{action}` cannot change it. Ask its owner "
            f"to run it, or use a cache of your own (`DAGNB_CACHE_DIR`, `%dag cache --dir PATH`)."
        )


class CacheOpenedReadOnly(CacheReadOnly):
    """A change asked of a cache opened read-only on purpose (``read_only=True``, as ``dagnb check --plan`` opens it)."""

    def __init__(self, location: str, action: str) -> None:
        self.location, self.why, self.action = location, "opened read-only", action
        DagnbError.__init__(
            self,
            f"The cache at {location} was opened read-only (`read_only=True`, as `dagnb check --plan` opens it), so "
            f"`{action}` cannot change it; nothing was written. Open it without `read_only` to write to it.",
        )


class CacheMiss(Exception):
    """A value the metadata promised could not be read back; ``reason`` says why.

    ``kind`` says what became of it: ``bad`` (it failed its signature, or its
    file is gone: forgotten), ``foreign`` (another user's, failing this
    user's secret: left alone), ``unreadable`` (it could not be read right now:
    left alone), or ``missing`` (nothing was there).
    """

    def __init__(self, reason: str, kind: str = "missing") -> None:
        super().__init__(reason)
        self.reason, self.kind = reason, kind


class Store(ABC):
    """What the planner and executor need from a cache."""

    location = "memory"
    scope: Scope | None = None  # whose heads, hit counts and history (None: the working folder's)

    def use_scope(self, scope: Scope) -> None:
        """Read and write the heads, hit counts and history of ``scope`` (:mod:`dagnb.scope`) from now on."""
        self.scope = scope

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

    def load_each(self, entries: list[CacheEntry]) -> list[tuple[Any, CacheMiss | None]]:
        """For each of ``entries``: its value (as :meth:`load`, its own object each) and ``None``, or ``None`` and the
        :class:`CacheMiss` loading it raised; a disk cache reads their rows at once."""
        found: list[tuple[Any, CacheMiss | None]] = []
        for entry in entries:
            try:
                found.append((self.load(entry), None))
            except CacheMiss as miss:
                found.append((None, miss))
        return found

    def entries(self, keys: Iterable[str]) -> dict[str, CacheEntry]:
        """The metadata of each of ``keys`` that has some, by key (as :meth:`entry`; a disk cache reads them at once)."""
        found = {}
        for key in keys:
            entry = self.entry(key)
            if entry is not None:
                found[key] = entry
        return found

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

    # The run history is part of the protocol: a store keeps it (in memory, on disk) or says it keeps none by
    # mixing in NoHistory. A default here once gave every new store a history that silently forgot each run.

    @abstractmethod
    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        """Keep a finished run in the history; return its id (0 where no history is kept)."""

    def settle_run(
        self,
        hits: Iterable[tuple[str, float]],
        started: float,
        finished: float,
        tasks: list[TaskRecord],
        later: bool = False,
    ) -> None:
        """What the end of a run writes: :meth:`touch` its ``hits``, then :meth:`record_run`; its id becomes
        :attr:`last_run_id`. A disk store does both in one transaction, and with ``later`` on a thread of its
        own, waited for by whatever reads or writes them next."""
        self.touch(hits)
        self._last_run_id = self.record_run(started, finished, tasks)

    _last_run_id = 0

    @property
    def last_run_id(self) -> int:
        """The id the history gave the latest run this store settled (0: none yet, or no history)."""
        return self._last_run_id

    @abstractmethod
    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Recent runs, newest first."""

    def run(self, run_id: int) -> RunRecord | None:
        """One recorded run, by id (``None`` if there is none).

        Raises:
            ForgedRun: a disk cache holds run ``run_id``, but not signed with this user's secret.
        """
        return next((r for r in self.runs() if r.id == run_id), None)

    def runs_before(self, run_id: int) -> Iterator[RunRecord]:
        """The recorded runs older than run ``run_id``, newest first.

        Raises:
            ForgedRun: on reaching a run as :meth:`run` would refuse (the runs before it were yielded).
        """
        return (r for r in self.runs() if r.id < run_id)

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

    def begin_batch(self) -> None:
        """Let writes be committed in batches, off the caller's thread, until :meth:`flush` (a run calls both)."""

    def flush(self) -> list[tuple[CacheEntry, BaseException]]:
        """Make every write so far durable and end the batch; the entries whose value could not be written, and why.

        Those values were never stored (their entries say so where that
        could be recorded): the caller keeps them in memory.
        """
        return []

    def close(self) -> None:
        """Release files and connections."""


class NoHistory:
    """Mixed into a store that keeps no run history, on purpose: ``%dag history`` then lists no run.

    Listed before :class:`Store` in the bases, so that saying so is explicit.
    """

    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        return 0

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        return []


class MemoryStore(Store):
    """The cache of a :class:`dagnb.Graph` built without a cache directory; its run history lives as long as it does."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._values: dict[str, Any] = {}
        # each entry's own object: two tasks whose values are equal share a fingerprint, never a mutable object
        self._own: dict[str, Any] = {}
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
            self._values.setdefault(entry.fingerprint, value)
            self._own[entry.key] = value

    def discard_value(self, fingerprint: str) -> None:
        self._values.pop(fingerprint, None)  # the same object a task damaged: never hand it out again
        for entry in self._entries.values():
            if entry.fingerprint == fingerprint:
                entry.stored = False
                self._own.pop(entry.key, None)

    def load(self, entry: CacheEntry) -> Any:
        try:
            return self._own[entry.key] if entry.key in self._own else self._values[entry.fingerprint]
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
        live = {e.fingerprint for e in self._entries.values()}
        self._values = {fp: v for fp, v in self._values.items() if fp in live}
        self._own = {k: v for k, v in self._own.items() if k in self._entries}
        self._heads = {t: k for t, k in self._heads.items() if k in self._entries}
        self._hits = {k: h for k, h in self._hits.items() if k in self._entries}
        return len(gone)
