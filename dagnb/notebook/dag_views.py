"""IPython glue: ``%dag`` / ``%dag show``, ``%dag trace`` and ``%dag costs``.

Each returns a view of :mod:`dagnb.widgets` (live with a kernel; ``--static``
renders HTML only). ipywidgets load only when a view is asked for.
"""

from __future__ import annotations

import argparse
from typing import Any

from dagnb.notebook.running import CellGlue

__all__ = ["ViewCommands"]


class ViewCommands(CellGlue):
    """The live view of the graph, the trace of the session's runs, and the costs."""

    def _cmd_show(self, args: argparse.Namespace) -> Any:
        if getattr(args, "static", False):  # bare `%dag` has no subcommand options
            from dagnb.widgets.static import StaticView

            return StaticView(self.graph.overview())
        from dagnb.widgets.views import DagView

        return DagView(self.graph, live=self._live())

    def _cmd_trace(self, args: argparse.Namespace) -> Any:
        from dagnb.widgets.views import TraceView

        if args.run is not None:
            self.graph.timeline.trace_of(args.run)  # a run the trace no longer (or never) had: say which it has
        return TraceView(self.graph, live=self._live(), run=args.run)

    def _cmd_costs(self, args: argparse.Namespace) -> Any:
        from dagnb.widgets.views import CostsView

        return CostsView(self.graph, live=self._live())
