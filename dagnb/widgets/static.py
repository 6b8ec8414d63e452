"""``%dag show --static``: every view as one HTML page fragment, no widget.

Unlike the fallbacks, it carries the measured numbers, each inside
``<span class="dagnb-num">`` so validators can mask them.
"""

from __future__ import annotations

from html import escape
from typing import Any

from dagnb.overview import Overview
from dagnb.widgets import costs as costs_view
from dagnb.widgets import graph as graph_view
from dagnb.widgets import trace as trace_view

__all__ = ["StaticView"]


class StaticView:
    """All four views of an overview, rendered once."""

    def __init__(self, view: Overview) -> None:
        self.view = view

    def render_html(self) -> str:
        view = self.view
        plan = view.plan.render_html() if view.plan is not None else ""
        sections = [
            ("Graph", graph_view.render_html(view)),
            ("Plan", plan),
            ("Costs", costs_view.render_html(view.costs, by=None)),  # task order: timing must not reorder rows
            ("Trace", trace_view.render_timeline_html(view.timeline)),
        ]
        body = "".join(f"<h4>{escape(title)}</h4>{html}" for title, html in sections)
        return f'<div class="dagnb-static-full">{body}</div>'

    def render_text(self) -> str:
        view = self.view
        parts = [
            graph_view.render_text(view),
            costs_view.render_text(view.costs),
            trace_view.render_timeline_text(view.timeline),
        ]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return self.render_text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, str], dict[str, Any]]:
        return {"text/plain": self.render_text(), "text/html": self.render_html()}, {"dagnb": {"view": "static"}}
