"""``%dag`` / ``%dag show``: the tabbed view of a session (graph, plan, costs, trace); the plan tab is its text."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import ipywidgets as w

from dagnb.events import Event, RunStarted, TaskFinished, TaskProgress, TaskStarted
from dagnb.overview import Planned
from dagnb.status import WITH_VALUE
from dagnb.widgets import graph as graph_render
from dagnb.widgets._format import style
from dagnb.widgets.costs_view import _CostsPanel
from dagnb.widgets.graph_view import _counts, _GraphPanel
from dagnb.widgets.progress import Tally
from dagnb.widgets.progress import render_html as render_progress
from dagnb.widgets.trace_view import _TracePanel
from dagnb.widgets.view import _fitted, _View

if TYPE_CHECKING:
    from dagnb.api import Graph
    from dagnb.overview import Overview

__all__ = ["DagView"]


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
        run = (
            f"<span class='dagnb-run-label'>run {tally.run_id}: {escape(tally.label())}</span>" if tally.run_id else ""
        )
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
        return graph_render.render_text(self.view)

    def render_html(self) -> str:
        return graph_render.render_html(self.view) + _plan_html(self.view)


def _plan_html(view: Overview) -> str:
    if view.plan is None:
        return f"<p class='dagnb-problem'>cannot plan: {escape(view.problem or '')}</p>"
    return view.plan.render_html()
