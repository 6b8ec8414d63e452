"""The run history's rows of one scope, as a :class:`~dagnb.cache.metadata.Metadata` reads and writes them.

The rows and their signatures are :mod:`dagnb.cache.runlog`'s; this part of
the metadata store picks the scope's runs, reads them under the store's
lock, and warns once about runs not signed with this user's secret. A part
of :class:`~dagnb.cache.metadata.Metadata`, which sets the attributes
declared here.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from dagnb.cache import runlog
from dagnb.cache.records import RunRecord, TaskRecord

if TYPE_CHECKING:
    from dagnb.cache.trust import Signer

__all__ = ["RunRows"]


class RunRows:
    """Record a run; list, read and walk back over this scope's runs (each verified); find forged ones."""

    db: sqlite3.Connection
    signer: Signer
    scope: str
    location: str
    lock: threading.RLock
    legacy: bool

    if TYPE_CHECKING:  # the metadata store's own (Metadata)

        def writing(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...

        def _mine(self, alias: str) -> tuple[str, tuple[str, ...]] | None: ...

        def _warn_once(self, what: str, message: str, stacklevel: int) -> None: ...

    def record_run(self, started: float, finished: float, tasks: list[TaskRecord]) -> int:
        with self.writing() as db:
            return runlog.record(db, self.signer, self.scope, started, finished, tasks)

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        if self._mine("runs") is None:
            return []
        with self.lock:
            found, forged = runlog.recent(self.db, self.signer, self.scope, limit, self.legacy)
        if forged:
            self._warn_once(
                "runs",
                f"{forged} runs in the history of the cache at {self.location} are not signed with your "
                f"secret; dagnb leaves them out (`dagnb cache verify` removes them).",
                stacklevel=3,
            )
        return found

    def run(self, run_id: int) -> RunRecord | None:
        """Run ``run_id`` if it is this scope's (``None`` if it is another's, or none)."""
        if self._mine("runs") is None:
            return None
        with self.lock:
            return runlog.read(self.db, self.signer, run_id, self.scope, self.legacy)

    def runs_before(self, run_id: int) -> Iterator[RunRecord]:
        """This scope's runs older than run ``run_id``, newest first, read in batches (each verified).

        Raises:
            ForgedRun: on reaching a run whose signature does not verify (the runs before it were yielded).
        """
        if self._mine("runs") is None:
            return
        batch = 8  # a walk often ends within a few runs; a long one reads ever larger batches
        while True:
            with self.lock:
                found, forged = runlog.before(self.db, self.signer, self.scope, run_id, batch, self.legacy)
            yield from found
            if forged is not None:
                raise runlog.ForgedRun(forged)
            if len(found) < batch:
                return
            run_id, batch = found[-1].id, min(2 * batch, 512)

    def forged_runs(self) -> list[int]:
        """The runs of every scope whose signature does not verify (for ``verify``)."""
        forged = []
        for (run,) in self.query("SELECT id FROM runs"):
            try:
                with self.lock:
                    runlog.read(self.db, self.signer, run, legacy=self.legacy)
            except runlog.ForgedRun:
                forged.append(run)
        return forged
