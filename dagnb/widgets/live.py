"""Feeding views from run events, batched.

A :class:`LiveFeed` subscribes a view to a session's event bus through a
weak reference (a view nobody holds stops listening) and passes each event
to ``view.apply``, which only records it. Drawing happens in ``view.flush``,
at most once per ``interval`` seconds: at once when the last flush is old
enough, else by a timer, so a long task never leaves a status unshown for
longer than ``interval`` and a run of 1,000 quick tasks sends a bounded
number of updates. Run boundaries redraw at once (fully at the end); a
graph edit only marks the view for a full redraw, done by :func:`follow_all`
when the cell ends (the notebook glue calls it), so defining tasks in a loop
under a live view costs one redraw, not one per task. At the end of every
cell :func:`follow_all` also hands each view the plan taken after the cell,
one for all of them, so a view follows a notebook variable that changed;
a view whose statuses did not change sends nothing.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from dagnb.events import Event, EventBus, GraphChanged, RunFinished, RunStarted

if TYPE_CHECKING:
    from dagnb.overview import Planned

__all__ = ["LiveFeed", "LiveView", "follow_all", "settle_all", "watching"]

Schedule = Callable[[float, Callable[[], None]], Any]


class LiveView(Protocol):
    def apply(self, event: Event) -> None: ...

    def flush(self, full: bool, now: Planned | None = None) -> None: ...

    def follow(self, now: Planned) -> None: ...


_feeds: weakref.WeakSet[LiveFeed] = weakref.WeakSet()


def watching() -> bool:
    """Whether any live view follows a session (else the plan after a cell need not be taken)."""
    return any(feed.follows for feed in list(_feeds))


def follow_all(now: Planned) -> None:
    """After a cell: every live view redraws what ``now`` changes (fully, if it saw a graph edit)."""
    for feed in list(_feeds):
        feed.settle(now)


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

    @property
    def follows(self) -> bool:
        """Whether its view is alive and wants the plan after each cell (a progress bar does not)."""
        return self._view() is not None and hasattr(self._view(), "follow")

    def settle(self, now: Planned | None = None) -> None:
        """Redraw fully now if a graph edit asked for it; else give the view the plan ``now``."""
        with self._lock:
            view = self._view()
            if view is None:
                return
            if self._needs_full:
                self._flush(view, full=True, now=now)
            elif now is not None and hasattr(view, "follow"):
                view.follow(now)

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

    def _flush(self, view: LiveView, full: bool, now: Planned | None = None) -> None:
        self._dirty = False
        self._needs_full = self._needs_full and not full
        self._last = self.clock()
        self.flushes += 1
        if now is None:
            view.flush(full)
        else:
            view.flush(full, now)
