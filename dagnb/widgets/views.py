"""The widgets, one module per view: importable from here as before.

:mod:`.view` holds what every view shares (the shell around the pure
renderers, its live feed and snapshot sharing); :mod:`.dag_view` the tabbed
``%dag`` view, whose tabs are :mod:`.graph_view`, its plan text,
:mod:`.costs_view` and :mod:`.trace_view`; :mod:`.progress_view` a run's
progress bar. Each renders with the pure module of the same tab
(:mod:`.graph`, :mod:`.costs`, :mod:`.trace`, :mod:`.progress`).
"""

from __future__ import annotations

from dagnb.widgets.costs_view import CostsView
from dagnb.widgets.dag_view import DagView
from dagnb.widgets.progress_view import RunProgress
from dagnb.widgets.trace_view import TraceView
from dagnb.widgets.view import HIDDEN, MAX_LIVE, WIDGET_MIME, _View

__all__ = ["HIDDEN", "MAX_LIVE", "WIDGET_MIME", "CostsView", "DagView", "RunProgress", "TraceView", "_View"]
