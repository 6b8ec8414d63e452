"""The status vocabulary: what a task can show, its groups, and the words it is shown with.

A task's *status* is one of :data:`STATUSES`, exactly the list in the README
glossary. Modules that ask "did it end badly?" or "does it hold a value of
this key?" import the group from here instead of spelling the strings again,
so a new status is added in one place and every view, report and summary
sees it.

Invariants:
    * every group is a subset of :data:`STATUSES`;
    * :data:`ENDED_BADLY` lists the unhappy ends in the order run summaries,
      progress bars and the run history count them;
    * :func:`word` is the only place ``done`` is shown as ``ran``.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "ENDED",
    "ENDED_BADLY",
    "RAISED",
    "STATUSES",
    "STOPPED",
    "Status",
    "WAITING",
    "WITH_VALUE",
    "word",
]

Status = Literal[
    "pending",  # never run, or its value is in the cache but not loaded yet
    "stale",  # it ran before, under another key
    "running",
    "done",  # its function ran to completion in this run
    "cached",  # its value came from memory or the disk cache instead
    "failed",
    "skipped",  # an upstream failed or was skipped, or its condition was false
    "cancelled",  # the run stopped before (or while) it ran
    "timed-out",
    "interrupted",  # it caught Ctrl-C and returned: its value is in memory only
]

STATUSES: tuple[Status, ...] = get_args(Status)

#: A run made or brought back the value of the task's current key.
WITH_VALUE: frozenset[Status] = frozenset({"done", "cached"})

#: The task's own code raised (a timeout is the executor raising for it).
RAISED: frozenset[Status] = frozenset({"failed", "timed-out"})

#: The task never got to run to its end because of something else.
STOPPED: frozenset[Status] = frozenset({"skipped", "cancelled"})

#: Not up to date and not running: what a plan shows before a run starts it.
WAITING: frozenset[Status] = frozenset({"stale", "pending"})

#: Every way a task can end without a value of its key, in the order summaries count them.
ENDED_BADLY: tuple[Status, ...] = ("failed", "timed-out", "interrupted", "skipped", "cancelled")

#: Every way a task can end a run, in the order summaries count them.
ENDED: tuple[Status, ...] = ("done", "cached", *ENDED_BADLY)

_WORDS: dict[str, str] = {"done": "ran"}  # the one status shown as another word


def word(status: str) -> str:
    """How a status reads in a status line, a summary or a view: ``done`` is ``ran``; the others, themselves."""
    return _WORDS.get(status, status)
