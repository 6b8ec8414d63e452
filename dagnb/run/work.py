"""What a backend is handed and hands back: one task body (:class:`Work`) and what running it produced (:class:`Outcome`).

The bottom of the run room: backends, the executor and the worker process
all speak these, and this module imports none of them, so a loky or dask
worker loads it without the kernel's side (the executor, the planner, the store).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagnb.fingerprints.code import user_modules

__all__ = ["Outcome", "Work", "send_by_value"]


@dataclass
class Outcome:
    """What running one task produced (in a worker)."""

    value: Any = None
    output: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    error: BaseException | None = None
    started: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    output_bytes: int = 0
    worker: str = "main"
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
    parts: list[Work] | None = field(default=None, repr=False)  # a map task's elements, split across workers
    progress: Any = field(default=None, repr=False)  # a map task's ItemProgress


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
