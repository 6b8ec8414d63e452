"""Hooks: your code, called on the events the views and the trace use.

``dagnb.on("task_finished", fn)`` calls ``fn(**fields)`` after every task of
the session's graph finishes; a subscriber object gets each event on the
method of the same name (``run_started``, ``task_started``,
``task_progress``, ``task_finished``, ``run_finished``, ``graph_changed``). Fields are passed
by keyword, so a hook that ends with ``**_`` keeps working when an event
gains a field. A hook that raises is removed, with a warning; it never
breaks a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagnb.errors import CommandError, close_matches
from dagnb.events import (
    COST_FIELDS,
    Costs,
    Event,
    GraphChanged,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskProgress,
    TaskStarted,
)

if TYPE_CHECKING:
    from dagnb.api import Graph

__all__ = ["EVENTS", "Subscription", "on", "subscribe"]

EVENTS: dict[str, type[Event]] = {
    "run_started": RunStarted,
    "task_started": TaskStarted,
    "task_progress": TaskProgress,
    "task_finished": TaskFinished,
    "run_finished": RunFinished,
    "graph_changed": GraphChanged,
}
_NAMES = {kind: name for name, kind in EVENTS.items()}


#: Fields renamed since hooks could read them: the former name still arrives, beside the new one.
_FORMER_NAMES: dict[type[Event], dict[str, str]] = {TaskStarted: {"worker": "backend"}}


def fields(event: Event) -> dict[str, Any]:
    """An event's fields by name (shallow: values are not copied), and the former names of renamed ones.

    The fields of its :class:`~dagnb.events.Costs` arrive by name beside ``costs`` (``duration``,
    ``cpu_time``, ...), as they did before they travelled together.
    """
    found = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    for former, name in _FORMER_NAMES.get(type(event), {}).items():
        found[former] = found[name]
    costs = found.get("costs")
    if isinstance(costs, Costs):
        found.update({name: getattr(costs, name) for name in COST_FIELDS})
    return found


class Subscription:
    """A registered hook; ``remove()`` unregisters it."""

    def __init__(
        self, graph: Graph, handler: Callable[[Event], None], kinds: tuple[type[Event], ...] | None = None
    ) -> None:
        self._graph, self._handler = graph, handler
        graph.bus.subscribe(handler, kinds)

    def remove(self) -> None:
        self._graph.bus.unsubscribe(self._handler)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def on(event: str, fn: Callable[..., Any], graph: Graph | None = None) -> Subscription:
    """Call ``fn(**fields)`` on every ``event`` of ``graph`` (default: the session's)."""
    if event not in EVENTS:
        hint = close_matches(event, EVENTS)
        suggestion = f" Did you mean `{hint[0]}`?" if hint else ""
        raise CommandError(f"There is no event `{event}`.{suggestion} Events: {', '.join(EVENTS)}.")
    kind = EVENTS[event]

    def handler(e: Event) -> None:
        if type(e) is kind:
            fn(**fields(e))

    return Subscription(_graph(graph), handler, (kind,))  # the run need not make events no one else takes


def subscribe(subscriber: object, graph: Graph | None = None) -> Subscription:
    """Send each event to the ``subscriber`` method named after it, if it has one."""

    def handler(e: Event) -> None:
        method = getattr(subscriber, _NAMES.get(type(e), ""), None)
        if method is not None:
            method(**fields(e))

    return Subscription(_graph(graph), handler)


def _graph(graph: Graph | None) -> Graph:
    if graph is not None:
        return graph
    from dagnb.session import current

    return current()
