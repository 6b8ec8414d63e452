"""The trace view: the session's runs on one timeline, or one run's Gantt chart, with totals.

The session timeline puts the runs since the kernel started side by side in
the order they ran (each cell that ran tasks is one run; the time between
cells is left out), with a table naming, run by run, what ran, what was
loaded from the cache and what was already in memory. One run alone is a
Gantt chart with its critical path outlined. Either way there is one lane per
worker (``main`` is the kernel's thread, where cache loads happen), tasks that
ran at the same time on one lane (async tasks) get rows of their own, bars
are colored by status and cache loads are striped. The fallbacks list what
happened to each task, and nothing that depends on timing.
"""

from __future__ import annotations

from html import escape

from dagnb.trace import Span, Timeline, Trace, lane_rows
from dagnb.widgets._format import COLORS, legend, num, seconds, style

__all__ = [
    "render_html",
    "render_svg",
    "render_text",
    "render_timeline_html",
    "render_timeline_svg",
    "render_timeline_text",
    "run_label",
]

LANE_H, LABEL_W, CHART_W, AXIS_H, PAD = 24, 90, 640, 22, 8
RUN_H = 14  # the row of run labels above the session timeline
MOST_NAMED = 6  # tasks a table cell names before it counts the rest
# what happened to a task in a run, in the order counts and tables list them
PARTS = ("ran", "loaded from cache", "already in memory", "failed", "timed out", "interrupted", "skipped", "cancelled")
_STRIPES = (
    '<defs><pattern id="dagnb-load-stripes" width="6" height="6" patternUnits="userSpaceOnUse" '
    'patternTransform="rotate(45)"><rect width="3" height="6" fill="#ffffff99"/></pattern></defs>'
)


