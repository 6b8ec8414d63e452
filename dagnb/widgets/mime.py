"""How a widget goes into a cell's outputs, without importing ipywidgets (a progress bar never shown costs nothing).

A widget is shown as a widget-only output (``WIDGET_MIME``, which nbval and
dagnb's own checks never compare) and hidden again by an empty reference
(``HIDDEN``); closing a widget closes the widgets inside it first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["HIDDEN", "WIDGET_MIME", "close_tree", "widget_ref"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
HIDDEN = {WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": ""}}


def widget_ref(widget: Any) -> dict[str, Any]:
    """The output data that shows ``widget`` (an ipywidgets ``Widget``)."""
    return {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}


def close_tree(widget: Any) -> None:
    """Close ``widget`` and every widget inside it (their comms end; the frontend drops their views)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()
