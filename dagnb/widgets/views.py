"""The widgets: thin ipywidgets shells over the pure renderers.

Each view holds the :class:`~dagnb.overview.Overview` it last drew, renders
it with the ``render_*`` functions of its module, and, when live, follows
the session's events through a :class:`~dagnb.widgets.live.LiveFeed`.
Displayed, a view is one output bundle: the widget for Jupyter frontends, a
deterministic ``text/plain`` and ``text/html`` for everything else, and
timings in the output metadata.

Responsibilities:
    * build the widget tree once, and set only trait values afterwards,
      inside ``hold_sync`` so one redraw is one message per widget;
    * send what changed: a trait set to the value it has sends nothing, the
      graph is drawn in tiles (:func:`~dagnb.widgets.graph.render_tiles`) of
      which a redraw renders only those whose tasks changed and sends only
      those whose text changed, and the plan, costs and trace tabs are drawn
      when shown (a hidden tab is redrawn when it is selected);
    * share one snapshot: views redrawn at the same moment (after a cell, at
      a run's end) take one :class:`~dagnb.overview.Overview` between them
      and derive its drawings once (:meth:`~dagnb.overview.Overview.derived`);
    * never print and never use an ``Output`` widget: updates travel as
      comm messages, which validators ignore.
"""

from __future__ import annotations

import itertools
import weakref
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as w

from dagnb.events import (
    Event,
    RunStarted,
    TaskFinished,
    TaskProgress,
    TaskStarted,
)
from dagnb.overview import Planned
from dagnb.status import WITH_VALUE
from dagnb.widgets import costs as costs_view
from dagnb.widgets import graph as graph_view
from dagnb.widgets import trace as trace_view
from dagnb.widgets._format import style
from dagnb.widgets.live import LiveFeed
from dagnb.widgets.progress import Tally
from dagnb.widgets.progress import render_html as render_progress

if TYPE_CHECKING:
    from dagnb.api import Graph
    from dagnb.overview import Overview

