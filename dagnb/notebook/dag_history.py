"""IPython glue: ``%dag history`` (``--diff A B``) and ``%dag run --as-of RUN``.

The runs of the cache, their differences and the restore of a past run's
values are the engine's (``Graph.history``, ``Graph.diff``,
``Graph.restore``); here they are shown as outputs of kind ``history``,
whose text depends on the cache.
"""

from __future__ import annotations

import argparse
from typing import Any

from dagnb.notebook.outputs import kind, show_text
from dagnb.notebook.running import CellGlue

__all__ = ["HistoryCommands"]


class HistoryCommands(CellGlue):
    """The runs this cache remembers, and the values of one of them brought back."""

    def _cmd_history(self, args: argparse.Namespace) -> Any:
        return kind(self.graph.diff(*args.diff) if args.diff else self.graph.history(args.limit), "history")

    def _restore(self, run: int) -> None:
        """``%dag run --as-of RUN``: the values run ``run`` had, from the cache, and what each task got."""
        show_text(self.graph.restore(run).render_text(), "history")
