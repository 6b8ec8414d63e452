"""The words a run leaves in a notebook: a task cell's line, and the metadata ``dagnb run`` reads back.

No IPython: :mod:`dagnb.report` says what the magics display.
"""

from __future__ import annotations

import dagnb
from dagnb.ci.runner import METADATA_FORMAT as READ_BY_DAGNB_RUN
from dagnb.report import METADATA_FORMAT, RunReport, cell_line, output_kind, run_metadata


def _report(**statuses: str) -> RunReport:
    return RunReport(statuses=dict(statuses), reasons={t: "code changed" for t, s in statuses.items() if s == "done"})


def test_a_cell_line_names_what_else_ran_and_what_is_stale_now() -> None:
    report = _report(raw="done", clean="done", model="done")
    report.stale = ["plot", "table"]
    assert cell_line(report, "clean", downstream=["model", "plot", "table"], notes=" · replaces `tidy`") == (
        "clean: ran (code changed) · replaces `tidy` · upstream ran: raw · downstream ran: model"
        " · 2 downstream now stale: plot, table"
    )


def test_a_cached_cell_line_is_only_the_task() -> None:
    assert cell_line(_report(clean="cached"), "clean", downstream=[]) == "clean: cached"


def test_run_metadata_is_what_dagnb_run_reads() -> None:
    report = _report(clean="done")
    report.durations = {"clean": 0.1234567}
    meta = run_metadata(report, "clean")["dagnb"]
    assert meta["format"] == METADATA_FORMAT == READ_BY_DAGNB_RUN
    assert (meta["output"], meta["task"], meta["statuses"], meta["durations"]) == (
        "status", "clean", {"clean": "done"}, {"clean": 0.123457})
    assert run_metadata(report, None)["dagnb"]["output"] == "report"
    assert output_kind("plan") == {"dagnb": {"output": "plan"}}


def test_run_report_keeps_its_old_import_paths() -> None:
    from dagnb.run.executor import RunReport as from_executor

    assert dagnb.RunReport is from_executor is RunReport
