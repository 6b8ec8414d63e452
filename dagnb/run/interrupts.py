"""Ctrl-C while task bodies run: raised where a task blocks the loop, counted where a task catches it.

Shared by the kernel's backends and by the body run in a worker process, so
it imports nothing of dagnb.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["CountingWhenArmed", "counting_interrupts", "interrupts_seen", "keyboard_interrupts"]


@contextlib.contextmanager
def keyboard_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this block, whatever handler the caller's event loop set.

    ipykernel turns Ctrl-C during an awaited cell into cancelling it, which
    waits for the running code to return; a task blocking the loop must be
    interrupted instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.default_int_handler, signal.SIG_IGN, None):  # None: set outside Python
        yield
        return
    if isinstance(previous, _Counting) and previous.previous is signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _Counting(signal.default_int_handler))  # counted, for tasks that catch it
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_interrupts = [0]  # how many SIGINTs dagnb's handler has seen in this process


def interrupts_seen() -> int:
    """How many times Ctrl-C (SIGINT) arrived while dagnb counted: compare before and after a task body."""
    return _interrupts[0]


class _Counting:
    """A SIGINT handler that counts, then does what the handler it wraps did (raise KeyboardInterrupt, as a rule)."""

    __slots__ = ("previous",)

    def __init__(self, previous: Callable[[int, Any], Any]) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: Any) -> Any:
        _interrupts[0] += 1
        return self.previous(signum, frame)


@contextlib.contextmanager
def counting_interrupts() -> Iterator[None]:
    """Count Ctrl-C while a run goes, so a task that catches it and returns is noticed.

    Training loops catch ``KeyboardInterrupt`` and return a partial result
    (``except KeyboardInterrupt: break``; scikit-learn's ``MLPClassifier.fit``):
    the result looks finished, but must not be cached. The handler is
    wrapped once per run (not per task: changing a signal handler is a system
    call), in the main thread only, where signals arrive.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or isinstance(previous, _Counting):  # SIG_IGN, SIG_DFL, a C handler; or counted
        yield
        return
    signal.signal(signal.SIGINT, _Counting(previous))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class CountingWhenArmed:
    """:func:`counting_interrupts` over a block, from the moment a task body is about to run (:meth:`arm`).

    A run of cache hits runs no body, so nothing could swallow Ctrl-C: it
    changes no signal handler (two system calls a run, on every cached cell).
    """

    def __init__(self) -> None:
        self._counting: contextlib.ExitStack | None = None

    def arm(self) -> None:
        """Count Ctrl-C from now until the block ends (once; again is a no-op)."""
        if self._counting is None:
            self._counting = contextlib.ExitStack()
            self._counting.enter_context(counting_interrupts())

    def __enter__(self) -> CountingWhenArmed:
        return self

    def __exit__(self, *exc: object) -> None:
        counting, self._counting = self._counting, None
        if counting is not None:
            counting.close()
