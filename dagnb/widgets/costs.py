"""The costs view: a table of what each task cost and what the cache saved.

The live table sorts by any column; the fallback lists only what does not
depend on timing (task, status, whether a value is cached, hit count).
"""

from __future__ import annotations

from html import escape

from dagnb.run.costs import TaskCosts
from dagnb.widgets._format import badge, bytes_, num, seconds, style

__all__ = ["COLUMNS", "render_html", "render_text", "sort_rows"]

# column -> (heading, formatter); the order is the table's
COLUMNS = {
    "task": ("task", None),
    "status": ("status", None),
    "duration": ("last duration", seconds),
    "cpu_time": ("CPU time", seconds),
    "peak_memory": ("peak memory +", bytes_),
    "output_bytes": ("output bytes", bytes_),
    "cache_bytes": ("cache bytes", bytes_),
    "hits": ("hits", None),
    "saved": ("time saved", seconds),
}


def sort_rows(rows: list[TaskCosts], by: str = "duration", descending: bool = True) -> list[TaskCosts]:
    """Rows sorted by a column; unknown values go last either way, ties keep task order."""
    if by not in COLUMNS:
        raise ValueError(f"cannot sort costs by `{by}`; columns: {', '.join(COLUMNS)}")
    known = [r for r in rows if getattr(r, by) is not None]
    unknown = [r for r in rows if getattr(r, by) is None]
    return sorted(known, key=lambda r: getattr(r, by), reverse=descending) + unknown


def _cell(row: TaskCosts, column: str) -> str:
    value = getattr(row, column)
    fmt = COLUMNS[column][1]
    if column == "status":
        return f"<td>{badge(value)}</td>"
    if column == "task":
        return f"<td><code>{escape(value)}</code></td>"
    if fmt is None:
        return f'<td class="r">{num(str(value))}</td>'
    return f'<td class="r">{num(fmt(value))}</td>'


def render_html(
    rows: list[TaskCosts], by: str | None = "duration", descending: bool = True, numbers: bool = True
) -> str:
    """The table, sorted ``by`` a column (``None``: task order); with ``numbers`` false, only
    the columns that do not depend on timing."""
    if not numbers:
        body = "".join(
            f"<tr><td><code>{escape(r.task)}</code></td><td>{badge(r.status)}</td>"
            f"<td>{'yes' if r.cache_bytes is not None else 'no'}</td><td class='r'>{r.hits}</td></tr>"
            for r in rows
        )
        head = "<tr><th>task</th><th>status</th><th>cached value</th><th class='r'>hits</th></tr>"
        return f"{style()}<table class='dagnb-table dagnb-costs'>{head}{body}</table>"
    arrow = " ▼" if descending else " ▲"
    head = "".join(
        f"<th class='{'' if c in ('task', 'status') else 'r'}'>{escape(h)}{arrow if c == by else ''}</th>"
        for c, (h, _) in COLUMNS.items()
    )
    ordered = rows if by is None else sort_rows(rows, by, descending)
    body = "".join("<tr>" + "".join(_cell(r, c) for c in COLUMNS) + "</tr>" for r in ordered)
    total = sum(r.saved for r in rows)
    foot = f"<p>time saved by cache hits, all tasks: {num(seconds(total))}</p>" if rows else "<p>no tasks yet</p>"
    return f"{style()}<table class='dagnb-table dagnb-costs'><tr>{head}</tr>{body}</table>{foot}"


def render_text(rows: list[TaskCosts]) -> str:
    """Deterministic: task, status, whether a value is cached, and hits."""
    if not rows:
        return "costs: no tasks yet"
    width = max(len(r.task) for r in rows)
    lines = [f"costs: {len(rows)} tasks (timings, memory and bytes are in the live view)"]
    for r in rows:
        cached = "cached value" if r.cache_bytes is not None else "no cached value"
        lines.append(f"  {r.task.ljust(width)}  {r.status:<9}  {cached}, {r.hits} hits")
    return "\n".join(lines)
