"""Inline views of a session: graph, plan, costs and trace, live while runs go.

Each module renders one view as deterministic text and HTML (pure functions
of an :class:`~dagnb.overview.Overview`); :mod:`.views` wraps them in
ipywidgets fed by run events, one module per view (``*_view.py``, collected
in :mod:`.views`). Only those import ipywidgets.
"""

from __future__ import annotations

__all__ = ["CostsView", "DagView", "RunProgress", "TraceView"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from dagnb.widgets import views

        return getattr(views, name)
    raise AttributeError(name)