def _bar(span: Span, x: float, y: float, w: float, critical: bool, tip: str, run: int | None = None) -> str:
    stroke = ' stroke="#1f2328" stroke-width="2"' if critical else ""
    stripes = (
        f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{LANE_H - 6}" fill="url(#dagnb-load-stripes)"/>'
        if span.kind == "load"
        else ""
    )
    label = f'<text x="{x + 3:.1f}" y="{y + 13}" fill="#1f2328">{escape(span.task)}</text>' if w > 40 else ""
    in_run = f' data-run="{run}"' if run is not None else ""
    return (
        f'<g class="dagnb-span{" dagnb-critical" if critical else ""}" data-task="{escape(span.task)}" '
        f'data-kind="{span.kind}"{in_run}><title>{escape(tip)}</title>'
        f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{LANE_H - 6}" rx="2" '
        f'fill="{COLORS.get(span.status, "#fff")}"{stroke}/>{stripes}{label}</g>'
    )


def _tip(trace: Trace, span: Span, shift: float = 0.0) -> str:
    what = trace.what(span.task)
    if span.task in trace.items:
        what += f", {trace.items[span.task][0]} of {trace.items[span.task][1]} elements"
    return f"{span.task}: {what}, {seconds(span.duration)} from {seconds(span.start + shift)}"


def _axis(total: float, rows: int, top: int) -> str:
    """Five ticks, their times along the top edge, their lines down to the last row."""
    ticks = []
    for k in range(5):
        x = LABEL_W + k * CHART_W / 4
        ticks.append(
            f'<line x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{top + rows * LANE_H}" stroke="#eaeef2"/>'
            f'<text x="{x:.1f}" y="12" fill="#57606a" text-anchor="middle">{escape(seconds(total * k / 4))}</text>'
        )
    return "".join(ticks)


def _svg(body: str, rows: int, top: int) -> str:
    width, height = LABEL_W + CHART_W + 40, top + max(rows, 1) * LANE_H + PAD
    return (
        f'<svg class="dagnb-gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="max-width:100%;height:auto">{_STRIPES}{body}</svg>'
    )


def render_svg(trace: Trace) -> str:
    """One run's Gantt chart; x is seconds since the run started."""
    rows = trace.rows()
    total = max(trace.wall_time, max((s.end for s in trace.spans), default=0.0), 1e-9)
    scale = CHART_W / total
    critical = set(trace.critical)
    parts = [_axis(total, len(rows), AXIS_H)]
    for i, (label, spans) in enumerate(rows):
        y = AXIS_H + i * LANE_H
        parts.append(f'<text x="{PAD}" y="{y + 15}" fill="#57606a">{escape(label)}</text>')
        for span in spans:
            x, w = LABEL_W + span.start * scale, max(span.duration * scale, 1.0)
            parts.append(_bar(span, x, y + 3, w, span.task in critical, _tip(trace, span)))
    return _svg("".join(parts), len(rows), AXIS_H)


def render_timeline_svg(timeline: Timeline) -> str:
    """Every run of the session side by side in the order they ran (the time between cells left out)."""
    total = max(timeline.wall_time, 1e-9)
    scale = CHART_W / total
    owner: dict[Span, Trace] = {}  # each span moved to its run's place on the timeline -> its run
    starts: dict[int, float] = {}
    offset = 0.0
    for trace in timeline.runs:
        starts[trace.run_id] = offset
        owner.update({s._replace(start=s.start + offset, end=s.end + offset): trace for s in trace.spans})
        offset += max(trace.wall_time, max((s.end for s in trace.spans), default=0.0))
    shifted = list(owner)
    lanes = list(dict.fromkeys(["main"] if any(s.lane == "main" for s in shifted) else []))
    lanes += [
        lane for lane in dict.fromkeys(s.lane for s in sorted(shifted, key=lambda s: s.start)) if lane not in lanes
    ]
    rows = lane_rows(shifted, lanes)
    top = AXIS_H + RUN_H
    parts = [_axis(total, len(rows), top)]
    for trace in timeline.runs:
        x0, w = LABEL_W + starts[trace.run_id] * scale, trace.wall_time * scale
        tip = f"run {trace.run_id}{' · ' + trace.origin if trace.origin else ''}: {counts(trace)}"
        parts.append(
            f'<g class="dagnb-run" data-run="{trace.run_id}"><title>{escape(tip)}</title>'
            f'<rect x="{x0:.1f}" y="{AXIS_H - 2}" width="{max(w, 1.0):.1f}" height="{RUN_H + len(rows) * LANE_H}" '
            f'fill="#f6f8fa" stroke="#d0d7de" stroke-width="0.5"/>'
            + (f'<text x="{x0 + 3:.1f}" y="{AXIS_H + 10}" fill="#57606a">run {trace.run_id}</text>' if w >= 40 else "")
            + "</g>"
        )
    for i, (label, spans) in enumerate(rows):
        y = top + i * LANE_H
        parts.append(f'<text x="{PAD}" y="{y + 15}" fill="#57606a">{escape(label)}</text>')
        for span in spans:
            trace = owner[span]
            x, w = LABEL_W + span.start * scale, max(span.duration * scale, 1.0)
            shift = starts[trace.run_id]
            local = span._replace(start=span.start - shift, end=span.end - shift)
            parts.append(_bar(span, x, y + 3, w, span.task in trace.critical, _tip(trace, local), trace.run_id))
    return _svg("".join(parts), len(rows), top)


def counts(trace: Trace) -> str:
    """``2 ran, 1 loaded from cache, 3 already in memory``: always how many ran, then what else happened."""
    parts = trace.parts()
    return ", ".join(f"{len(parts.get(p, []))} {p}" for p in PARTS if parts.get(p) or p == "ran")


def _parallelism(task: float, wall: float) -> str:
    share = task / wall
    return f"{share:.1f}×" if share >= 0.05 else "<0.1×"  # tasks of microseconds in a run of milliseconds


def _totals(wall: float, task: float, saved: float) -> str:
    ran = (
        f"task time {num(seconds(task))} · parallelism {num(_parallelism(task, wall))}"
        if task > 0 and wall > 0
        else "no task ran"
    )
    return f"wall time {num(seconds(wall))} · {ran} · saved by cache loads {num(seconds(saved))}"


def run_label(trace: Trace) -> str:
    """``run 3 · [7] %dag run``: a run as a menu names it."""
    return f"run {trace.run_id}" + (f" · {trace.origin}" if trace.origin else "")


def _named(tasks: list[str]) -> str:
    shown = ", ".join(f"<code>{escape(t)}</code>" for t in tasks[:MOST_NAMED])
    return shown + (f" +{len(tasks) - MOST_NAMED} more" if len(tasks) > MOST_NAMED else "")


def _runs_table(timeline: Timeline, numbers: bool) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("run", "cell", "ran", "loaded from cache", "already in memory", "other"))
    head += "<th class='r'>wall time</th>" if numbers else ""
    rows = []
    for trace in timeline.runs:
        parts = trace.parts()
        other = "; ".join(f"{p}: {_named(parts[p])}" for p in PARTS[3:] if parts.get(p))
        cells = [str(trace.run_id), escape(trace.origin), *(_named(parts.get(p, [])) for p in PARTS[:3]), other]
        row = "".join(f"<td>{c}</td>" for c in cells)
        row += f"<td class='r'>{num(seconds(trace.wall_time))}</td>" if numbers else ""
        rows.append(f"<tr data-run='{trace.run_id}'>{row}</tr>")
    return f"<table class='dagnb-table dagnb-runs'><tr>{head}</tr>{''.join(rows)}</table>"


