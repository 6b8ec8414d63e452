"""A disk store's hit counts and run history: written at each run's end, now or on the settler's thread.

A mixin of :class:`~dagnb.cache.disk.DiskStore`, apart so that values and
their bookkeeping each fit in a module.

Invariants:

* With ``settle_run(later=True)`` a run's hit counts and history row go to
  the store's :class:`~dagnb.cache.settler.Settler`; every method here that
  reads or writes them waits for it first, and says (a
  :class:`~dagnb.errors.DagnbCacheWarning`) what it could not write.
* A cache opened read-only on purpose refuses every write; one that cannot
  be written skips them.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from dagnb.cache.base import CacheOpenedReadOnly
from dagnb.cache.metadata import Metadata
from dagnb.cache.records import RunRecord, TaskRecord
from dagnb.cache.settler import Settler
from dagnb.errors import DagnbCacheWarning

__all__ = ["RunBook"]


class RunBook:
    """Hit counts and the run history of a :class:`~dagnb.cache.disk.DiskStore`.

    Responsibilities: write a run's end (at once, or handed to the settler),
    and wait for the settler before reading or writing what it writes.
    """

    meta: Metadata
    location: str
    read_only: str | None
    _looking: bool
    _settler: Settler

    def touch(self, hits: Iterable[tuple[str, float]]) -> None:
        hits = list(hits)
        if hits and self._looking:
            raise CacheOpenedReadOnly(self.location, "touch")
        if hits and not self.read_only:
            self._settled()
            self.meta.touch(hits)

    def settle_run(
        self,
        hits: Iterable[tuple[str, float]],
        started: float,
        finished: float,
        tasks: list[TaskRecord],
        later: bool = False,
    ) -> None:
        hits = list(hits)
        if self._looking:  # refused as touch, or (with no hits) as record_run, would be
            raise CacheOpenedReadOnly(self.location, "touch" if hits else "record_run")
        if self.read_only:
            return
        if later:
            self._settler.add((hits, started, finished, tasks))
            return
        self._settled()
        self._settler.last = self.meta.settle_run(hits, started, finished, tasks)  # raises: the run says it

    @property
    def last_run_id(self) -> int:
        self._settled()
        return self._settler.last

    def _settle_runs(self, runs: list[Any]) -> int:
        """What the settler writes: runs handed over with ``later``, in one transaction."""
        return self.meta.settle_runs(runs)

    def _settled(self, closing: bool = False) -> None:
        """Once the bookkeeping handed to the settler is written; what it could not write is said here."""
        for exc in self._settler.close() if closing else self._settler.wait():
            warnings.warn(
                f"dagnb could not record a run in the cache at {self.location} ({exc}); values are unaffected.",
                DagnbCacheWarning,
                stacklevel=3,
            )

    def hit_totals(self) -> dict[str, tuple[int, float]]:
        self._settled()
        return self.meta.hit_totals()

    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        if self._looking:
            raise CacheOpenedReadOnly(self.location, "record_run")
        self._settled()
        return 0 if self.read_only else self.meta.record_run(started, finished, tasks)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        self._settled()
        return self.meta.runs(limit)

    def run(self, run_id: int) -> RunRecord | None:
        self._settled()
        return self.meta.run(run_id)

    def runs_before(self, run_id: int) -> Iterator[RunRecord]:
        self._settled()
        return self.meta.runs_before(run_id)
