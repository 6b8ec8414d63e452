"""What a run needs of the session that starts it, as a Protocol.

The per-run :class:`~dagnb.run.taskrunner.TaskRunner` and the commit step
work on a :class:`~dagnb.api.Graph`, but the run room must not import the
facade above it (an import circle, and the arrows would point outward):
they are typed against :class:`Host` and :class:`Runner` instead. A new
attribute a run reads of its graph is declared here first.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dagnb.cache.base import Store
    from dagnb.epoch import Epoch
    from dagnb.events import EventBus
    from dagnb.freshness import Freshness, Reads
    from dagnb.graph import TaskGraph, TaskSpec
    from dagnb.inplace import InputGuard
    from dagnb.plan import Decision, Result
    from dagnb.report import RunReport
    from dagnb.run.capture import OutputLog
    from dagnb.run.mapping import MapPlan
    from dagnb.status import Status

__all__ = ["Host", "Runner"]


class Host(Protocol):
    """The graph a run belongs to: its tasks, store, values and session settings."""

    tasks: TaskGraph
    store: Store
    results: dict[str, Result]
    namespace: MutableMapping[str, Any]
    bus: EventBus
    freshness: Freshness
    statuses: dict[str, Status]
    interrupted: dict[str, Any]
    last_run: RunReport | None
    record_later: bool
    verify_inputs: bool
    check_mutation: bool
    capture: Callable[[], AbstractContextManager[OutputLog]]
    replay: Callable[[list[dict[str, Any]]], None]
    _guard: InputGuard
    _saved: dict[str, tuple[str, int, int] | None]
    _unhashable_warned: set[str]
    _fresh: dict[str, Decision]
    _epoch: Epoch

    def estimates(self, tasks: Sequence[str]) -> dict[str, float]: ...

    def _bind(self, task: str, result: Result) -> None: ...

    def _reads(self, task: str, spec: TaskSpec) -> Reads | None: ...


class Runner(Protocol):
    """The run a commit belongs to: its graph and the map plans of its running map tasks."""

    graph: Host
    maps: dict[str, MapPlan]
