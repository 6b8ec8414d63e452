"""The graph view: tasks laid out by dependency level, colored by status.

Upstream is on the left, downstream on the right; a level with many tasks
wraps into several columns so a wide graph stays compact, and a graph with
more levels than fit in :data:`WRAP_WIDTH` continues in a band below (a long
chain turns like a line of text), its edges routed through the gaps between
boxes. The SVG fits the width it is given (``zoom="fit"``: scaled down, never
up) or keeps a fixed scale and scrolls inside its frame, with a visible
scrollbar. It has no ids and no scripts, so copies of it can share a page and
it renders with no network and no JavaScript.

A live view draws the same picture in tiles (:func:`render_tiles`): runs of
whole bands, at most :data:`TILE_TASKS` tasks each, every tile an SVG as wide
as the whole drawing whose viewBox is its slice of the same coordinates, so
stacked with no gap they show the one drawing. A tile draws its tasks and the
edges into them (an edge from a band above leaves the tile's box, hence
``overflow="visible"``). A tile's text depends only on its own tasks, their
upstream positions and the drawing's width, so a status change, or a task
appended below, changes the text of one tile and leaves the others equal:
a live view sends only the tiles whose text changed. A graph of one tile is
drawn exactly as :func:`render_svg` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from html import escape

from dagnb.overview import Overview, levels
from dagnb.plan import MAY_RUN
from dagnb.status import WAITING
from dagnb.widgets._format import COLORS, legend, style

__all__ = [
    "TILE_TASKS",
    "WRAP_WIDTH",
    "Layout",
    "layout",
    "render_html",
    "render_svg",
    "render_text",
    "render_tiles",
    "tiles",
]

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 150, 26, 56, 10, 12
BAND_GAP = 30  # between two bands of levels: room for the edges that go from one to the next
MAX_ROWS = 40  # a level with more tasks wraps into further columns
TILE_TASKS = 32  # at most this many tasks per tile of a live view (unless one band holds more)
WRAP_WIDTH = 880  # a drawing wider than this continues in a band below (a notebook's output is ~900 px wide)
_LIGHT_TEXT = {"running", "done", "failed", "cancelled", "timed-out", "interrupted"}


@dataclass(frozen=True)
class Layout:
    """Top-left corner of each task's box, the size of the drawing, and the band of each task."""

    positions: dict[str, tuple[int, int]]
    width: int
    height: int
    bands: dict[str, int] | None = None  # task -> band (0 = top), when the levels wrap
    band_bottoms: tuple[int, ...] = ()  # the lowest y of each band's boxes


def _columns(tasks: list[str], upstream: dict[str, list[str]]) -> list[list[str]]:
    level = levels(tasks, upstream)
    by_level: dict[int, list[str]] = {}
    for task in tasks:
        by_level.setdefault(level[task], []).append(task)
    columns: list[list[str]] = []
    row_of: dict[str, float] = {}
    for lvl in sorted(by_level):
        members = by_level[lvl]
        if len(members) > 1:  # barycenter: sit near the mean row of your upstream tasks (fewer crossings)
            members.sort(key=lambda t: sum(row_of[u] for u in upstream[t]) / len(upstream[t]) if upstream[t] else -1)
        for start in range(0, len(members), MAX_ROWS):
            column = members[start : start + MAX_ROWS]
            for i, t in enumerate(column):
                row_of[t] = float(i)
            columns.append(column)
    return columns


