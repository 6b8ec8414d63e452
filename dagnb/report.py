"""What a run did, in the words a notebook shows and ``dagnb run`` reads back.

Owns:
    * :class:`RunReport`: a run's statuses, reasons and timings, task by task,
      as text and HTML (``%dag run`` and ``graph.run()`` return it);
    * the status line a ``%%task`` cell shows (:func:`cell_line`,
      :func:`outcome_text`);
    * the ``dagnb`` output metadata a cell's outputs carry
      (:data:`METADATA_FORMAT`, :func:`run_metadata`, :func:`output_kind`),
      written by the magics and read by ``dagnb run`` and the nbval plugin.

Invariants:
    * A line's text is deterministic: a status and its reason, no timings.
    * The metadata format is bumped whenever a field ``dagnb run`` reads
      changes meaning; a reader skips outputs of another format.

Nothing here imports IPython: the magics display what this module says.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from html import escape
from typing import Any

from dagnb.events import TaskFinished
from dagnb.status import ENDED, ENDED_BADLY, RAISED, WITH_VALUE, Status, word

__all__ = ["METADATA_FORMAT", "RunReport", "cell_line", "outcome_text", "output_kind", "run_metadata"]

#: The version of the ``dagnb`` output metadata (written by the magics, read by ``dagnb run``).
METADATA_FORMAT = 1


@dataclass
class RunReport:
    """What a run did, task by task (``statuses`` keeps upstream-first order)."""

    statuses: dict[str, Status] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    saved: dict[str, float] = field(default_factory=dict)  # compute time each cache load avoided
    by_condition: list[str] = field(default_factory=list)  # skipped by a false `--when` (theirs or upstream)
    items: dict[str, tuple[int, int]] = field(default_factory=dict)  # map tasks: (elements computed, elements)
    attempts: dict[str, int] = field(default_factory=dict)  # tasks that needed more than one
    loaded: list[str] = field(default_factory=list)  # `cached` tasks whose value came from the disk (not memory)
    run_id: int = 0
    wall_time: float = 0.0
    stale: list[str] = field(default_factory=list)

    def _with(self, status: Status) -> list[str]:
        return [t for t, s in self.statuses.items() if s == status]

    @property
    def executed(self) -> list[str]:
        """Tasks whose function ran to completion in this run."""
        return self._with("done")

    @property
    def cached(self) -> list[str]:
        return self._with("cached")

    @property
    def failed(self) -> list[str]:
        return self._with("failed")

    @property
    def skipped(self) -> list[str]:
        return self._with("skipped")

    @property
    def cancelled(self) -> list[str]:
        return self._with("cancelled")

    @property
    def timed_out(self) -> list[str]:
        return self._with("timed-out")

    @property
    def interrupted(self) -> list[str]:
        """Tasks that caught Ctrl-C and returned: their values are in memory only."""
        return self._with("interrupted")

    @property
    def ok(self) -> bool:
        """No task failed, timed out, was cancelled, or was skipped for any reason but a condition."""
        return not any(s in ENDED_BADLY and t not in self.by_condition for t, s in self.statuses.items())

    def line(self, task: str) -> str:
        """``clean: ran (code changed)`` — deterministic, no timings."""
        status = self.statuses[task]
        shown = word(status)
        reason = self.reasons.get(task, "")
        line = f"{task}: {shown} ({reason})" if reason and status != "cached" else f"{task}: {shown}"
        if task in self.items and status == "done":
            ran, total = self.items[task]
            line += f" · {ran} of {total} elements ran"
        return line

    def summary(self) -> str:
        counts = [(len(self._with(s)), s) for s in ENDED]
        return "run: " + ", ".join(f"{n} {word(s)}" for n, s in counts if n or s in WITH_VALUE)

    def render_text(self) -> str:
        lines = [self.summary(), *(f"  {self.line(t)}" for t in self.statuses)]
        if self.stale:
            lines.append(f"  now stale: {', '.join(self.stale)}")
        return "\n".join(lines)

    def render_html(self) -> str:
        items = "".join(f"<li><code>{escape(self.line(t))}</code></li>" for t in self.statuses)
        return f"<div class='dagnb-report'><b>{escape(self.summary())}</b><ul>{items}</ul></div>"

    def merge(self, later: RunReport) -> RunReport:
        """Add the tasks of a later run (auto mode's downstream run); this run's word wins."""
        self.by_condition += [t for t in later.by_condition if t not in self.by_condition]
        self.loaded += [t for t in later.loaded if t not in self.loaded]
        for name in ("statuses", "reasons", "durations", "errors", "saved", "attempts", "items"):
            mine = getattr(self, name)
            for task, value in getattr(later, name).items():
                mine.setdefault(task, value)
        return self

    def __repr__(self) -> str:
        return self.render_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": self.render_html()}


def cell_line(report: RunReport, task: str, downstream: Collection[str], notes: str = "") -> str:
    """The line a ``%%task`` cell shows after its run: ``clean: ran (code changed) · 1 downstream now stale: model``.

    ``notes`` follow the task's own line (``· replaces `old```); then what else
    the cell ran, upstream and downstream, and what it left stale.
    """
    text = report.line(task) + notes
    ran_up = [t for t in report.executed if t != task and t not in downstream]
    if ran_up:
        text += f" · upstream ran: {', '.join(ran_up)}"
    ran_down = [t for t in report.executed if t in downstream]
    if ran_down:
        text += f" · downstream ran: {', '.join(ran_down)}"
    if report.stale:
        text += f" · {len(report.stale)} downstream now stale: {', '.join(report.stale)}"
    return text


def outcome_text(event: TaskFinished) -> str:
    """``clean: ran (code changed)``, ``clean: cached``, ``clean: failed (ZeroDivisionError)``."""
    shown = word(event.status)
    if event.status == "cached":
        return f"{event.task}: cached"
    if event.status in RAISED and event.error is not None:
        return f"{event.task}: {shown} ({type(event.error).__name__})"
    if event.status == "done" and event.items is not None:
        reason = f" ({event.reason})" if event.reason else ""
        return f"{event.task}: {shown}{reason} · {event.items[0]} of {event.items[1]} elements ran"
    return f"{event.task}: {shown} ({event.reason})" if event.reason else f"{event.task}: {shown}"


def output_kind(kind: str) -> dict[str, Any]:
    """The metadata of an output whose text depends on the cache (a plan, a history): which kind it is."""
    return {"dagnb": {"output": kind}}


def run_metadata(report: RunReport, task: str | None) -> dict[str, Any]:
    """What ``dagnb run`` reads back from a cell's status line (``task``) or a run's report (``None``)."""
    return {
        "dagnb": {
            "format": METADATA_FORMAT,
            "output": "status" if task else "report",
            "task": task,
            "statuses": report.statuses,
            "reasons": report.reasons,
            "durations": {t: round(d, 6) for t, d in report.durations.items()},
            "saved": {t: round(d, 6) for t, d in report.saved.items()},
            "by_condition": report.by_condition,
            "stale": report.stale,
        }
    }
