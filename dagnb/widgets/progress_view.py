"""The progress bar a run shows in its cell while it goes, gone when the run ends.

The bar appears when another task than the cell's own starts and the cell's
runs have gone on for :data:`SHOW_AFTER` seconds: a run that ends sooner
shows no bar that would vanish at once, and its cell never loads ipywidgets
(about 0.1 s, the first time in a kernel). A task's own status line says
``running`` meanwhile.
"""

from __future__ import annotations

import itertools
from html import escape
from typing import TYPE_CHECKING

from dagnb.events import Event, TaskStarted
from dagnb.overview import Planned
from dagnb.widgets.live import LiveFeed
from dagnb.widgets.mime import HIDDEN, WIDGET_MIME, close_tree, widget_ref
from dagnb.widgets.progress import Tally
from dagnb.widgets.progress import render_html as render_progress

if TYPE_CHECKING:
    import ipywidgets as w

    from dagnb.api import Graph

__all__ = ["SHOW_AFTER", "RunProgress"]

#: How long a cell's runs go on before its progress bar appears (seconds).
SHOW_AFTER = 0.5


class RunProgress:
    """A progress bar for one cell's runs, shown once a task starts after :data:`SHOW_AFTER`, hidden when they end.

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
        self._since: float | None = None  # the feed's clock at the first event of the cell's runs

    @property
    def shown(self) -> bool:
        return self.widget is not None

    def _show(self) -> None:
        import ipywidgets as w  # here: a cell whose run ends before a bar is due never loads ipywidgets

        self.bar = w.HTML()
        self.label = w.HTML()
        self.widget = w.HBox([self.bar, self.label])
        self.widget.add_class("dagnb-progress")
        self._display({WIDGET_MIME: widget_ref(self.widget)}, raw=True, display_id=self.display_id)

    def apply(self, event: Event) -> None:
        self.tally.apply(event)
        now = self.feed.clock()
        self._since = now if self._since is None else self._since
        if isinstance(event, TaskStarted) and not self.shown and event.task != self.own:
            if now - self._since >= SHOW_AFTER:
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
            close_tree(self.widget)
