"""The graph tab: the DAG drawn in SVG tiles, zoomable, redrawn tile by tile as statuses change."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

import ipywidgets as w

from dagnb.widgets import graph as graph_render
from dagnb.widgets.view import _fitted

if TYPE_CHECKING:
    from dagnb.overview import Overview

# the graph's scale: "fit" scales it down to the output's width; a number keeps that scale and scrolls
ZOOMS = [("fit to width", "fit"), ("50%", 0.5), ("75%", 0.75), ("100%", 1.0), ("150%", 1.5), ("200%", 2.0)]


class _GraphPanel:
    """The graph tab: a zoom menu, the legend, the drawing in tiles, and why the graph cannot be planned.

    It remembers what each task's box shows, so a redraw during a run renders
    the tiles of the tasks whose status or item count changed and nothing
    else; a new snapshot's tiles are rendered once for every view showing it
    (and sent only where their text changed).
    """

    def __init__(self, redraw: Callable[[], None]) -> None:
        self.zoom = w.Dropdown(options=ZOOMS, value="fit", description="zoom", layout=w.Layout(width="220px"))
        self.legend = w.HTML(graph_render.legend())
        self.frame = w.VBox([])
        self.frame.add_class("dagnb-scroll")
        self.frame.add_class("dagnb-tiles")
        self.problem = w.HTML()
        self.tiles: list[w.HTML] = []
        self.box = w.VBox([self.zoom, self.legend, self.frame, self.problem])
        self.drawn: tuple[Overview | None, object] = (None, None)  # (snapshot, zoom) the tiles were drawn for
        # task -> (status, items) shown, for the tasks shown otherwise than in the snapshot (a run going on)
        self.overlaid: dict[str, tuple[str, tuple[int, int] | None]] = {}
        self.zoom.observe(lambda _: redraw(), "value")

    @property
    def value(self) -> str:
        """The panel's HTML as one string (the tiles stacked), as a frontend shows it."""
        tiles = "".join(t.value for t in self.tiles)
        return f"{self.legend.value}<div class='dagnb-scroll'>{tiles}</div>{self.problem.value}"

    def draw(self, view: Overview, live: dict[str, str], live_items: dict[str, tuple[int, int]]) -> None:
        """Show ``view`` with the statuses and item counts of a run going on (``live``, ``live_items``)."""
        place, cut, tile_of = view.derived("tiles", lambda: _tiling(view))
        base = view.derived("items", lambda: dict(view.trace.items) if view.trace is not None else {})
        reasons = view.derived("reasons", lambda: graph_render._reasons(view))
        zoom = self.zoom.value
        items = {**base, **live_items} if live_items else base
        statuses = {**view.statuses, **live} if live else view.statuses

        def state(t: str) -> tuple[str, tuple[int, int] | None]:
            return statuses.get(t, "pending"), items.get(t)

        def drawn(t: str) -> tuple[str, tuple[int, int] | None]:
            return self.overlaid.get(t) or (view.statuses.get(t, "pending"), base.get(t))

        same = self.drawn[0] is view and self.drawn[1] == zoom
        overlaid = {
            t: state(t) for t in (*live, *live_items) if state(t) != (view.statuses.get(t, "pending"), base.get(t))
        }
        if same:  # what changed since the last drawing: tasks shown with a live value, now or then
            changed = {tile_of[t] for t in {*overlaid, *self.overlaid} if state(t) != drawn(t)}
            svgs = (
                graph_render.render_tiles(
                    view.tasks, view.upstream, statuses, reasons, zoom, items, place, cut, only=changed
                )
                if changed
                else []
            )
        elif not overlaid:  # the snapshot as taken: every view showing it shares its drawing
            svgs = view.derived(
                ("svg", zoom),
                lambda: graph_render.render_tiles(
                    view.tasks, view.upstream, statuses, reasons, zoom, items, place, cut
                ),
            )
        else:
            svgs = graph_render.render_tiles(view.tasks, view.upstream, statuses, reasons, zoom, items, place, cut)
        self.drawn, self.overlaid = (view, zoom), overlaid
        self._show(svgs, len(cut) if view.tasks else 0)
        self.problem.value = f"<p class='dagnb-problem'>{escape(view.problem)}</p>" if view.problem else ""

    def _show(self, svgs: list[str | None], count: int) -> None:
        """Set the tiles' values (only those drawn); add or close tile widgets when their number changed."""
        if count != len(self.tiles):
            while len(self.tiles) > count:
                self.tiles.pop().close()
            while len(self.tiles) < count:
                tile = _fitted()
                tile.add_class("dagnb-tile")
                self.tiles.append(tile)
            self.frame.children = tuple(self.tiles)
        for tile, svg in zip(self.tiles, svgs):
            if svg is not None:
                tile.value = svg


def _tiling(view: Overview) -> tuple[graph_render.Layout, list[graph_render.Tile], dict[str, int]]:
    place = graph_render.layout(view.tasks, view.upstream, graph_render.WRAP_WIDTH)
    cut = graph_render.tiles(view.tasks, place)
    return place, cut, {t: i for i, tile in enumerate(cut) for t in tile.tasks}


def _counts(view: Overview, live: dict[str, str]) -> str:
    """``2 done, 1 running``: the snapshot's counts (counted once per snapshot), moved by the live statuses."""
    from dagnb.status import STATUSES

    found = Counter(view.derived("counts", lambda: Counter(view.statuses.values())))
    for task, status in live.items():
        if task in view.statuses:
            found[view.statuses[task]] -= 1
        found[status] += 1
    return ", ".join(f"{found[s]} {s}" for s in STATUSES if found[s] > 0) or "no tasks yet"
