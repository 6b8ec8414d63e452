"""The graph view: tasks laid out by dependency level, colored by status.

Upstream is on the left, downstream on the right; a level with many tasks
wraps into several columns so a wide graph stays compact. The SVG has no
ids and no scripts, so copies of it can share a page and it renders with
no network and no JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from ..overview import Overview, levels
from ._format import COLORS, legend, style

__all__ = ["Layout", "layout", "render_html", "render_svg", "render_text"]

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 26, 56, 10, 12
MAX_ROWS = 40  # a level with more tasks wraps into further columns
_LIGHT_TEXT = {"running", "done", "failed", "cancelled", "timed-out", "interrupted"}


@dataclass(frozen=True)
class Layout:
    """Top-left corner of each task's box, and the size of the drawing."""

    positions: dict[str, tuple[int, int]]
    width: int
    height: int


def _columns(tasks: list[str], upstream: dict[str, list[str]]) -> list[list[str]]:
    level = levels(tasks, upstream)
    by_level: dict[int, list[str]] = {}
    for task in tasks:
        by_level.setdefault(level[task], []).append(task)
    columns: list[list[str]] = []
    row_of: dict[str, float] = {}
    for lvl in sorted(by_level):
        members = by_level[lvl]
        # barycenter: sit near the mean row of your upstream tasks (fewer crossings)
        members.sort(key=lambda t: sum(row_of[u] for u in upstream[t]) / len(upstream[t]) if upstream[t] else -1)
        for start in range(0, len(members), MAX_ROWS):
            column = members[start : start + MAX_ROWS]
            row_of.update({t: float(i) for i, t in enumerate(column)})
            columns.append(column)
    return columns


def layout(tasks: list[str], upstream: dict[str, list[str]]) -> Layout:
    """Place ``tasks`` (upstream first) in columns by level, centered vertically."""
    columns = _columns(tasks, upstream)
    rows = max((len(c) for c in columns), default=0)
    positions = {}
    for x, column in enumerate(columns):
        offset = (rows - len(column)) * (NODE_H + GAP_Y) // 2
        for y, task in enumerate(column):
            positions[task] = (PAD + x * (NODE_W + GAP_X), PAD + offset + y * (NODE_H + GAP_Y))
    width = PAD * 2 + len(columns) * (NODE_W + GAP_X) - (GAP_X if columns else 0)
    height = PAD * 2 + rows * (NODE_H + GAP_Y) - (GAP_Y if rows else 0)
    return Layout(positions, width, height)


def _label(task: str) -> str:
    return task if len(task) <= 20 else task[:19] + "…"


def _edge(a: tuple[int, int], b: tuple[int, int]) -> str:
    x1, y1 = a[0] + NODE_W, a[1] + NODE_H // 2
    x2, y2 = b[0], b[1] + NODE_H // 2
    bend = max(20, (x2 - x1) // 2)
    return f'<path d="M{x1} {y1}C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}"/>'


def _node(task: str, at: tuple[int, int], status: str, reason: str, items: tuple[int, int] | None = None) -> str:
    tip = f"{task}: {status}" + (f" ({reason})" if reason else "")
    label = _label(task)
    if items is not None:  # a map task: elements computed of those to compute (running), or of all (after)
        tip += f"; {items[0]} of {items[1]} items " + ("to compute are done" if status == "running" else "ran")
        label = f"{_label(task)[:14]} {items[0]}/{items[1]}"
    ink = "#ffffff" if status in _LIGHT_TEXT else "#1f2328"
    return (
        f'<g class="dagnb-task s-{status}" data-task="{escape(task)}" data-status="{status}" '
        f'transform="translate({at[0]},{at[1]})"><title>{escape(tip)}</title>'
        f'<rect width="{NODE_W}" height="{NODE_H}" rx="5" fill="{COLORS.get(status, "#fff")}" stroke="#1f232855"/>'
        f'<text x="8" y="17" fill="{ink}">{escape(label)}</text></g>'
    )


def render_svg(
    tasks: list[str],
    upstream: dict[str, list[str]],
    statuses: dict[str, str],
    reasons: dict[str, str] | None = None,
    zoom: float = 1.0,
    items: dict[str, tuple[int, int]] | None = None,
) -> str:
    """The graph as one inline SVG; ``zoom`` scales it (the viewBox keeps coordinates)."""
    place = layout(tasks, upstream)
    reasons, items = reasons or {}, items or {}
    edges = "".join(_edge(place.positions[u], place.positions[t]) for t in tasks for u in upstream[t])
    nodes = "".join(
        _node(t, place.positions[t], statuses.get(t, "pending"), reasons.get(t, ""), items.get(t)) for t in tasks
    )
    w, h = max(place.width, 1), max(place.height, 1)
    return (
        f'<svg class="dagnb-graph" xmlns="http://www.w3.org/2000/svg" width="{round(w * zoom)}" '
        f'height="{round(h * zoom)}" viewBox="0 0 {w} {h}">'
        f'<g class="dagnb-edges" fill="none" stroke="#8c959f" stroke-width="1.2">{edges}</g>{nodes}</svg>'
    )


def _reasons(view: Overview) -> dict[str, str]:
    if view.plan is None:
        return {}
    return {d.task: d.reason for d in view.plan.decisions if d.action in ("run", "pending")}


def render_text(view: Overview) -> str:
    """One line per task, upstream first: status, upstream tasks, why it is stale."""
    width = max((len(t) for t in view.tasks), default=0)
    reasons = _reasons(view)
    lines = [f"dag: {view.summary()}"]
    for task in view.tasks:
        status = view.statuses.get(task, "pending")
        line = f"  {task.ljust(width)}  {status:<9}"
        if view.upstream[task]:
            line += f"  <- {', '.join(view.upstream[task])}"
        if task in reasons and status in ("stale", "pending"):
            line += f"  ({reasons[task]})"
        lines.append(line.rstrip())
    if view.problem:
        lines.append(f"  cannot plan: {view.problem}")
    return "\n".join(lines)


def render_html(view: Overview, zoom: float = 1.0) -> str:
    """Summary, legend and the scrollable SVG graph."""
    problem = f'<p class="dagnb-problem">{escape(view.problem)}</p>' if view.problem else ""
    items = view.trace.items if view.trace is not None else {}
    svg = render_svg(view.tasks, view.upstream, view.statuses, _reasons(view), zoom, items) if view.tasks else ""
    return (
        f'{style()}<div class="dagnb-graph-view"><b>{escape(view.summary())}</b>{legend()}{problem}'
        f'<div class="dagnb-scroll">{svg}</div></div>'
    )
