"""The status line of each task cell, kept true while the session changes.

Running a ``%%task`` cell shows one line (``clean: ran (code changed)``).
Later cells change what that line must say: an edited upstream task or a
changed notebook variable makes the task stale, a ``%dag run`` elsewhere
runs it, fails it, loads it or cancels it. :class:`StatusLines` knows which
tasks have a line on the page and turns run events and the plan taken after
each cell into the line each must show now; the notebook glue updates the
line in place (``update_display_data``). Nothing here imports IPython.

Invariants:

* A line changes only when its task's status changes (or, for a stale task,
  why it is stale), so a cell that changes nothing sends nothing.
* A line's text is deterministic: a status and its reason, no timings.
* A task whose cell is running again has no line until the cell shows its
  new one (a frontend clears a cell's outputs when it runs).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dagnb.events import Event, TaskFinished, TaskStarted
from dagnb.report import outcome_text
from dagnb.status import WAITING, WITH_VALUE, Status

__all__ = ["Line", "StatusLines", "outcome_text"]


@dataclass
class Line:
    """What one task cell's line shows now, and what it showed after the task's latest outcome."""

    task: str
    status: Status
    text: str
    why: str = ""  # for a stale task: the reason shown (a new reason is a new line)
    result: str = ""  # the text of the latest outcome that left a value (ran, cached)
    record: dict[str, Any] = field(default_factory=dict)  # the cell's own run record, kept on every update


class StatusLines:
    """The lines on the page, by task.

    Responsibilities:
        * remember the line each task cell showed, and forget it when the cell runs again;
        * from a run event or the plan after a cell, say which lines must change, and to what.
    """

    def __init__(self) -> None:
        self.lines: dict[str, Line] = {}
        self._shown = itertools.count()  # the order lines were shown in: updates go out in that order
        self._position: dict[str, int] = {}

    def __bool__(self) -> bool:
        return bool(self.lines)

    def shown(self, task: str, status: Status, text: str, record: Mapping[str, Any], why: str = "") -> Line:
        """The task's cell showed ``text``: that is its line now."""
        result = text if status in WITH_VALUE else ""
        line = self.lines[task] = Line(task, status, text, why, result, dict(record))
        if task not in self._position:  # as in `lines`: a line shown again keeps its place
            self._position[task] = next(self._shown)
        return line

    def forget(self, *tasks: str) -> None:
        for task in tasks:
            self.lines.pop(task, None)
            self._position.pop(task, None)

    def on_event(self, event: Event) -> Line | None:
        """The line that ``event`` changes, if any."""
        line = self.lines.get(getattr(event, "task", ""))
        if line is None:
            return None
        if isinstance(event, TaskStarted):
            retry = f" (attempt {event.attempt})" if event.attempt > 1 else ""
            return self._set(line, "running", f"{line.task}: running{retry}")
        if not isinstance(event, TaskFinished):
            return None
        if event.in_memory:  # its value was already in memory: nothing happened to it
            return self._set(line, "done", line.result) if line.status not in WITH_VALUE and line.result else None
        text = outcome_text(event)
        if event.status in WITH_VALUE:
            line.result = text
        return self._set(line, event.status, text)

    def on_plan(
        self, statuses: Mapping[str, Status], reasons: Mapping[str, str], only: Iterable[str] | None = None
    ) -> list[Line]:
        """The lines the plan after a cell changes: tasks now stale, and stale ones up to date again.

        ``statuses`` are the plan's statuses (``Plan.statuses``), ``reasons``
        why each task would run; ``only``: the tasks whose status may have
        changed since the plan before (``None``: any). A failure the plan
        cannot know better than the last event (failed, skipped, cancelled)
        stays, unless the task's value is up to date after all.
        """
        changed = []
        if only is None:
            lines = list(self.lines.items())
        else:
            picked = sorted((t for t in only if t in self.lines), key=self._position.__getitem__)
            lines = [(t, self.lines[t]) for t in picked]
        for task, line in lines:
            status = statuses.get(task)
            if status is None:  # dropped, or no longer plannable
                continue
            why = reasons.get(task, "")
            if status in WAITING:  # a task whose line showed a value: that value is stale now
                status = "stale" if status == "stale" or line.result else "pending"
                if (line.status, line.why) == (status, why):
                    continue
                found = self._set(line, status, f"{task}: {status} ({why})" if why else f"{task}: {status}", why)
            elif status in WITH_VALUE and line.status not in WITH_VALUE and line.result:
                found = self._set(line, status, line.result)  # up to date again: what its value came from
            else:
                found = None
            if found is not None:
                changed.append(found)
        return changed

    @staticmethod
    def _set(line: Line, status: str, text: str, why: str = "") -> Line | None:
        if line.status == status and line.why == why and line.text == text:
            return None
        line.status, line.text, line.why = status, text, why
        return line
