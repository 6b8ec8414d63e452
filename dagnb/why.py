"""The answer to ``%dag why TASK``: whether a task is stale, and which part of its key changed.

A :class:`Why` is read off the task's :class:`~dagnb.plan.Decision` in a
fresh plan, never computed on its own, so it can never disagree with what
``run`` would do: a task the plan loads or finds up to date is not stale;
one it runs, or holds back behind an upstream task that reruns, is, for the
reasons the plan gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from dagnb.plan import Decision

__all__ = ["Why", "why_from"]


@dataclass(frozen=True)
class Why:
    """The answer to ``%dag why TASK``."""

    task: str
    stale: bool
    reasons: tuple[str, ...]

    def render_text(self) -> str:
        if not self.stale:
            return f"{self.task} is up to date: its key is unchanged."
        return f"{self.task} is stale: " + "; ".join(self.reasons) + "."

    __str__ = render_text

    def __repr__(self) -> str:
        return self.render_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.render_text(), "text/html": f"<code>{escape(self.render_text())}</code>"}


def why_from(decision: Decision) -> Why:
    """The answer for the task of ``decision`` (taken by a plan of that task)."""
    if decision.action in ("fresh", "load"):
        return Why(decision.task, False, ())
    return Why(decision.task, True, decision.reasons)  # run, or wait behind a rerunning upstream
