"""A run's end-of-run bookkeeping (its hit counts and its history row), written on a thread of its own.

In a kernel, every SQLite statement lets the kernel's own threads (those
that send messages to the page) run, and the cell waits for them each time:
a cell of cache hits spent about half a millisecond writing two small rows.
A :class:`Settler` takes that write off the cell: the run hands its rows over
and returns; the thread writes what has gathered a moment later, many runs
in one transaction; the store waits for it before anything reads or writes
what it writes.

Invariants:

* Items are written in the order given, in batches (one call of ``write``
  each); the thread starts with the first item and ends after :data:`IDLE`
  seconds without one (the next item starts it again).
* :meth:`Settler.wait` returns once every item given before it is written,
  with the errors the writes raised (each once). Items given in a forked
  child, or after :meth:`Settler.close`, are written at once.
* At the interpreter's exit, what is waiting is written (``atexit``).
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["DELAY", "IDLE", "Settler"]

DELAY = 0.05  # seconds the thread lets items gather before it writes them (a reader does not wait for it)
IDLE = 5.0  # seconds without an item after which the thread ends


class Settler:
    """Writes a store's bookkeeping on one thread, in batches; :meth:`wait` for it before reading what it writes.

    Responsibilities: gather items, hand them to ``write`` in order, keep
    what the last write returned (the id of the run it recorded) and what
    the writes raised.
    """

    def __init__(self, write: Callable[[list[Any]], int]) -> None:
        self._write = write
        self._items: list[Any] = []
        self._since = 0.0  # when the oldest waiting item came
        self._busy = False
        self._waited = False  # a reader waits: write now
        self._closed = False
        self._errors: list[Exception] = []
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._registered = False  # with atexit
        self._pid = os.getpid()
        self.last = 0  # what the latest write returned

    def add(self, item: Any) -> None:
        if self._pid != os.getpid() or self._closed:
            self._run([item])
            return
        with self._ready:
            if self._thread is None:
                if not self._registered:
                    atexit.register(_close_at_exit, weakref.ref(self))
                    self._registered = True
                self._thread = threading.Thread(target=self._loop, name="dagnb-cache-settler", daemon=True)
                self._thread.start()
            self._items.append(item)
            if len(self._items) == 1:  # the thread waits for a first item; later ones wait for it (no wake per item)
                self._since = time.monotonic()
                self._ready.notify_all()

    def wait(self) -> list[Exception]:
        """Once every item given so far is written: the errors the writes raised since the last wait."""
        with self._ready:
            self._waited = True
            self._ready.notify_all()
            self._ready.wait_for(lambda: not self._items and not self._busy)
            self._waited = False
            errors, self._errors = self._errors, []
        return errors

    def close(self) -> list[Exception]:
        """Wait, then end the thread."""
        errors = self.wait()
        with self._ready:
            self._closed = True
            self._ready.notify_all()
        return errors

    def _due(self) -> bool:
        return self._closed or self._waited or time.monotonic() - self._since >= DELAY

    def _loop(self) -> None:
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._items or self._closed, timeout=IDLE)
                if not self._items:
                    self._thread = None  # closed, or idle: the next item starts a thread again
                    return
                self._ready.wait_for(self._due, timeout=DELAY)
                batch, self._items = self._items, []
                self._busy = True
            try:
                self._run(batch)
            finally:
                with self._ready:
                    self._busy = False
                    self._ready.notify_all()

    def _run(self, batch: list[Any]) -> None:
        try:
            self.last = self._write(batch)
        except Exception as exc:  # noqa: BLE001 - a full disk, a lock held too long: the store says it at the next wait
            with self._ready:
                self._errors.append(exc)


def _close_at_exit(ref: weakref.ref[Settler]) -> None:
    settler = ref()
    if settler is not None:
        settler.close()
