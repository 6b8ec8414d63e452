"""IPython glue: the page follows the session, with no frontend extension.

Every ``%%task`` cell's status line is a display with an id. While a run
goes, its events update the lines of the tasks it reaches, where they are
(``update_display_data``, which JupyterLab, Notebook 7, VS Code and nbclient
apply to the cell that showed the line). After each cell, one plan is taken
for every line and live view on the page (the plan of that moment, shared),
so a task that an edited upstream cell or a changed notebook variable made
stale says so in its own cell, and a ``%dag`` view above shows it too, before
the cell that changed it ends. That plan follows the one after the cell
before: only the tasks whose decision may have changed are decided again
(``Graph.plan_since``), and only their lines are looked at. What each line
says is decided by :mod:`dagnb.notebook.status_lines`; this module only displays.

A ``%%task`` cell is the magic and nothing else, so the follower holds one
epoch (``Graph.epoch``) from the cell's start to the end of the plan after
it: its run, its downstream staleness, the live views at the run's end and
that plan fingerprint each notebook input once. Any other cell may run code
between dagnb's calls, so each call there starts an epoch of its own.

Invariants:

* Only the kernel's main thread publishes, in the cell that runs: runs send
  their events from there, and nbclient keeps only messages of the cell it
  executes.
* Each line gets a display id of its own; a cell run again shows a new line
  under a new id, so an update never reaches an output that is gone.
* Nothing here may break a cell: the bookkeeping after a cell fails soft.
* The epoch held over a ``%%task`` cell is released after the plan that
  follows it, and at the start of the next cell whatever happened.
* A cell that mentions ``%dag`` or ``dagnb`` may change the cache outside
  a run (``%dag cache clear``): the plan after it decides every task,
  unless each such mention is a ``%dag`` command that only reads
  (:data:`READING`: ``%dag history``, ``plan``, ``why``, ``show``,
  ``trace``, ``costs``, or ``%dag`` alone).
* Without a kernel (a terminal IPython) lines are plain displays, never updated.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import sys
import threading
from typing import TYPE_CHECKING, Any

from dagnb.events import Event, RunFinished, TaskFinished, TaskStarted
from dagnb.notebook.line_sender import LineSender
from dagnb.notebook.status_lines import Line, StatusLines

if TYPE_CHECKING:
    from dagnb.api import Graph
    from dagnb.overview import Planned

__all__ = ["Follower", "line_bundle"]

_ids = itertools.count(1)
_TASK_CELL = re.compile(r"\s*%%task\b")
_MENTIONS_DAGNB = re.compile(r"%dag\b|\bdagnb\b")
#: The ``%dag`` commands that change neither the cache nor the graph.
READING = ("history", "plan", "why", "show", "trace", "costs")
_READS_ONLY = re.compile(rf"\s*%dag(?:\s+(?:{'|'.join(READING)})\b.*)?\s*")


def _may_change_cache(source: str) -> bool:
    """Whether ``source`` mentions dagnb other than in lines that are ``%dag`` commands that only read."""
    return any(not _READS_ONLY.fullmatch(line) for line in source.splitlines() if _MENTIONS_DAGNB.search(line))


def line_bundle(task: str, status: str, text: str) -> dict[str, str]:
    """A status line as text and as HTML (a colored swatch, and the status in ``data-status``)."""
    from html import escape

    from dagnb.widgets._format import COLORS

    color = COLORS.get(status, "#ffffff")
    html = (
        f"<code class='dagnb-status' data-task='{escape(task)}' data-status='{escape(status)}'>"
        f"<span class='dagnb-swatch' style='display:inline-block;width:10px;height:10px;border-radius:2px;"
        f"border:1px solid #0003;background:{color}'></span> {escape(text)}</code>"
    )
    return {"text/plain": text, "text/html": html}


class Follower:
    """The status lines of one session's task cells, and the plan after each cell.

    Responsibilities:
        * show a task cell's line under a display id, and update it as its task's status changes;
        * after each cell, take one plan when a line or a live view is on the page, and hand it to both.
    """

    def __init__(self, graph: Graph, shell: Any) -> None:
        self.graph, self.shell = graph, shell
        self.lines = StatusLines()
        self.ids: dict[str, str] = {}  # task -> the display id of its line
        self.enabled = True  # `%dag config --no-follow`: no plan after each cell; lines change only when runs do
        self._last: Planned | None = None  # the plan after the cell before, which the next one follows
        self._full = True  # the next plan after a cell decides every task
        self._scope = contextlib.ExitStack()  # the epoch held over a `%%task` cell
        publisher = getattr(shell, "display_pub", None)
        self._sender = LineSender(publisher) if self.in_kernel() and LineSender.usable(publisher) else None
        graph.bus.subscribe(self._on_event, (TaskStarted, TaskFinished, RunFinished))

    def before_cell(self, source: str) -> None:
        """A cell starts: hold one epoch over a ``%%task`` cell; note a cell that may touch the cache."""
        self._scope.close()
        if _may_change_cache(source):
            self._full = True
        if _TASK_CELL.match(source):
            self._scope.enter_context(self.graph.epoch())
        else:  # a new epoch, which lets go of the values the last one held (the cell may `del` them)
            self.graph.namespace_changed()

    def in_kernel(self) -> bool:
        return getattr(self.shell, "kernel", None) is not None

    def show_line(self, task: str, status: str, text: str, record: dict[str, Any], why: str = "") -> None:
        """Display task ``task``'s line in the cell that runs now; it is updated from here on."""
        from IPython.display import publish_display_data

        metadata = self._metadata(task, status, record)
        if not self.in_kernel():
            publish_display_data(line_bundle(task, status, text), metadata=metadata)
            return
        self.ids[task] = display_id = f"dagnb-status-{os.getpid()}-{next(_ids)}"
        bundle = line_bundle(task, status, text)
        if self._sender is not None:
            self._sender.show(display_id, bundle, metadata)
        else:
            publish_display_data(bundle, metadata=metadata, transient={"display_id": display_id})
        self.lines.shown(task, status, text, record.get("dagnb", {}), why)

    def forget(self, *tasks: str) -> None:
        """The cells of ``tasks`` run again (or the tasks are gone): their old lines are not updated."""
        self.lines.forget(*tasks)
        for task in tasks:
            self.ids.pop(task, None)

    def after_cell(self) -> None:
        """The plan after a cell, for every line and live view on the page (failing soft)."""
        try:
            self._follow()
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - the cell is over: following never fails it
            self._full = True
        finally:
            self._scope.close()
            self._flush()

    def _follow(self) -> None:
        live = sys.modules.get("dagnb.widgets.live")
        if not self.enabled or not self.in_kernel():
            if live is not None:
                live.settle_all()
            return
        watched = live is not None and live.watching()
        if not self.lines and not watched:
            return
        from dagnb.overview import planned

        now = planned(self.graph, None if self._full else self._last, following=True)
        self._last, self._full = now, now.plan is None
        for line in self.lines.on_plan(now.statuses, now.reasons(now.changed), now.changed):
            self._update(line)
        if live is not None:
            live.follow_all(now)

    def _on_event(self, event: Event) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if isinstance(event, RunFinished):
            self._flush()
            return
        if not self.lines:
            return
        line = self.lines.on_event(event)
        if line is not None:
            self._update(line)

    def _update(self, line: Line) -> None:
        from IPython.display import publish_display_data

        display_id = self.ids.get(line.task)
        if display_id is None:
            return
        bundle, metadata = (
            line_bundle(line.task, line.status, line.text),
            self._metadata(line.task, line.status, {"dagnb": line.record}),
        )
        if self._sender is not None:
            self._sender.later(display_id, bundle, metadata)
            return
        publish_display_data(bundle, metadata=metadata, transient={"display_id": display_id}, update=True)

    def _flush(self) -> None:
        """Send the queued line updates now (failing soft: a cell or a run is never broken by its lines)."""
        if self._sender is None:
            return
        try:
            self._sender.flush()
        except Exception:  # noqa: BLE001 - the lines lag behind; the next change sends them
            pass

    @staticmethod
    def _metadata(task: str, status: str, record: dict[str, Any]) -> dict[str, Any]:
        """The cell's run record (what ``dagnb run`` reads) with what the line says now."""
        return {"dagnb": {**record.get("dagnb", record), "output": "status", "task": task, "now": status}}
