"""How a run waits for its running tasks: by blocking the caller's thread, or on an event loop.

:func:`~dagnb.run.executor.execute` waits with :class:`Blocking`, and its
async tasks run on dagnb's own event loop thread;
:func:`~dagnb.run.executor.execute_async` waits with :class:`OnLoop`, and
its async tasks run on the caller's loop, next to each other.

Invariants:

* ``wait`` returns only futures of tasks the run still has running, and at
  least one unless the timeout passed first.
* A waiter adds at most one callback to each backend future, however many
  times it is waited for.
"""

from __future__ import annotations

import asyncio
import queue
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from dagnb.run.backends import Backend, async_runner, keyboard_interrupts
from dagnb.run.work import Outcome, Work

if TYPE_CHECKING:
    from dagnb.run.state import RunState

__all__ = ["Blocking", "OnLoop"]


class Blocking:
    """Waits by blocking the caller's thread; async tasks go to dagnb's own loop thread."""

    def __init__(self) -> None:
        self._completions: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
        self._watched: set[Future[Outcome]] = set()  # running futures that report to `_completions`

    def submit(self, backend: Backend, work: Work) -> Future[Outcome]:
        return async_runner().submit(work) if work.run_async is not None else backend.submit(work)

    async def wait(self, run: RunState, timeout: float | None) -> list[Future[Outcome]]:
        """The running futures that are done; when none is yet, wait up to ``timeout`` for the first.

        An inline task's future is done when submitted, so it is looked for
        first. Otherwise each running future reports to a queue when it
        finishes (one callback each, added the first time it is waited for):
        a queue get costs far less than ``concurrent.futures.wait``, which
        builds and removes a waiter on every running future at every call.
        """
        done = [future for future in run.running if future.done()]
        if done:
            return done
        self._watched.intersection_update(run.running)  # those handled since need no watching
        for future in run.running.keys() - self._watched:
            self._watched.add(future)
            future.add_done_callback(self._completions.put)
        ends = None if timeout is None else time.perf_counter() + timeout
        while True:  # a future already handled by the first look may still be queued: skip it
            try:
                future = self._completions.get(timeout=None if ends is None else max(0.0, ends - time.perf_counter()))
            except queue.Empty:
                return []
            if future in run.running:
                return [future for future in run.running if future.done()]


class OnLoop:
    """Waits by awaiting on the running event loop; async tasks run on it."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._awaitable: dict[Any, asyncio.Future[Outcome]] = {}  # a backend's future -> the loop's view of it

    def submit(self, backend: Backend, work: Work) -> Any:
        if work.run_async is not None:
            return self._loop.create_task(work.run_async())
        with keyboard_interrupts():  # an inline task blocks the loop: Ctrl-C must reach it
            return backend.submit(work)

    async def wait(self, run: RunState, timeout: float | None) -> set[Any]:
        views = {f: f if isinstance(f, asyncio.Future) else self._view(f) for f in run.running}
        done, _ = await asyncio.wait(views.values(), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finished = {f for f, view in views.items() if view in done}
        for f in finished:
            self._awaitable.pop(f, None)
        return finished

    def _view(self, future: Future[Outcome]) -> asyncio.Future[Outcome]:
        if future not in self._awaitable:
            self._awaitable[future] = asyncio.wrap_future(future, loop=self._loop)
        return self._awaitable[future]
