"""Shared pieces of the views: status colors, number formats, HTML helpers.

Numbers (times, bytes) only appear inside ``<span class="dagnb-num">`` so a
notebook validator can mask them (``extension/nbval/sanitize.cfg``); the
deterministic fallbacks never contain any.
"""

from __future__ import annotations

from html import escape

from dagnb.status import STATUSES

__all__ = ["COLORS", "bytes_", "legend", "num", "seconds", "style"]

COLORS = {
    "pending": "#d0d7de",
    "stale": "#f2c744",
    "running": "#4c8df6",
    "done": "#2da44e",
    "cached": "#8cd9a6",
    "failed": "#d1242f",
    "skipped": "#b3a6d9",
    "cancelled": "#8c959f",
    "timed-out": "#e16f24",
    "interrupted": "#bf8700",
}


def seconds(value: float | None) -> str:
    """``1.52 s``, ``38 ms``, ``120 µs``, ``2 min 5 s``; ``–`` when unknown."""
    if value is None:
        return "–"
    if value == 0:
        return "0 s"
    if value >= 120:
        return f"{int(value // 60)} min {value % 60:.0f} s"
    if value >= 1:
        return f"{value:.2f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.0f} ms"
    return f"{value * 1e6:.0f} µs"


def bytes_(value: int | None) -> str:
    """``512 B``, ``3.4 KiB``, ``1.2 GiB``; ``–`` when unknown."""
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover - the loop always returns


def num(text: str) -> str:
    """Wrap a measured number so validators can mask it."""
    return f'<span class="dagnb-num">{escape(text)}</span>'


def legend(statuses: tuple[str, ...] = STATUSES) -> str:
    """A row of colored swatches, one per status."""
    items = "".join(
        f'<span class="dagnb-legend-item"><span class="dagnb-swatch" style="background:{COLORS[s]}"></span>{s}</span>'
        for s in statuses
    )
    return f'<div class="dagnb-legend">{items}</div>'


def style() -> str:
    """The stylesheet every view carries (no ids, so repeated copies agree)."""
    return (
        "<style>"
        ".dagnb-legend{display:flex;flex-wrap:wrap;gap:10px;font-size:12px;margin:4px 0}"
        ".dagnb-legend-item{display:inline-flex;align-items:center;gap:4px}"
        ".dagnb-swatch{display:inline-block;width:11px;height:11px;border-radius:2px;border:1px solid #0003}"
        ".dagnb-scroll{overflow:auto;max-height:480px;max-width:100%;border:1px solid #d0d7de;border-radius:4px;"
        # a drawing wider or taller than its frame shows it: shadows at the edges with more to see (they scroll
        # away with the content), and scrollbars that stay drawn where the system hides them until used
        "background:linear-gradient(to right,#fff 30%,#fff0) left/32px 100% no-repeat local,"
        "linear-gradient(to left,#fff 30%,#fff0) right/32px 100% no-repeat local,"
        "radial-gradient(farthest-side at 0 50%,#0003,#0000) left/12px 100% no-repeat scroll,"
        "radial-gradient(farthest-side at 100% 50%,#0003,#0000) right/12px 100% no-repeat scroll;"
        "scrollbar-width:thin;scrollbar-color:#8c959f #f6f8fa}"
        ".dagnb-scroll::-webkit-scrollbar{width:10px;height:10px;background:#f6f8fa}"
        ".dagnb-scroll::-webkit-scrollbar-thumb{background:#8c959f;border-radius:5px}"
        # an HTML widget grows to its content's width unless told not to: then its frame, not the page, scrolls
        ".dagnb-fit,.dagnb-fit>.widget-html-content,.dagnb-fit>.jupyter-widget-html-content{min-width:0;max-width:100%}"
        # a drawing in tiles: stacked with no gap, each as wide as its frame (the edges into a tile start above it)
        ".dagnb-tiles>.dagnb-tile{margin:0;flex-shrink:0}"
        ".dagnb-tile>.widget-html-content,.dagnb-tile>.jupyter-widget-html-content{line-height:0}"
        ".dagnb-tile svg{display:block}"
        ".dagnb-table{border-collapse:collapse;font-size:12px}"
        ".dagnb-table th,.dagnb-table td{padding:2px 8px;text-align:left;border-bottom:1px solid #eaeef2}"
        ".dagnb-table td.r,.dagnb-table th.r{text-align:right}"
        ".dagnb-graph text,.dagnb-gantt text{font:11px sans-serif}"
        "@keyframes dagnb-pulse{50%{opacity:.55}}"
        ".dagnb-graph .s-running rect{animation:dagnb-pulse 1s infinite}"
        "</style>"
    )


def badge(status: str) -> str:
    color = COLORS.get(status, "#ffffff")
    return f'<span class="dagnb-swatch" style="background:{color}"></span> {escape(status)}'
