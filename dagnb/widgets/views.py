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
    * never print and never use an ``Output`` widget: updates travel as
      comm messages, which validators ignore.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from html import escape
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as w

from ..events import (
    Event,
    RunStarted,
    TaskFinished,
    TaskProgress,
    TaskStarted,
)
from ..overview import Planned
from . import costs as costs_view
from . import graph as graph_view
from . import trace as trace_view
from ._format import style
from .live import LiveFeed
from .progress import Tally
from .progress import render_html as render_progress

if TYPE_CHECKING:
    from ..api import Graph
    from ..overview import Overview

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

    def apply(self, event: Event) -> None:
        """Record an event; drawing waits for :meth:`flush`."""

    def flush(self, full: bool, now: Planned | None = None) -> None:
        """Redraw; ``full`` takes a new snapshot first (with the plan ``now``, if taken) and redraws everything."""
        if full:
            self.view = self.graph.overview(now)
        if self.widget is not None:
            self._draw(full)

    def follow(self, now: Planned) -> None:
        """The plan after a cell: redraw only if it changes a status, a reason or the problem shown."""
        view = self.view
        shown = Planned(view.plan, view.problem, view.statuses)
        if (shown.statuses, shown.problem, shown.reasons()) == (now.statuses, now.problem, now.reasons()):
            return
        statuses = {t: now.statuses.get(t, "pending") for t in view.tasks}
        costs = [replace(row, status=statuses.get(row.task, row.status)) for row in view.costs]
        self.view = replace(view, statuses=statuses, plan=now.plan, problem=now.problem, costs=costs)
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


def _close_tree(widget: w.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()


class DagView(_View):
    """``%dag``: graph, plan, costs and trace in tabs, with a progress bar."""

    kind = "dag"

    def __init__(self, graph: Graph, live: bool = True) -> None:
        self.live_statuses: dict[str, str] = {}
        self.live_items: dict[str, tuple[int, int]] = {}
        self.tally = Tally()  # the latest run
        super().__init__(graph, live)

    def _build(self) -> w.Widget:
        self.header = w.HTML()
        self.progress = w.HTML()
        self.progress.add_class("dagnb-run-progress")
        self.zoom = w.Dropdown(options=ZOOMS, value="fit", description="zoom", layout=w.Layout(width="220px"))
        self.graph_html, self.plan_html = _fitted(), _fitted()
        self.costs, self.traces = _CostsPanel(), _TracePanel()
        self.trace_html = self.traces.html
        self.zoom.observe(lambda _: self._draw_graph(), "value")
        tabs = w.Tab(
            children=[w.VBox([self.zoom, self.graph_html]), self.plan_html, self.costs.box, self.traces.box],
            titles=("Graph", "Plan", "Costs", "Trace"),
        )
        root = w.VBox([w.HBox([self.header, self.progress]), tabs])
        root.add_class("dagnb-view")
        return root

    def apply(self, event: Event) -> None:
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
            kept = event.in_memory and before in ("done", "cached")
            self.live_statuses[event.task] = before if kept else event.status  # type: ignore[assignment]

    def flush(self, full: bool, now: Planned | None = None) -> None:
        if full:
            self.live_statuses = {}
        super().flush(full, now)

    def statuses(self) -> dict[str, str]:
        return {**self.view.statuses, **self.live_statuses}

    def _draw(self, full: bool) -> None:
        with self.header.hold_sync(), self.progress.hold_sync():
            shown = self.statuses()
            counts = _counts(shown)
            self.header.value = f"{style()}<b>dag</b> · {escape(counts)}"
            tally = self.tally
            run = f"<span class='dagnb-run-label'>run {tally.run_id}: {escape(tally.label())}</span>" if tally.run_id else ""
            self.progress.value = f"<div class='dagnb-run'>{render_progress(tally)}{run}</div>"
        self._draw_graph()
        if full:  # the slow parts change only between runs
            self.plan_html.value = _plan_html(self.view)
            self.costs.draw(self.view)
            self.traces.draw(self.view)

    def _draw_graph(self) -> None:
        view = self.view
        items = {**(view.trace.items if view.trace is not None else {}), **self.live_items}
        svg = graph_view.render_svg(view.tasks, view.upstream, self.statuses(), graph_view._reasons(view),
                                    self.zoom.value, items)
        with self.graph_html.hold_sync():
            self.graph_html.value = (
                f"{style()}{graph_view.legend()}<div class='dagnb-scroll'>{svg if view.tasks else ''}</div>"
                + (f"<p class='dagnb-problem'>{escape(view.problem)}</p>" if view.problem else "")
            )

    def render_text(self) -> str:
        return graph_view.render_text(self.view)

    def render_html(self) -> str:
        return graph_view.render_html(self.view) + _plan_html(self.view)


def _counts(statuses: dict[str, str]) -> str:
    from ..overview import STATUSES

    found = [(s, sum(1 for v in statuses.values() if v == s)) for s in STATUSES]
    return ", ".join(f"{n} {s}" for s, n in found if n) or "no tasks yet"


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
