"""What goes to a backend (:class:`Work`) and what comes back (:class:`Outcome`).

A worker process imports this module: it stays free of the planner, the
task graph and the cache (networkx, sqlite3).

Invariants:

* An :class:`Outcome` is frozen: whoever adds to it (the lane it ran on, a
  late timeout, a map task's assembled value) makes a new one with
  :func:`dataclasses.replace`, so an outcome a backend handed over never
  changes under the run loop.
* Its costs travel as one :class:`~dagnb.run.costs.Costs` record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagnb.fingerprints.code import user_modules
from dagnb.run.costs import Costs

__all__ = ["Committed", "Outcome", "Work", "current_lane", "send_by_value"]


@dataclass(frozen=True)
class Outcome:
    """What running one task body produced, where it ran.

    ``fingerprint`` is the value's fingerprint (``None``: it has none,
    or the body failed or caught Ctrl-C); ``captured`` what it printed and
    displayed; ``lane`` where it ran (``main``, a thread's name, ``pid N``,
    ``async``).
    """

    value: Any = None
    fingerprint: str | None = None
    captured: list[dict[str, Any]] = field(default_factory=list)
    costs: Costs = Costs()
    error: BaseException | None = None
    lane: str = "main"
    remote: bool = False  # ran in another process: its prints were recorded, not shown live
    items: tuple[int, int] | None = None  # a map task: (elements computed, elements), set when committed
    interrupted: bool = False  # Ctrl-C arrived while it ran and the task caught it: its value may be partial


@dataclass
class Work:
    """One task body, ready to run where the backend chooses.

    ``local`` runs it in this process with the session's output capture;
    remote backends send ``func`` and ``kwargs`` to a worker instead.
    """

    task: str
    func: Callable[..., Any] = field(repr=False)
    kwargs: dict[str, Any] = field(repr=False)
    local: Callable[[], Outcome] = field(repr=False)
    timeout: float | None = None
    retries: int = 0
    run_async: Callable[[], Any] | None = field(default=None, repr=False)  # an async task: makes its coroutine
    slices: list[Work] | None = field(default=None, repr=False)  # a map task's elements, split across workers
    progress: Any = field(default=None, repr=False)  # a map task's ItemProgress


@dataclass(frozen=True)
class Committed:
    """What committing an outcome did: the outcome as bound (a map task's: its assembled value, the
    elements computed, the size of the whole) and the bytes its cache entry took."""

    outcome: Outcome
    nbytes: int = 0


def send_by_value(func: Callable[..., Any]) -> list[Any]:
    """The user modules ``func`` reaches, which cloudpickle will send by value, as the kernel holds them.

    Otherwise a worker imports the module's file again, which may have been
    edited since the kernel imported it (or whose state the notebook set):
    the task would run code its key does not describe.
    """
    bodies = [func, *getattr(func, "args", ())]  # a map task's body is a partial over the task's function
    modules = list({id(m): m for body in bodies if callable(body) for m in user_modules(body)}.values())
    try:
        import cloudpickle  # what loky and distributed send functions with
    except ImportError:  # loky falls back to pickle, which sends nothing by value
        return modules
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    return modules


def current_lane() -> str:
    """The trace lane of the calling thread: ``main`` for the main thread, else the thread's name."""
    thread = threading.current_thread()
    return "main" if thread is threading.main_thread() else thread.name
