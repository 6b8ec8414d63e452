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

import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

import ipywidgets as w

from dagnb.events import Event
from dagnb.overview import Planned
from dagnb.widgets.live import LiveFeed
from dagnb.widgets.mime import HIDDEN, WIDGET_MIME
from dagnb.widgets.mime import close_tree as _close_tree
from dagnb.widgets.mime import widget_ref as _widget_ref

if TYPE_CHECKING:
    from dagnb.api import Graph
    from dagnb.overview import Overview

__all__ = ["HIDDEN", "MAX_LIVE", "WIDGET_MIME"]

MAX_LIVE = 6  # older views keep their last drawing and stop following events


def _fitted() -> w.HTML:
    """An HTML widget as wide as its output and no wider: a wide drawing scrolls in its own frame."""
    html = w.HTML()
    html.add_class("dagnb-fit")
    return html


def _static(html: str) -> str:
    return f'<div class="dagnb-static">{html}</div>'


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
