"""One task body, run and described: the value, its fingerprint, captured prints, costs, or the error.

Every path a task body takes goes through here: :func:`run_body` in the
kernel (``inline``, ``threads``) and in a worker process
(:func:`dagnb.run.worker.run_remote`), :func:`run_body_async` for an async
task awaited on an event loop. What differs between the paths is only how
prints are captured (``capture``) and what the caller adds afterwards (the
lane, a portable error).

Invariants:

* Never raises for what the task body raises (``Exception``): that is the
  outcome's error. ``KeyboardInterrupt`` and ``TimedOut`` go on to the run loop.
* A body that caught Ctrl-C and returned is ``interrupted``: its value may
  be partial, so it gets no fingerprint.
* The value is fingerprinted where the body ran (in a worker: in parallel,
  not in the kernel); a value with no fingerprint has ``fingerprint=None``.

Imports only this room's light modules and :mod:`dagnb.fingerprints.values`:
a worker process imports it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from dagnb.fingerprints.values import fingerprint
from dagnb.run.capture import OutputLog
from dagnb.run.costs import Costs, Measure, measure, value_nbytes
from dagnb.run.interrupts import interrupts_seen
from dagnb.run.work import Outcome, current_lane

__all__ = ["Capture", "fingerprint_or_none", "run_body", "run_body_async"]

Capture = Callable[[], AbstractContextManager[OutputLog]]


def fingerprint_or_none(value: Any) -> str | None:
    """A value's fingerprint, or ``None``: never an exception from the value's own pickling."""
    try:
        return fingerprint(value)
    except Exception:  # Unfingerprintable, or what a `__reduce__` raises (a multiprocessing.Queue)
        return None


def run_body(func: Callable[..., Any], kwargs: dict[str, Any], capture: Capture) -> Outcome:
    """``func(**kwargs)`` here, its prints recorded by ``capture`` and its costs measured, in this thread's lane."""
    seen = interrupts_seen()
    log = OutputLog()
    cost = Measure()
    try:
        with capture() as log, measure() as cost:
            value = func(**kwargs)
    except Exception as exc:
        return Outcome(error=exc, captured=list(log), costs=cost.costs(), lane=current_lane())
    if interrupts_seen() != seen:  # Ctrl-C arrived and the task caught it: its value may be partial
        return Outcome(value, captured=list(log), costs=cost.costs(), lane=current_lane(), interrupted=True)
    return Outcome(value, fingerprint_or_none(value), list(log), cost.costs(value_nbytes(value)), lane=current_lane())


async def run_body_async(func: Callable[..., Any], kwargs: dict[str, Any], capture: Capture) -> Outcome:
    """An async task's body, awaited (its prints and displays recorded like a sync task's).

    Its CPU time and peak memory are not measured: other tasks run on the
    same thread while it waits.
    """
    started = time.perf_counter()
    log = OutputLog()
    try:
        with capture() as log:
            value = await func(**kwargs)
    except Exception as exc:
        costs = Costs(started, time.perf_counter() - started)
        return Outcome(error=exc, captured=list(log), costs=costs, lane="async")
    costs = Costs(started, time.perf_counter() - started, output_bytes=value_nbytes(value))
    return Outcome(value, fingerprint_or_none(value), list(log), costs, lane="async")