__all__ = ["WIDGET_MIME", "CostsView", "DagView", "RunProgress", "TraceView"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
HIDDEN = {WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": ""}}
MAX_LIVE = 6  # older views keep their last drawing and stop following events
# the graph's scale: "fit" scales it down to the output's width; a number keeps that scale and scrolls
ZOOMS = [("fit to width", "fit"), ("50%", 0.5), ("75%", 0.75), ("100%", 1.0), ("150%", 1.5), ("200%", 2.0)]


def _fitted() -> w.HTML:
    """An HTML widget as wide as its output and no wider: a wide drawing scrolls in its own frame."""
    html = w.HTML()
    html.add_class("dagnb-fit")
    return html


def _static(html: str) -> str:
    return f'<div class="dagnb-static">{html}</div>'


def _widget_ref(widget: w.Widget) -> dict[str, Any]:
    return {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}


# the last snapshot taken for views of each graph, and the moment it stands for
_snapshots: weakref.WeakKeyDictionary[Any, tuple[tuple[object, ...], Overview]] = weakref.WeakKeyDictionary()


def _shared(graph: Graph, moment: tuple[object, ...], take: Callable[[], Overview]) -> Overview:
    """The snapshot of ``moment`` (objects compared by identity: a plan, an event, a snapshot), taken once.

    Every view redrawn at one moment is handed the same objects (the plan
    after a cell, the event that ended a run), so the first view takes the
    snapshot and the others reuse it. A moment of only ``None`` is never shared.
    """
    if all(part is None for part in moment):
        return take()
    last = _snapshots.get(graph)
    if last is not None and len(last[0]) == len(moment) and all(a is b for a, b in zip(last[0], moment)):
        return last[1]
    view = take()
    _snapshots[graph] = (moment, view)
    return view


class _View:
    """A snapshot, an optional live widget, and a bundle with fallbacks."""

    kind = "view"
    _live: ClassVar[list[_View]] = []

    def __init__(self, graph: Graph, live: bool = True) -> None:
        self.graph = graph
        self.view: Overview = graph.overview()
        self.widget: w.Widget | None = None
        self.feed: LiveFeed | None = None
        if live:
            self.widget = self._build()
            self._draw(full=True)
            self.feed = LiveFeed(graph.bus, self)
            self._retire_old()

    def _retire_old(self) -> None:
        _View._live.append(self)
        while len(_View._live) > MAX_LIVE:
            old = _View._live.pop(0)
            if old.feed is not None:
                old.feed.stop()

    def _build(self) -> w.Widget:
        raise NotImplementedError

    seen: Event | None = None  # the last event applied: the moment a full redraw without a plan stands for

    def apply(self, event: Event) -> None:
        """Record an event; drawing waits for :meth:`flush`."""
        self.seen = event

    def flush(self, full: bool, now: Planned | None = None) -> None:
        """Redraw; ``full`` takes a new snapshot first (with the plan ``now``, if taken) and redraws everything."""
        if full:
            moment = (now,) if now is not None else (None, self.seen)
            self.view = _shared(self.graph, moment, lambda: self.graph.overview(now))
        if self.widget is not None:
            self._draw(full)

    def follow(self, now: Planned) -> None:
        """The plan after a cell: redraw only if it changes a status, a reason or the problem shown."""
        view = self.view
        shown = view.derived("reasons-shown", lambda: Planned(view.plan, view.problem, view.statuses).reasons())
        if (view.statuses, view.problem, shown) == (now.statuses, now.problem, _reasons_of(now)):
            return
        self.view = _shared(self.graph, (now, view), lambda: _replanned(view, now))
        if self.widget is not None:
            self._draw(full=True)

    def _draw(self, full: bool) -> None:
        """Set trait values from the snapshot; a partial redraw only shows live statuses."""
        raise NotImplementedError

    def render_text(self) -> str:
        raise NotImplementedError

    def render_html(self) -> str:
        """The deterministic fallback."""
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        view = self.view
        timings = {r.task: r.duration for r in view.costs if r.duration is not None}
        trace = view.trace
        return {
            "dagnb": {
                "view": self.kind,
                "statuses": dict(view.statuses),
                "durations": {t: round(d, 6) for t, d in timings.items()},
                "critical_path": list(trace.critical) if trace else [],
                "wall_time": round(trace.wall_time, 6) if trace else None,
            }
        }

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        data: dict[str, Any] = {"text/plain": self.render_text(), "text/html": _static(self.render_html())}
        if self.widget is not None:
            data[WIDGET_MIME] = _widget_ref(self.widget)
        return data, self.metadata()

    def __repr__(self) -> str:
        return self.render_text()

    def close(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        if self.widget is not None:
            _close_tree(self.widget)


_last_reasons: list[tuple[Planned, dict[str, str]]] = []  # the reasons of the latest plan, for every view


def _reasons_of(now: Planned) -> dict[str, str]:
    """``now.reasons()``, computed once for all the views that follow one plan."""
    if not _last_reasons or _last_reasons[0][0] is not now:
        _last_reasons[:] = [(now, now.reasons())]
    return _last_reasons[0][1]


def _replanned(view: Overview, now: Planned) -> Overview:
    """``view`` with the statuses, plan and problem of ``now`` (a new snapshot: it derives its drawings anew)."""
    statuses = {t: now.statuses.get(t, "pending") for t in view.tasks}
    return replace(view, statuses=statuses, plan=now.plan, problem=now.problem)


def _close_tree(widget: w.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class DagView(_View):
    """``%dag``: graph, plan, costs and trace in tabs, with a progress bar."""

    kind = "dag"
    GRAPH, PLAN, COSTS, TRACE = range(4)  # the tabs, in order

    def __init__(self, graph: Graph, live: bool = True) -> None:
        self.live_statuses: dict[str, str] = {}
        self.live_items: dict[str, tuple[int, int]] = {}
        self.tally = Tally()  # the latest run
        super().__init__(graph, live)

    def _build(self) -> w.Widget:
        self.css = w.HTML(style())  # the stylesheet, sent once
        self.header = w.HTML()
        self.progress = w.HTML()
        self.progress.add_class("dagnb-run-progress")
        self.drawing = _GraphPanel(self._draw_graph)
        self.zoom, self.graph_html = self.drawing.zoom, self.drawing
        self.plan_html = _fitted()
        self.costs, self.traces = _CostsPanel(), _TracePanel()
        self.trace_html = self.traces.html
        self.tabs = w.Tab(
            children=[self.drawing.box, self.plan_html, self.costs.box, self.traces.box],
            titles=("Graph", "Plan", "Costs", "Trace"),
        )
        self.drawn: dict[int, Overview] = {}  # tab -> the snapshot it shows
        self.tabs.observe(lambda _: self._draw_tab(), "selected_index")
        root = w.VBox([self.css, w.HBox([self.header, self.progress]), self.tabs])
        root.add_class("dagnb-view")
        return root

    def apply(self, event: Event) -> None:
        super().apply(event)
        if isinstance(event, RunStarted):
            self.tally = Tally()
            self.live_statuses, self.live_items = {}, {}
        self.tally.apply(event)
        if isinstance(event, TaskStarted):
            self.live_statuses[event.task] = "running"
        elif isinstance(event, TaskProgress):
            if self.live_statuses.get(event.task) == "running":  # a count that arrives late is dropped
                self.live_items[event.task] = (event.done, event.total)
        elif isinstance(event, TaskFinished):
            if event.items is not None:
                self.live_items[event.task] = event.items
            before = self.view.statuses.get(event.task)
            kept = event.in_memory and before in WITH_VALUE
            self.live_statuses[event.task] = before if kept else event.status  # type: ignore[assignment]

    def flush(self, full: bool, now: Planned | None = None) -> None:
        if full:
            self.live_statuses, self.live_items = {}, {}
        super().flush(full, now)

    def statuses(self) -> dict[str, str]:
        return {**self.view.statuses, **self.live_statuses}

    def _draw(self, full: bool) -> None:
        tally = self.tally
        run = f"<span class='dagnb-run-label'>run {tally.run_id}: {escape(tally.label())}</span>" if tally.run_id else ""
        with self.header.hold_sync(), self.progress.hold_sync():
            self.header.value = f"<b>dag</b> · {escape(_counts(self.view, self.live_statuses))}"
            self.progress.value = f"<div class='dagnb-run'>{render_progress(tally)}{run}</div>"
        self._draw_graph()
        if not self.drawn:  # a new view draws every tab, so none is ever empty
            for tab in (self.PLAN, self.COSTS, self.TRACE):
                self._draw_tab(tab)
        elif full:  # the slow parts change only between runs, and only the tab on show is drawn now
            self._draw_tab()

    def _draw_tab(self, tab: int | None = None) -> None:
        """Draw the tab on show (or ``tab``), unless it already shows the current snapshot."""
        tab = self.tabs.selected_index if tab is None else tab
        view = self.view
        if tab is None or tab == self.GRAPH or self.drawn.get(tab) is view:
            return
        self.drawn[tab] = view
        if tab == self.PLAN:
            self.plan_html.value = view.derived("plan", lambda: _plan_html(view))
        elif tab == self.COSTS:
            self.costs.draw(view)
        else:
            self.traces.draw(view)

    def _draw_graph(self) -> None:
        self.drawing.draw(self.view, self.live_statuses, self.live_items)

    def render_text(self) -> str:
        return graph_view.render_text(self.view)

    def render_html(self) -> str:
        return graph_view.render_html(self.view) + _plan_html(self.view)


class _GraphPanel:
    """The graph tab: a zoom menu, the legend, the drawing in tiles, and why the graph cannot be planned.

    It remembers what each task's box shows, so a redraw during a run renders
    the tiles of the tasks whose status or item count changed and nothing
    else; a new snapshot's tiles are rendered once for every view showing it
    (and sent only where their text changed).
    """

    def __init__(self, redraw: Callable[[], None]) -> None:
        self.zoom = w.Dropdown(options=ZOOMS, value="fit", description="zoom", layout=w.Layout(width="220px"))
        self.legend = w.HTML(graph_view.legend())
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
        reasons = view.derived("reasons", lambda: graph_view._reasons(view))
        zoom = self.zoom.value
        items = {**base, **live_items} if live_items else base
        statuses = {**view.statuses, **live} if live else view.statuses

        def state(t: str) -> tuple[str, tuple[int, int] | None]:
            return statuses.get(t, "pending"), items.get(t)

        def drawn(t: str) -> tuple[str, tuple[int, int] | None]:
            return self.overlaid.get(t) or (view.statuses.get(t, "pending"), base.get(t))

        same = self.drawn[0] is view and self.drawn[1] == zoom
        overlaid = {t: state(t) for t in (*live, *live_items) if state(t) != (view.statuses.get(t, "pending"),
                                                                          base.get(t))}
        if same:  # what changed since the last drawing: tasks shown with a live value, now or then
            changed = {tile_of[t] for t in {*overlaid, *self.overlaid} if state(t) != drawn(t)}
            svgs = graph_view.render_tiles(view.tasks, view.upstream, statuses, reasons, zoom, items, place, cut,
                                           only=changed) if changed else []
        elif not overlaid:  # the snapshot as taken: every view showing it shares its drawing
            svgs = view.derived(("svg", zoom), lambda: graph_view.render_tiles(
                view.tasks, view.upstream, statuses, reasons, zoom, items, place, cut))
        else:
            svgs = graph_view.render_tiles(view.tasks, view.upstream, statuses, reasons, zoom, items, place, cut)
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


def _tiling(view: Overview) -> tuple[graph_view.Layout, list[graph_view.Tile], dict[str, int]]:
    place = graph_view.layout(view.tasks, view.upstream, graph_view.WRAP_WIDTH)
    cut = graph_view.tiles(view.tasks, place)
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


def _plan_html(view: Overview) -> str:
    if view.plan is None:
        return f"<p class='dagnb-problem'>cannot plan: {escape(view.problem or '')}</p>"
    return view.plan.render_html()


class _CostsPanel:
    """The sortable costs table (a dropdown and a direction toggle over an HTML table)."""

    def __init__(self) -> None:
        options = [(heading, column) for column, (heading, _) in costs_view.COLUMNS.items()]
        self.by = w.Dropdown(options=options, value="duration", description="sort by", layout=w.Layout(width="240px"))
        self.descending = w.ToggleButton(value=True, description="descending", layout=w.Layout(width="110px"))
        self.table = _fitted()
        self.box = w.VBox([w.HBox([self.by, self.descending]), self.table])
        self.view: Overview | None = None
        self.by.observe(lambda _: self._redraw(), "value")
        self.descending.observe(lambda _: self._redraw(), "value")

    def draw(self, view: Overview) -> None:
        self.view = view
        self._redraw()

    def _redraw(self) -> None:
        if self.view is not None:
            self.table.value = costs_view.render_html(self.view.costs, self.by.value, self.descending.value)


class _TracePanel:
    """The session's timeline, or one run of it (a menu of the runs since the kernel started)."""

    WHOLE = 0  # the menu's value for the whole session (run ids start at 1)

    def __init__(self, first: int | None = None) -> None:
        self.run = w.Dropdown(options=[("the whole session", self.WHOLE)], value=self.WHOLE, description="show",
                              layout=w.Layout(width="420px"))
        self.html = _fitted()
        self.box = w.VBox([self.run, self.html])
        self.view: Overview | None = None
        self.wanted = first  # the run to show once it is in the menu
        self.run.observe(lambda _: self._redraw(), "value")

    def draw(self, view: Overview) -> None:
        self.view = view
        runs = view.timeline.runs if view.timeline is not None else []
        options = [("the whole session", self.WHOLE), *((trace_view.run_label(t)[:80], t.run_id) for t in runs)]
        values = {v for _, v in options}
        chosen = self.run.value if self.run.value in values else self.WHOLE
        if self.wanted in values:
            chosen, self.wanted = self.wanted, None
        with self.run.hold_sync():  # one message for options and choice
            if options != list(self.run.options):
                self.run.options = options
            self.run.value = chosen
        self._redraw()

    def _redraw(self) -> None:
        if self.view is not None:
            self.html.value = trace_view.render_timeline_html(self.view.timeline, self.run.value or None)


class CostsView(_View):
    """``%dag costs``: the sortable table of per-task costs."""

    kind = "costs"

    def _build(self) -> w.Widget:
        self.panel = _CostsPanel()
        self.panel.box.add_class("dagnb-costs-view")
        return self.panel.box

    def _draw(self, full: bool) -> None:
        if full:
            self.panel.draw(self.view)

    def render_text(self) -> str:
        return costs_view.render_text(self.view.costs)

    def render_html(self) -> str:
        return costs_view.render_html(self.view.costs, numbers=False)


class TraceView(_View):
    """``%dag trace``: the session's runs on one timeline, or one run's Gantt chart with its critical path."""

    kind = "trace"

    def __init__(self, graph: Graph, live: bool = True, run: int | None = None) -> None:
        self.asked = run  # `%dag trace --run N`: that run first (the menu lists the others)
        super().__init__(graph, live)

    def _build(self) -> w.Widget:
        self.panel = _TracePanel(first=self.asked)
        self.html = self.panel.html
        self.panel.box.add_class("dagnb-trace-view")
        return self.panel.box

    def flush(self, full: bool, now: Planned | None = None) -> None:
        if full:  # a trace changes only when a run ends
            super().flush(full, now)

    def follow(self, now: Planned) -> None:
        """A trace shows runs that happened: a new plan changes nothing in it."""

    def _draw(self, full: bool) -> None:
        self.panel.draw(self.view)

    def render_text(self) -> str:
        if self.asked is not None and self.view.timeline is not None:
            return trace_view.render_text(self.view.timeline.run(self.asked))
        return trace_view.render_timeline_text(self.view.timeline)

    def render_html(self) -> str:
        return trace_view.render_timeline_html(self.view.timeline, self.asked, numbers=False)


class RunProgress:
    """A progress bar for one cell's runs, shown once a task starts and hidden when they end.

    It is displayed as a widget-only output (validators never compare it) and
    replaced by an empty view at the end, so a saved notebook keeps only the
    cell's deterministic summary. Its bar has one segment per outcome (done,
    cached, failed, cancelled ...), so an interrupted run never looks complete.
    """

    _ids = itertools.count(1)

    def __init__(self, graph: Graph, own: str | None = None) -> None:
        from IPython.display import display

        self._display = display
        self.own = own
        self.widget: w.HBox | None = None  # made when first shown: most cells never show one
        self.display_id = f"dagnb-progress-{id(self)}-{next(self._ids)}"
        self.tally = Tally()
        self.feed = LiveFeed(graph.bus, self)

    @property
    def shown(self) -> bool:
        return self.widget is not None

    def _show(self) -> None:
        self.bar = w.HTML()
        self.label = w.HTML()
        self.widget = w.HBox([self.bar, self.label])
        self.widget.add_class("dagnb-progress")
        self._display({WIDGET_MIME: _widget_ref(self.widget)}, raw=True, display_id=self.display_id)

    def apply(self, event: Event) -> None:
        self.tally.apply(event)
        if isinstance(event, TaskStarted) and not self.shown and event.task != self.own:
            self._show()

    def flush(self, full: bool, now: Planned | None = None) -> None:
        if self.widget is None:
            return
        with self.bar.hold_sync(), self.label.hold_sync():
            self.bar.value = render_progress(self.tally)
            self.label.value = escape(self.tally.label())

    def close(self) -> None:
        self.feed.stop()
        if self.widget is not None:
            self._display(HIDDEN, raw=True, display_id=self.display_id, update=True)
            _close_tree(self.widget)
