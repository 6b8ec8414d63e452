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

What a task's work cost travels as one frozen :class:`Costs` record, from
the task body (inside :class:`~dagnb.run.work.Outcome`) to the event that
says it finished (:attr:`TaskFinished.costs`); it lives here, the bottom of
the engine, so that both the run room and every observer can import it. The
event's former cost fields (``duration``, ``cpu_time``, ...) still read,
from its ``costs``, and hooks still receive them by name.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagnb.status import Status

__all__ = [
    "COST_FIELDS",
    "Costs",
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
class Costs:
    """What one task's work in a run cost: the one record costs travel in, from the body to the run's events.

    ``started`` is ``time.perf_counter()`` in the process that did the work
    and ``duration`` its wall time; ``cpu_time`` and ``peak_memory`` (the
    rise of the resident set, in bytes) are measured around a task body;
    ``output_bytes`` is the in-memory size of the value it produced
    (:func:`~dagnb.run.costs.value_nbytes`; 0 when it produced none). A
    cache entry keeps the same numbers under its own on-disk names
    (``value_bytes``), mapped in one place (:mod:`dagnb.run.costs`).
    """

    started: float = 0.0
    duration: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    output_bytes: int = 0

    def time_only(self) -> Costs:
        """The time it took, without what it made: a task that failed or was interrupted reports no sizes."""
        return Costs(self.started, self.duration, self.cpu_time)


#: The fields of :class:`Costs`, which a :class:`TaskFinished` also answers to (and hooks receive) by name.
COST_FIELDS = ("started", "duration", "cpu_time", "peak_memory", "output_bytes")


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
    ``interrupted``, ``skipped``, ``cancelled``; ``attempt`` counts retries (1 = first try). ``costs``
    is what the work done for it in this run cost: its ``started`` (``perf_counter``) and ``duration``
    span the task body for ``done`` and ``failed``, the cache load for ``cached``; CPU time for a body
    that ran, peak memory and output bytes for one that succeeded. The event answers to each field of
    its costs by name too (``event.duration``, ``event.cpu_time``, ...). ``worker`` is the lane it ran
    on (a thread name; ``main`` is the caller's thread). ``saved`` is the compute time a cache load
    avoided; ``nbytes`` the bytes it took in the cache. ``in_memory`` marks a ``cached`` task whose
    value was already in memory (nothing was loaded).
    """

    task: str = ""
    status: Status = field(kw_only=True)  # every event names how its task ended: no default stands for one
    reason: str = ""
    worker: str = "main"
    nbytes: int = 0
    costs: Costs = Costs()
    saved: float = 0.0
    in_memory: bool = False
    attempt: int = 1
    items: tuple[int, int] | None = None  # a map task: (elements computed, elements)
    error: BaseException | None = field(default=None, compare=False)

    # The cost fields by their names before they travelled together in `costs`: read-only, for subscribers.
    @property
    def started(self) -> float:
        return self.costs.started

    @property
    def duration(self) -> float:
        return self.costs.duration

    @property
    def cpu_time(self) -> float:
        return self.costs.cpu_time

    @property
    def peak_memory(self) -> int:
        return self.costs.peak_memory

    @property
    def output_bytes(self) -> int:
        return self.costs.output_bytes


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
