"""Typed events the executor emits, and the bus that delivers them.

The executor knows nothing of who listens: observers (views, the trace
recorder, hooks, user subscribers) subscribe here. The session's own
bookkeeping of a run (history, statuses, freshness) is not one of them: the
executor calls it explicitly before the bus delivers the event
(:meth:`dagnb.run.taskrunner.TaskRunner.record`), so no observer can stop
it. Events are frozen dataclasses named in the past tense; a subscriber
that raises is reported and unsubscribed, never allowed to break a run. A
subscriber may take only some kinds of event, and an event no subscriber
takes need not be made (``EventBus.wants``).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Event",
    "EventBus",
    "GraphChanged",
    "RunFinished",
    "RunStarted",
    "TaskFinished",
    "TaskProgress",
    "TaskStarted",
]


@dataclass(frozen=True)
class Event:
    """Base of every event; ``time`` is ``time.perf_counter()`` at emission."""

    run_id: int
    time: float


@dataclass(frozen=True)
class RunStarted(Event):
    """A run began: its tasks (upstream first) and, for each, its upstream tasks in the run."""

    tasks: tuple[str, ...] = ()
    upstream: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class TaskStarted(Event):
    """A task was handed to a backend (``backend`` names it; its lane is known when it ends, as ``worker``)."""

    task: str = ""
    reason: str = ""
    backend: str = "main"
    attempt: int = 1

    @property
    def worker(self) -> str:
        """The field's former name, kept for code that reads it: :attr:`backend`."""
        return self.backend


@dataclass(frozen=True)
class TaskProgress(Event):
    """A running map task computed more of its elements: ``done`` of the ``total`` it must compute.

    Sent at most every 0.1 s per task, from the thread where the elements
    finished (a worker thread, with the ``threads`` backend).
    """

    task: str = ""
    done: int = 0
    total: int = 0


@dataclass(frozen=True)
class TaskFinished(Event):
    """A task reached its final status in this run.

    ``status`` is one of :data:`dagnb.status.ENDED`: ``done``, ``cached``, ``failed``, ``timed-out``,
    ``interrupted``, ``skipped``, ``cancelled``; ``attempt`` counts retries (1 = first try). ``started`` (``perf_counter``) and ``duration`` span the
    work done for it in this run: the task body for ``done`` and ``failed``,
    the cache load for ``cached``. ``worker`` is the lane it ran on (a thread
    name; ``main`` is the caller's thread). ``saved`` is the compute time a
    cache load avoided; ``nbytes`` the bytes it took in the cache.
    ``in_memory`` marks a ``cached`` task whose value was already in memory
    (nothing was loaded).
    """

    task: str = ""
    status: str = ""
    duration: float = 0.0
    reason: str = ""
    worker: str = "main"
    nbytes: int = 0
    started: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    output_bytes: int = 0
    saved: float = 0.0
    in_memory: bool = False
    attempt: int = 1
    items: tuple[int, int] | None = None  # a map task: (elements computed, elements)
    error: BaseException | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RunFinished(Event):
    """A run ended, completed or not; ``report`` is its :class:`~dagnb.run.executor.RunReport` (read-only)."""

    duration: float = 0.0
    report: Any = field(default=None, compare=False)


@dataclass(frozen=True)
class GraphChanged(Event):
    """Tasks were defined, redefined or dropped (``run_id`` is 0: no run)."""

    tasks: tuple[str, ...] = ()


Subscriber = Callable[[Event], Any]
Kinds = tuple[type[Event], ...]


class EventBus:
    """Delivers each event to every subscriber that takes its kind, in subscription order."""

    def __init__(self) -> None:
        self._subscribers: tuple[tuple[Subscriber, Kinds | None], ...] = ()  # replaced, never changed
        self._routes: dict[type[Event], tuple[Subscriber, ...]] = {}  # per event class: who takes it
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber, kinds: Kinds | None = None) -> Subscriber:
        """Send ``fn`` every event, or only those of ``kinds`` (event classes, subclasses included)."""
        with self._lock:
            self._subscribers = (*self._subscribers, (fn, kinds))
            self._routes = {}
        return fn

    def unsubscribe(self, fn: Subscriber) -> None:
        with self._lock:
            for i, (subscriber, _) in enumerate(self._subscribers):
                if subscriber == fn:
                    self._subscribers = self._subscribers[:i] + self._subscribers[i + 1 :]
                    self._routes = {}
                    break

    def wants(self, kind: type[Event]) -> bool:
        """Whether any subscriber takes events of ``kind``: one that nobody takes need not be made."""
        return bool(self._route(kind))

    def emit(self, event: Event) -> None:
        for fn in self._route(type(event)):
            try:
                fn(event)
            except Exception as exc:  # a broken view must not break the run
                self.unsubscribe(fn)
                warnings.warn(f"An event subscriber raised {exc!r} and was removed.", RuntimeWarning, stacklevel=2)

    def _route(self, kind: type[Event]) -> tuple[Subscriber, ...]:
        routes = self._routes  # before the subscribers: a route made while they change is dropped with this dict
        route = routes.get(kind)
        if route is None:
            route = routes[kind] = tuple(
                fn for fn, kinds in self._subscribers if kinds is None or issubclass(kind, kinds)
            )
        return route
