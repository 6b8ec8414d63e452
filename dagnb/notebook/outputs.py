"""IPython glue: dagnb's own outputs in a cell, with the metadata that names their kind.

A result of ``%dag`` (a report, a plan, an explanation ...) and any text that
depends on the cache is published with dagnb's output metadata
(:func:`dagnb.report.output_kind`, :func:`dagnb.report.run_metadata`), which
``dagnb run`` reads and dagnb's nbval plugin compares by kind. What a task
printed or displayed when it ran is shown again here (:func:`replay`) when
its value comes from the cache.

Invariant: everything shown here is published as display data, never
printed, so its metadata travels with it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from IPython.display import publish_display_data

from dagnb.report import RunReport, output_kind, run_metadata
from dagnb.run.capture import replay_streams

__all__ = ["WithMetadata", "kind", "replay", "show_report", "show_text"]


class WithMetadata:
    """A result of ``%dag`` (a report, a plan, an explanation ...), displayed with dagnb's output metadata.

    The metadata says which kind of output it is (``dagnb.output``): what
    ``dagnb run`` reads, and how dagnb's pytest plugin has nbval compare an
    output whose text depends on the cache. Attributes are the result's.
    """

    def __init__(self, shown: Any, metadata: dict[str, Any]) -> None:
        self.shown, self.metadata = shown, metadata

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.shown, attr)

    def __repr__(self) -> str:
        return repr(self.shown)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, str], dict[str, Any]]:
        return self.shown._repr_mimebundle_(), self.metadata


def kind(shown: Any, output: str) -> WithMetadata:
    """``shown``, displayed as an output of kind ``output`` (``plan``, ``why``, ``history`` ...)."""
    return WithMetadata(shown, output_kind(output))


def show_text(text: str, output: str) -> None:
    """Text that depends on the cache (its size, its history), shown as an output dagnb's nbval plugin knows."""
    publish_display_data({"text/plain": text}, metadata=output_kind(output))


def show_report(report: RunReport) -> None:
    """A failed run's report, shown before its error (``dagnb run`` reads its metadata)."""
    text = report.render_text()
    data = {"text/plain": text, "text/html": f"<code class='dagnb-report'>{escape(text)}</code>"}
    publish_display_data(data, metadata=run_metadata(report, None))


def replay(captured: list[dict[str, Any]]) -> None:
    """What a task printed and displayed when it ran, shown again in this cell."""
    replay_streams(captured, lambda out: publish_display_data(out["data"], metadata=out.get("metadata") or {}))
