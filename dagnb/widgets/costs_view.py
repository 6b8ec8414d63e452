"""The costs tab and ``%dag costs``: time, memory and bytes per task, sortable."""

from __future__ import annotations

from typing import TYPE_CHECKING

import ipywidgets as w

from dagnb.widgets import costs as costs_render
from dagnb.widgets.view import _fitted, _View

if TYPE_CHECKING:
    from dagnb.overview import Overview

__all__ = ["CostsView"]


class _CostsPanel:
    """The sortable costs table (a dropdown and a direction toggle over an HTML table)."""

    def __init__(self) -> None:
        options = [(heading, column) for column, (heading, _) in costs_render.COLUMNS.items()]
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
            self.table.value = costs_render.render_html(self.view.costs, self.by.value, self.descending.value)


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
        return costs_render.render_text(self.view.costs)

    def render_html(self) -> str:
        return costs_render.render_html(self.view.costs, numbers=False)