def layout(tasks: list[str], upstream: dict[str, list[str]], width: int | None = None) -> Layout:
    """Place ``tasks`` (upstream first) in columns by level; wider than ``width``, in bands of columns."""
    columns = _columns(tasks, upstream)
    per_band = len(columns) or 1
    if width is not None:
        per_band = max(1, (width - 2 * PAD + GAP_X) // (NODE_W + GAP_X))
    bands = [columns[i : i + per_band] for i in range(0, len(columns), per_band)] or [[]]
    left = PAD + (GAP_X // 2 if len(bands) > 1 else 0)  # room for edges coming down into a band's first column
    positions: dict[str, tuple[int, int]] = {}
    band_of: dict[str, int] = {}
    bottoms: list[int] = []
    top = PAD
    for b, band in enumerate(bands):
        rows = max((len(c) for c in band), default=0)
        for x, column in enumerate(band):
            offset = (rows - len(column)) * (NODE_H + GAP_Y) // 2
            for y, task in enumerate(column):
                positions[task] = (left + x * (NODE_W + GAP_X), top + offset + y * (NODE_H + GAP_Y))
                band_of[task] = b
        bottom = top + rows * (NODE_H + GAP_Y) - (GAP_Y if rows else 0)
        bottoms.append(bottom)
        top = bottom + BAND_GAP
    if not tasks:
        return Layout({}, PAD * 2, PAD * 2)
    widest = max(len(band) for band in bands)
    margin = GAP_X // 2 if len(bands) > 1 else 0  # edges leave a band's last column to the right
    full = left + widest * (NODE_W + GAP_X) - GAP_X + margin + PAD
    return Layout(positions, full, bottoms[-1] + PAD, band_of if len(bands) > 1 else None, tuple(bottoms))


def _label(task: str) -> str:
    return task if len(task) <= 20 else task[:19] + "…"


def _edge(place: Layout, upstream: str, task: str) -> str:
    """A curve between neighbouring columns; from one band to a later one, a path through the gaps."""
    a, b = place.positions[upstream], place.positions[task]
    x1, y1 = a[0] + NODE_W, a[1] + NODE_H // 2
    x2, y2 = b[0], b[1] + NODE_H // 2
    bands = place.bands
    if bands is None or bands[upstream] == bands[task]:
        bend = max(20, (x2 - x1) // 2)
        return f'<path d="M{x1} {y1}C{x1 + bend} {y1} {x2 - bend} {y2} {x2} {y2}"/>'
    down = place.band_bottoms[bands[upstream]] + BAND_GAP // 2  # the gap under the upstream task's band
    out, into = x1 + GAP_X // 2, x2 - GAP_X // 2  # the column gaps right of one box and left of the other
    return f'<path d="M{x1} {y1}H{out}V{down}H{into}V{y2}H{x2}"/>'


@lru_cache(maxsize=8192)  # a redraw after a change draws most boxes as they were: each is drawn once
def _node(task: str, at: tuple[int, int], status: str, reason: str, items: tuple[int, int] | None = None) -> str:
    tip = f"{task}: {status}" + (f" ({reason})" if reason and status in WAITING else "")
    label = _label(task)
    if items is not None:  # a map task: elements computed of those to compute (running), or of all (after)
        tip += f"; {items[0]} of {items[1]} elements " + ("to compute are done" if status == "running" else "ran")
        label = f"{_label(task)[:14]} {items[0]}/{items[1]}"
    ink = "#ffffff" if status in _LIGHT_TEXT else "#1f2328"
    return (
        f'<g class="dagnb-task s-{status}" data-task="{escape(task)}" data-status="{status}" '
        f'transform="translate({at[0]},{at[1]})"><title>{escape(tip)}</title>'
        f'<rect width="{NODE_W}" height="{NODE_H}" rx="5" fill="{COLORS.get(status, "#fff")}" stroke="#1f232855"/>'
        f'<text x="8" y="17" fill="{ink}">{escape(label)}</text></g>'
    )


def _size(w: int, h: int, zoom: float | str) -> str:
    if zoom == "fit":  # drawn at its size, scaled down where the output is narrower (where styles are kept)
        return f'width="{w}" height="{h}" style="max-width:100%;height:auto" data-zoom="fit"'
    scale = float(zoom)
    return f'width="{round(w * scale)}" height="{round(h * scale)}" data-zoom="{scale:g}"'


def _svg(size: str, view_box: str, edges: str, nodes: str, extra: str = "") -> str:
    return (
        f'<svg class="dagnb-graph" xmlns="http://www.w3.org/2000/svg" {size} viewBox="{view_box}"{extra}>'
        f'<g class="dagnb-edges" fill="none" stroke="#8c959f" stroke-width="1.2">{edges}</g>{nodes}</svg>'
    )


def render_svg(
    tasks: list[str],
    upstream: dict[str, list[str]],
    statuses: dict[str, str],
    reasons: dict[str, str] | None = None,
    zoom: float | str = "fit",
    items: dict[str, tuple[int, int]] | None = None,
    width: int | None = WRAP_WIDTH,
    place: Layout | None = None,
) -> str:
    """The graph as one inline SVG, its levels wrapped into bands past ``width`` (``None``: never).

    ``zoom="fit"`` scales the drawing down to the width it is given (never
    up); a number draws it at that scale, to scroll inside its frame. The
    viewBox keeps the coordinates either way. ``place``: the layout, when already known.
    """
    place = place if place is not None else layout(tasks, upstream, width)
    reasons, items = reasons or {}, items or {}
    edges = "".join(_edge(place, u, t) for t in tasks for u in upstream[t])
    nodes = "".join(
        _node(t, place.positions[t], statuses.get(t, "pending"), reasons.get(t, ""), items.get(t)) for t in tasks
    )
    w, h = max(place.width, 1), max(place.height, 1)
    return _svg(_size(w, h, zoom), f"0 0 {w} {h}", edges, nodes)


@dataclass(frozen=True)
class Tile:
    """A run of whole bands: its tasks (in drawing order) and its slice ``[top, bottom)`` of the drawing."""

    tasks: tuple[str, ...]
    top: int
    bottom: int


def tiles(tasks: list[str], place: Layout, most: int = TILE_TASKS) -> list[Tile]:
    """Cut the drawing into tiles of whole bands, at most ``most`` tasks each (a bigger band is one tile).

    Bands are taken greedily from the top, so a change below a tile never
    moves its cut; tiles meet in the middle of the gap between two bands.
    """
    if place.bands is None:
        return [Tile(tuple(tasks), 0, max(place.height, 1))]
    members: list[list[str]] = [[] for _ in place.band_bottoms]
    for task in tasks:
        members[place.bands[task]].append(task)
    cut: list[list[int]] = [[]]
    count = 0
    for b, band in enumerate(members):
        if cut[-1] and count + len(band) > most:
            cut.append([])
            count = 0
        cut[-1].append(b)
        count += len(band)
    out = []
    top = 0
    for i, group in enumerate(cut):
        last = i == len(cut) - 1
        bottom = max(place.height, 1) if last else place.band_bottoms[group[-1]] + BAND_GAP // 2
        out.append(Tile(tuple(t for b in group for t in members[b]), top, bottom))
        top = bottom
    return out


def render_tiles(
    tasks: list[str],
    upstream: dict[str, list[str]],
    statuses: dict[str, str],
    reasons: dict[str, str] | None = None,
    zoom: float | str = "fit",
    items: dict[str, tuple[int, int]] | None = None,
    place: Layout | None = None,
    cut: list[Tile] | None = None,
    only: set[int] | None = None,
) -> list[str | None]:
    """The drawing of :func:`render_svg` as one SVG per tile, to stack with no gap.

    ``place`` and ``cut`` (the layout and its tiles) can be passed when
    already known; with ``only``, tiles not in it are not drawn (``None``).
    """
    place = place if place is not None else layout(tasks, upstream, WRAP_WIDTH)
    cut = cut if cut is not None else tiles(tasks, place)
    if len(cut) == 1 and (only is None or 0 in only):
        return [render_svg(tasks, upstream, statuses, reasons, zoom, items, place=place)]
    reasons, items = reasons or {}, items or {}
    w = max(place.width, 1)
    drawn: list[str | None] = []
    for i, tile in enumerate(cut):
        if only is not None and i not in only:
            drawn.append(None)
            continue
        edges = "".join(_edge(place, u, t) for t in tile.tasks for u in upstream[t])
        nodes = "".join(
            _node(t, place.positions[t], statuses.get(t, "pending"), reasons.get(t, ""), items.get(t))
            for t in tile.tasks
        )
        h = tile.bottom - tile.top
        drawn.append(_svg(_size(w, h, zoom), f"0 {tile.top} {w} {h}", edges, nodes, ' overflow="visible"'))
    return drawn


def _reasons(view: Overview) -> dict[str, str]:
    if view.plan is None:
        return {}
    return {d.task: d.reason for d in view.plan.decisions if d.action in MAY_RUN}


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
        if task in reasons and status in WAITING:
            line += f"  ({reasons[task]})"
        lines.append(line.rstrip())
    if view.problem:
        lines.append(f"  cannot plan: {view.problem}")
    return "\n".join(lines)


def render_html(view: Overview, zoom: float | str = "fit") -> str:
    """Summary, legend and the scrollable SVG graph."""
    problem = f'<p class="dagnb-problem">{escape(view.problem)}</p>' if view.problem else ""
    items = view.trace.items if view.trace is not None else {}
    svg = render_svg(view.tasks, view.upstream, view.statuses, _reasons(view), zoom, items) if view.tasks else ""
    return (
        f'{style()}<div class="dagnb-graph-view"><b>{escape(view.summary())}</b>{legend()}{problem}'
        f'<div class="dagnb-scroll">{svg}</div></div>'
    )
