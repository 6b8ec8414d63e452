"""The trace tab and ``%dag trace``: the Gantt chart of a run, or of every run of the session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as w

from dagnb.overview import Planned
from dagnb.widgets import trace as trace_render
from dagnb.widgets.view import _fitted, _View

if TYPE_CHECKING:
    from dagnb.api import Graph
    from dagnb.overview import Overview

__all__ = ["TraceView"]


class _TracePanel:
    """The session's timeline, or one run of it (a menu of the runs since the kernel started)."""

    WHOLE = 0  # the menu's value for the whole session (run ids start at 1)

    def __init__(self, first: int | None = None) -> None:
        self.run = w.Dropdown(
            options=[("the whole session", self.WHOLE)],
            value=self.WHOLE,
            description="show",
            layout=w.Layout(width="420px"),
        )
        self.html = _fitted()
        self.box = w.VBox([self.run, self.html])
        self.view: Overview | None = None
        self.wanted = first  # the run to show once it is in the menu
        self.run.observe(lambda _: self._redraw(), "value")

    def draw(self, view: Overview) -> None:
        self.view = view
        runs = view.timeline.runs if view.timeline is not None else []
        options = [("the whole session", self.WHOLE), *((trace_render.run_label(t)[:80], t.run_id) for t in runs)]
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
            self.html.value = trace_render.render_timeline_html(self.view.timeline, self.run.value or None)


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
            return trace_render.render_text(self.view.timeline.run(self.asked))
        return trace_render.render_timeline_text(self.view.timeline)

    def render_html(self) -> str:
        return trace_render.render_timeline_html(self.view.timeline, self.asked, numbers=False)
