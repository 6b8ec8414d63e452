"""One body for blocking and awaited code paths.

dagnb's run loop is a coroutine. Awaited (``await graph.arun()``, or a
``%dag run`` cell in a kernel), its waits suspend on the running event loop,
so async tasks run on that loop. Called plainly (``graph.run()``), every
wait it makes blocks and completes at once, and :func:`complete_now` drives
it to the end without any event loop.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["complete_now"]

T = TypeVar("T")


def complete_now(coro: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine none of whose awaits suspends (its exception, if it raises)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a blocking run waited on an event loop")  # a dagnb bug, never the user's
