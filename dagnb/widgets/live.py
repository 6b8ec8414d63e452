"""Feeding views from run events, batched.

A :class:`LiveFeed` subscribes a view to a session's event bus through a
weak reference (a view nobody holds stops listening) and passes each event
to ``view.apply``, which only records it. Drawing happens in ``view.flush``,
at most once per ``interval`` seconds: at once when the last flush is old
enough, else by a timer (one thread runs every view's timers), so a long task never leaves a status unshown for
longer than ``interval`` and a run of 1,000 quick tasks sends a bounded
number of updates. A view whose ``shown`` is false has nothing on the page
yet (a cell's progress bar before it is due): it records events but is
neither drawn nor timed, so a cell of cache hits wakes no timer thread (in
a kernel, each wake-up took the interpreter from the cell: about 0.5 ms of
every cached cell). Run boundaries redraw at once (fully at the end); a
graph edit only marks the view for a full redraw, done by :func:`follow_all`
when the cell ends (the notebook glue calls it), so defining tasks in a loop
under a live view costs one redraw, not one per task. At the end of every
cell :func:`follow_all` also hands each view the plan taken after the cell,
one for all of them, so a view follows a notebook variable that changed;
a view whose statuses did not change sends nothing.
"""

from __future__ import annotations

import heapq
import itertools
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


class _Timers:
    """One thread runs every delayed redraw of every live view, in the order they fall due.

    A thread per delay (``threading.Timer``) cost a thread start, 0.1 to 0.7 ms,
    at nearly every run, cached cells included. A redraw that raises is
    reported as a thread's exception would be, and the thread goes on.
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []  # a heap: (when, order, what)
        self._order = itertools.count()
        self._changed = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None

    def __call__(self, delay: float, fn: Callable[[], None]) -> None:
        with self._changed:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), fn))
            self._changed.notify()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run_forever, name="dagnb-live-views", daemon=True)
                self._thread.start()

    def _next(self) -> Callable[[], None]:
        with self._changed:
            while True:
                wait = self._due[0][0] - time.monotonic() if self._due else None
                if wait is not None and wait <= 0:
                    return heapq.heappop(self._due)[2]
                self._changed.wait(wait)

    def _run_forever(self) -> None:
        while True:
            fn = self._next()
            try:
                fn()
            except Exception as exc:  # noqa: BLE001 - one view's redraw never stops the others'
                threading.excepthook(threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, None)))


_timer = _Timers()


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
            if not getattr(view, "shown", True):  # nothing on the page yet: no redraw, no timer
                return
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
