"""Feeding views from run events, batched.

A :class:`LiveFeed` subscribes a view to a session's event bus through a
weak reference (a view nobody holds stops listening) and passes each event
to ``view.apply``, which only records it. Drawing happens in ``view.flush``,
at most once per ``interval`` seconds: at once when the last flush is old
enough, else by a timer, so a long task never leaves a status unshown for
longer than ``interval`` and a run of 1,000 quick tasks sends a bounded
number of updates. Run boundaries redraw at once (fully at the end); a
graph edit only marks the view for a full redraw, done by :func:`settle_all`
when the cell ends (the magics call it), so defining tasks in a loop under
a live view costs one redraw, not one per task.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from ..events import Event, EventBus, GraphChanged, RunFinished, RunStarted

__all__ = ["LiveFeed", "LiveView", "settle_all"]

Schedule = Callable[[float, Callable[[], None]], Any]


class LiveView(Protocol):
    def apply(self, event: Event) -> None: ...

    def flush(self, full: bool) -> None: ...


_feeds: weakref.WeakSet[LiveFeed] = weakref.WeakSet()


def settle_all() -> None:
    """Give every live view that saw a graph edit its full redraw."""
    for feed in list(_feeds):
        feed.settle()


def _timer(delay: float, fn: Callable[[], None]) -> threading.Timer:
    timer = threading.Timer(delay, fn)
    timer.daemon = True
    timer.start()
    return timer


class LiveFeed:
    """Delivers events to one view and decides when it redraws."""

    def __init__(
        self,
        bus: EventBus,
        view: LiveView,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        schedule: Schedule = _timer,
    ) -> None:
        self.bus, self.interval, self.clock, self.schedule = bus, interval, clock, schedule
        self._view = weakref.ref(view)
        self._lock = threading.RLock()
        self._last = float("-inf")
        self._dirty = self._pending = self._needs_full = False
        self.flushes = 0
        bus.subscribe(self)
        _feeds.add(self)

    def stop(self) -> None:
        self.bus.unsubscribe(self)
        _feeds.discard(self)

    def settle(self) -> None:
        """Redraw fully now if a graph edit asked for it."""
        with self._lock:
            view = self._view()
            if view is not None and self._needs_full:
                self._flush(view, full=True)

    def __call__(self, event: Event) -> None:
        view = self._view()
        if view is None:
            self.stop()
            return
        with self._lock:
            view.apply(event)
            if isinstance(event, GraphChanged):
                self._needs_full = True
                return
            self._dirty = True
            if isinstance(event, (RunStarted, RunFinished)):
                self._flush(view, full=isinstance(event, RunFinished))
                return
            wait = self.interval - (self.clock() - self._last)
            if wait <= 0:
                self._flush(view, full=False)
            elif not self._pending:
                self._pending = True
                self.schedule(wait, self._on_timer)

    def _on_timer(self) -> None:
        with self._lock:
            self._pending = False
            view = self._view()
            if view is not None and self._dirty:
                self._flush(view, full=False)

    def _flush(self, view: LiveView, full: bool) -> None:
        self._dirty = False
        self._needs_full = self._needs_full and not full
        self._last = self.clock()
        self.flushes += 1
        view.flush(full)
