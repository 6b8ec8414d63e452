"""IPython glue: a cell that runs tasks, blocking or awaited, with its progress and its guards.

:class:`CellGlue` is what every handler of :class:`dagnb.notebook.dagmagics.DagMagics`
shares: the session's graph, the follower of the page, the shell, and the
way a cell runs tasks. A run happens at once (``Graph.run``), or, when the
cell was rewritten to await it (:func:`dagnb.notebook.magics.await_runs`), as
a coroutine on the kernel's loop (``Graph.arun``), next to the cell's other
async tasks.

Invariants:

* Ctrl-C gives one paragraph (what is kept, what is not, how to resume),
  never a traceback: a blocking run raises ``RunInterrupted``; an awaited
  one is cancelled, and :func:`dagnb.notebook.magics.awaiting` raises the
  same paragraph with the ``resume`` set here.
* Widgets (the progress bar) appear only with a kernel at the other end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from dagnb.errors import RunInterrupted
from dagnb.notebook.failures import task_failures, usage_errors
from dagnb.notebook.outputs import replay
from dagnb.report import RunReport
from dagnb.run.aio import complete_now

if TYPE_CHECKING:
    from dagnb.api import Graph
    from dagnb.notebook.follow import Follower

__all__ = ["AWAITED", "INTERRUPTED", "CellGlue", "Run"]

Run = Callable[..., Awaitable[RunReport]]  # Graph.arun, or Graph.run made awaitable
AWAITED: ContextVar[bool] = ContextVar("dagnb_awaited", default=False)
INTERRUPTED: ContextVar[str | None] = ContextVar("dagnb_interrupted", default=None)  # how to resume a cancelled run


class CellGlue:
    """What the handlers of ``%%task`` and ``%dag`` share.

    Responsibilities: hold the session's graph, the page's follower and the
    shell (set by ``DagMagics``); run tasks in the cell, at once or awaited,
    guarded so errors show as one paragraph; show the progress; show again
    what tasks loaded from the disk cache printed when they ran.
    """

    graph: Graph
    follower: Follower
    shell: Any

    def _running(
        self, body: Callable[[Run], Awaitable[Any]], own: str | None = None, resume: str = "Run this cell again"
    ) -> Any:
        """``body(run)``: at once, or as a coroutine when the cell awaits it (see :func:`awaiting`).

        ``resume`` is what an interrupted run's summary tells the user to do.
        """
        if AWAITED.get():
            return self._guarded(body, self.graph.arun, own, resume)
        return complete_now(self._guarded(body, self._run_now, own, resume))

    async def _guarded(self, body: Callable[[Run], Awaitable[Any]], run: Run, own: str | None, resume: str) -> Any:
        try:
            with usage_errors(), task_failures(self.shell), self._progress(own):
                return await body(run)
        except RunInterrupted as stop:  # Ctrl-C: one paragraph (what is kept, what is not), no traceback
            stop.resume = resume
            raise stop.with_traceback(None) from None
        except asyncio.CancelledError:  # Ctrl-C in an awaited cell: `awaiting` says the same paragraph
            INTERRUPTED.set(resume)
            raise

    async def _run_now(self, *args: Any, **kwargs: Any) -> RunReport:
        return self.graph.run(*args, **kwargs)

    def _live(self) -> bool:
        """Widgets need a kernel (a frontend at the other end of comms)."""
        return getattr(self.shell, "kernel", None) is not None

    @contextlib.contextmanager
    def _progress(self, own: str | None = None) -> Iterator[None]:
        if not self._live():
            yield
            return
        from dagnb.widgets.progress_view import RunProgress

        progress = RunProgress(self.graph, own)
        try:
            yield
        finally:
            progress.close()

    def _replay_loaded(self, report: RunReport, but: str | None = None) -> None:
        """What the tasks this run loaded from the disk cache printed when they ran, shown again here.

        A cold cache runs them in this cell, where they print: a warm one shows
        the same, so a saved notebook reads the same whatever the cache held
        (values already in memory stay quiet either way).
        """
        for task in report.loaded:
            result = self.graph.results.get(task)
            if task != but and result is not None:
                replay(result.captured)
