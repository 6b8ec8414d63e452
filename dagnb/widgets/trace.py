"""The trace view: a Gantt chart of the latest run, its critical path and totals.

One lane per worker (``main`` is the kernel's thread, where cache loads
happen); bars are colored by status, cache loads are striped, and the bars
of the critical path are outlined. The fallback names the tasks of the run
in order with their statuses, and nothing that depends on timing.
"""

from __future__ import annotations

from html import escape

from ..trace import Trace
from ._format import COLORS, legend, num, seconds, style

__all__ = ["render_html", "render_svg", "render_text"]

LANE_H, LABEL_W, CHART_W, AXIS_H, PAD = 24, 90, 640, 22, 8
_STRIPES = (
    '<defs><pattern id="dagnb-load-stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="3" height="6" fill="#ffffff99"/></pattern></defs>'
)


def _bar(span_task: str, x: float, y: float, w: float, status: str, kind: str, critical: bool, tip: str) -> str:
    stroke = ' stroke="#1f2328" stroke-width="2"' if critical else ""
    stripes = (
        f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{LANE_H - 6}" fill="url(#dagnb-load-stripes)"/>'
        if kind == "load"
        else ""
    )
    label = f'<text x="{x + 3:.1f}" y="{y + 13}" fill="#1f2328">{escape(span_task)}</text>' if w > 40 else ""
    return (
        f'<g class="dagnb-span{" dagnb-critical" if critical else ""}" data-task="{escape(span_task)}" '
        f'data-kind="{kind}"><title>{escape(tip)}</title>'
        f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{LANE_H - 6}" rx="2" fill="{COLORS.get(status, "#fff")}"{stroke}/>'
        f"{stripes}{label}</g>"
    )


def render_svg(trace: Trace) -> str:
    """The Gantt chart; x is seconds since the run started."""
    lanes = trace.lanes
    span_end = max((s.end for s in trace.spans), default=0.0)
    total = max(trace.wall_time, span_end, 1e-9)
    scale = CHART_W / total
    critical = set(trace.critical)
    rows = []
    for i, lane in enumerate(lanes):
        y = AXIS_H + i * LANE_H
        rows.append(f'<text x="{PAD}" y="{y + 15}" fill="#57606a">{escape(lane)}</text>')
    for span in trace.spans:
        y = AXIS_H + lanes.index(span.lane) * LANE_H + 3
        x, w = LABEL_W + span.start * scale, max(span.duration * scale, 1.0)
        what = "loaded from cache" if span.kind == "load" else span.status
        if span.task in trace.items:
            what += f", {trace.items[span.task][0]} of {trace.items[span.task][1]} items"
        tip = f"{span.task}: {what}, {seconds(span.duration)} from {seconds(span.start)}"
        rows.append(_bar(span.task, x, y, w, span.status, span.kind, span.task in critical, tip))
    ticks = []
    for k in range(5):
        x = LABEL_W + k * CHART_W / 4
        ticks.append(
            f'<line x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{AXIS_H + len(lanes) * LANE_H}" stroke="#eaeef2"/>'
            f'<text x="{x:.1f}" y="12" fill="#57606a" text-anchor="middle">{escape(seconds(total * k / 4))}</text>'
        )
    width, height = LABEL_W + CHART_W + 40, AXIS_H + max(len(lanes), 1) * LANE_H + PAD
    return (
        f'<svg class="dagnb-gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">{_STRIPES}{"".join(ticks)}{"".join(rows)}</svg>'
    )


def _totals(trace: Trace) -> str:
    parallel = trace.task_time / trace.wall_time if trace.wall_time > 0 else 0.0
    return (
        f"wall time {num(seconds(trace.wall_time))} · task time {num(seconds(trace.task_time))} "
        f"· parallelism {num(f'{parallel:.1f}×')} · saved by cache loads {num(seconds(trace.saved))}"
    )


def _counts(trace: Trace) -> str:
    named = (("done", "ran"), ("cached", "cached"), ("failed", "failed"), ("timed-out", "timed-out"),
             ("interrupted", "interrupted"), ("skipped", "skipped"), ("cancelled", "cancelled"))
    return ", ".join(f"{trace.count(s)} {w}" for s, w in named if trace.count(s) or s in ("done", "cached"))


def render_html(trace: Trace | None, numbers: bool = True) -> str:
    """Totals, critical path and Gantt; with ``numbers`` false, the deterministic task list."""
    if trace is None:
        return "<p class='dagnb-trace'>no run yet: <code>%dag run</code> records a trace</p>"
    head = f"<b>run {trace.run_id}: {escape(_counts(trace))}</b>"
    if not numbers:
        items = "".join(f"<li><code>{escape(t)}</code>: {escape(trace.statuses.get(t, 'cancelled'))}</li>"
                        for t in trace.tasks)
        return f"<div class='dagnb-trace'>{head}<ul>{items}</ul></div>"
    # which chain is critical depends on timing, so it is masked like a number
    path = num(" → ".join(trace.critical) or "none")
    return (
        f"{style()}<div class='dagnb-trace'>{head}<p>{_totals(trace)}</p>"
        f"<p>critical path (outlined): {path}</p>{legend(('done', 'cached', 'failed'))}"
        f"<div class='dagnb-scroll'>{render_svg(trace)}</div>"
        f"<p style='font-size:11px;color:#57606a'>striped bars are cache loads</p></div>"
    )


def render_text(trace: Trace | None) -> str:
    """Deterministic: the run's tasks in order with their statuses."""
    if trace is None:
        return "trace: no run yet (%dag run records one)"
    width = max((len(t) for t in trace.tasks), default=0)
    lines = [f"trace of run {trace.run_id}: {_counts(trace)} (timings are in the live view)"]
    lines += [f"  {t.ljust(width)}  {trace.statuses.get(t, 'cancelled')}" for t in trace.tasks]
    return "\n".join(lines)