def render_html(trace: Trace | None, numbers: bool = True) -> str:
    """One run: counts, totals, critical path and Gantt; with ``numbers`` false, the deterministic task list."""
    if trace is None:
        return "<p class='dagnb-trace'>no run yet: <code>%dag run</code> records a trace</p>"
    head = f"<b>{escape(run_label(trace))}: {escape(counts(trace))}</b>"
    if not numbers:
        items = "".join(f"<li><code>{escape(t)}</code>: {escape(trace.what(t))}</li>" for t in trace.tasks)
        return f"<div class='dagnb-trace'>{head}<ul>{items}</ul></div>"
    # which chain is critical depends on timing, so it is masked like a number
    path = num(" → ".join(trace.critical) or "none")
    return (
        f"{style()}<div class='dagnb-trace'>{head}<p>{_totals(trace.wall_time, trace.task_time, trace.saved)}</p>"
        f"<p>critical path (outlined): {path}</p>{legend(('done', 'cached', 'failed'))}"
        f"<div class='dagnb-scroll'>{render_svg(trace)}</div>"
        f"<p style='font-size:11px;color:#57606a'>striped bars are cache loads</p></div>"
    )


def _session_counts(timeline: Timeline) -> str:
    total: dict[str, int] = {}
    for trace in timeline.runs:
        for part, tasks in trace.parts().items():
            total[part] = total.get(part, 0) + len(tasks)
    return ", ".join(f"{total.get(p, 0)} {p}" for p in PARTS if total.get(p) or p == "ran")


def _session_head(timeline: Timeline) -> str:
    n = len(timeline.runs)
    dropped = f" (and {timeline.dropped} older, no longer kept)" if timeline.dropped else ""
    return f"{n} run{'s' if n != 1 else ''} since the kernel started{dropped}: {_session_counts(timeline)}"


def render_timeline_html(timeline: Timeline | None, run: int | None = None, numbers: bool = True) -> str:
    """The session's runs on one timeline, with the table of runs; or run ``run`` alone."""
    if timeline is None or not timeline.runs:
        return render_html(None)
    if run is not None:
        return render_html(timeline.run(run), numbers)
    head = f"<b>{escape(_session_head(timeline))}</b>"
    if not numbers:
        return f"<div class='dagnb-trace'>{head}{_runs_table(timeline, numbers=False)}</div>"
    return (
        f"{style()}<div class='dagnb-trace dagnb-timeline'>{head}"
        f"<p>{_totals(timeline.wall_time, timeline.task_time, timeline.saved)} (the time between cells left out)</p>"
        f"{legend(('done', 'cached', 'failed'))}<div class='dagnb-scroll'>{render_timeline_svg(timeline)}</div>"
        f"<p style='font-size:11px;color:#57606a'>striped bars are cache loads; each run's critical path is "
        f"outlined</p>{_runs_table(timeline, numbers=True)}</div>"
    )


def render_text(trace: Trace | None) -> str:
    """Deterministic: one run's tasks in order with what happened to each."""
    if trace is None:
        return "trace: no run yet (%dag run records one)"
    width = max((len(t) for t in trace.tasks), default=0)
    lines = [f"trace of {run_label(trace)}: {counts(trace)} (timings are in the live view)"]
    lines += [f"  {t.ljust(width)}  {trace.what(t)}" for t in trace.tasks]
    return "\n".join(lines)


def render_timeline_text(timeline: Timeline | None) -> str:
    """Deterministic: each run of the session, what ran, was loaded and was already in memory."""
    if timeline is None or not timeline.runs:
        return render_text(None)
    lines = [f"trace: {_session_head(timeline)} (timings are in the live view)"]
    for trace in timeline.runs:
        parts = trace.parts()
        said = "; ".join(f"{', '.join(parts[p])} {p}" for p in PARTS if parts.get(p))
        lines.append(f"  {run_label(trace)}: {said}")
    return "\n".join(lines)
