"""The progress of a run: one colored segment per outcome, never one color for all.

A :class:`Tally` counts what a run's events say (tasks to do, tasks that
reached each final status, tasks running now); :func:`render_html` draws it
as a bar whose segments are ``done``, ``cached``, ``failed``, ``cancelled``
and the other final statuses, in the colors of the graph, so a run stopped by
Ctrl-C, where one task finished and three were cancelled, reads as a quarter
green and three quarters grey, not as a full bar.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from dagnb.events import Event, RunFinished, RunStarted, TaskFinished, TaskProgress, TaskStarted
from dagnb.status import ENDED, word
from dagnb.widgets._format import COLORS

__all__ = ["ORDER", "Tally", "render_html"]

ORDER = ENDED  # final statuses, in the order of their segments


@dataclass
class Tally:
    """What the runs a view follows did so far: totals add up over several runs (a cell may start two)."""

    total: int = 0
    finished: dict[str, int] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    items: dict[str, tuple[int, int]] = field(default_factory=dict)  # running map tasks: computed, to compute
    run_id: int = 0

    @property
    def done(self) -> int:
        return sum(self.finished.values())

    def apply(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.total, self.running, self.run_id = self.total + len(event.tasks), [], event.run_id
        elif isinstance(event, TaskStarted):
            self.running.append(event.task)
        elif isinstance(event, TaskProgress):
            if event.task in self.running:  # a count that arrives late is dropped
                self.items[event.task] = (event.done, event.total)
        elif isinstance(event, TaskFinished):
            self.finished[event.status] = self.finished.get(event.status, 0) + 1
            self.items.pop(event.task, None)
            if event.task in self.running:
                self.running.remove(event.task)
        elif isinstance(event, RunFinished):
            self.running = []

    def outcome(self) -> str:
        """``2 ran, 1 cached, 3 cancelled``: the final statuses so far, in segment order."""
        return ", ".join(f"{self.finished[s]} {word(s)}" for s in ORDER if self.finished.get(s))

    def label(self, most: int = 3) -> str:
        """``4/7 tasks: 3 ran, 1 cached · running slow, fit (12/100 elements)``."""
        text = f"{self.done}/{self.total} tasks"
        if self.finished:
            text += f": {self.outcome()}"
        if self.running:
            doing = ", ".join(self._doing(t) for t in self.running[:most])
            text += f" · running {doing}" + (" …" if len(self.running) > most else "")
        return text

    def _doing(self, task: str) -> str:
        if task not in self.items:
            return task
        done, total = self.items[task]
        return f"{task} ({done}/{total} elements)"


def render_html(tally: Tally, width: int = 240) -> str:
    """The bar: a segment per final status, as wide as its share of the tasks; the rest is still to do."""
    total = max(tally.total, 1)
    segments = "".join(
        f'<span class="dagnb-seg" data-status="{status}" data-count="{tally.finished[status]}" '
        f'style="width:{100 * tally.finished[status] / total:.3f}%;background:{COLORS[status]}"></span>'
        for status in ORDER
        if tally.finished.get(status)
    )
    tip = escape(tally.label())
    return (
        f'<div class="dagnb-bar" role="progressbar" aria-valuenow="{tally.done}" aria-valuemax="{tally.total}" '
        f'title="{tip}" style="display:flex;width:{width}px;height:12px;background:#eaeef2;border-radius:3px;'
        f'overflow:hidden;border:1px solid #d0d7de">{segments}</div>'
    )
