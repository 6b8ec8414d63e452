"""End-to-end: the ``%dag`` view in JupyterLab, in a real (headless) Chromium.

Runs a notebook cell by cell in the browser and checks that ``%dag`` is
rendered by the ipywidgets widget manager (not the static HTML fallback)
and that the view flips a task's status to ``done`` live, while ``%dag run``
executes in another cell. Screenshots are saved as test artifacts.

Run::

    python -m pytest -p no:cacheprovider -o addopts="" tests/e2e -m e2e -v
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import LabNotebook, artifacts_dir

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

DAG_NOTEBOOK = [
    "%load_ext dagnb",
    "%%task --no-run\ndef numbers():\n    return list(range(10))",
    "%%task --no-run\ndef quick(numbers):\n    return sum(numbers)",
    "%%task --no-run\ndef slow(numbers):\n    import time\n    time.sleep(4)\n    return max(numbers)",
    "%%task --no-run\ndef report(slow, quick):\n    return f'{slow} {quick}'",
    "%dag",
    "%dag run",
]
LOAD, NUMBERS, QUICK, SLOW, REPORT, VIEW, RUN = range(7)


def _widget_output(nb: LabNotebook, index: int) -> Any:
    """The cell's output that the widget manager rendered (exactly one)."""
    from playwright.sync_api import expect

    output = nb.outputs(index).filter(has=nb.page.locator(".jupyter-widgets"))
    expect(output).to_have_count(1)
    assert_not_fallback(output)
    return output


def assert_not_fallback(output: Any) -> None:
    """A widget view, not one of the output's other MIME types rendered instead.

    JupyterLab marks an output rendered from a MIME type by its own renderers
    (text/html, text/plain, ...) with ``data-mime-type``; the widget
    manager's view carries none (or the widget-view MIME type).
    """
    mime = output.get_attribute("data-mime-type")
    assert mime in (None, WIDGET_MIME), f"output rendered as {mime}, not as a widget"
    assert output.locator("[data-mime-type]").count() == 0


def _visible_count(locator: Any) -> int:
    return sum(1 for i in range(locator.count()) if locator.nth(i).is_visible())


def test_widget_manager_renders_a_widget(open_notebook: Any) -> None:
    """Smoke test of the browser stack: a plain ipywidgets slider renders as a widget."""
    from playwright.sync_api import expect

    nb = open_notebook(
        "probe.ipynb",
        ["import ipywidgets\nslider = ipywidgets.IntSlider(value=7)\nslider.add_class('probe')\nslider"],
    )
    nb.run_cell(0)
    output = _widget_output(nb, 0)
    probe = output.locator(".probe")
    expect(probe).to_be_visible()
    expect(probe).to_have_class(re.compile(r"\bwidget-slider\b"))
    expect(output).not_to_contain_text("IntSlider(")  # the text/plain fallback is not shown


def test_dag_view_renders_and_updates_live(open_notebook: Any) -> None:
    """``%dag`` shows the widget; ``%dag run`` in another cell flips ``slow`` running -> done in it."""
    from playwright.sync_api import expect

    nb = open_notebook("test.ipynb", DAG_NOTEBOOK)
    for cell in (LOAD, NUMBERS, QUICK, SLOW, REPORT, VIEW):
        nb.run_cell(cell)

    # Rendered as a widget, not the fallback.
    outputs = nb.outputs(VIEW)
    expect(outputs.locator(".dagnb-view")).to_have_count(1)
    output = outputs.filter(has=nb.page.locator(".dagnb-view"))
    view = output.locator(".dagnb-view")
    expect(view).to_be_visible()
    graph = view.locator("svg.dagnb-graph")
    expect(graph).to_have_count(1)
    assert _visible_count(outputs.locator(".dagnb-static")) == 0, "the static HTML fallback is shown"
    assert_not_fallback(output)

    slow = graph.locator('g.dagnb-task[data-task="slow"]')
    expect(slow).to_have_count(1)
    expect(slow).to_have_attribute("data-status", "pending")

    # Run in another cell; the view above must change while that cell runs.
    view_prompt = nb.cell(VIEW).locator(".jp-InputArea-prompt").first.inner_text()
    _record_timeline(nb, VIEW, RUN)
    nb.start_cell(RUN)
    expect(slow).to_have_attribute("data-status", "running", timeout=30_000)
    out = artifacts_dir()
    view.screenshot(path=str(out / "dag-view-running.png"))
    expect(slow).to_have_attribute("data-status", "done", timeout=60_000)
    nb.wait_cell_done(RUN)
    expect(slow).to_have_attribute("data-status", "done")
    timeline = nb.page.evaluate("() => window.__dagnbTimeline")
    _assert_live_transitions(timeline)
    assert nb.cell(VIEW).locator(".jp-InputArea-prompt").first.inner_text() == view_prompt, "the %dag cell was rerun"
    assert _visible_count(outputs.locator(".dagnb-static")) == 0, "the static HTML fallback is shown"

    expect(graph.locator('g.dagnb-task[data-status="done"]')).to_have_count(4)
    view.screenshot(path=str(out / "dag-view.png"))
    view.locator(".lm-TabBar-tab", has_text="Trace").click()
    expect(view.locator("svg.dagnb-gantt")).to_be_visible()
    expect(view.locator("g.dagnb-span.dagnb-critical")).to_have_count(3)  # numbers -> slow -> report
    view.screenshot(path=str(out / "dag-trace.png"))
    nb.page.screenshot(path=str(out / "notebook.png"), full_page=True)


# Records every change of (``slow``'s status in the view, the run cell's
# prompt) from DOM mutations, so that a short-lived state is not missed by
# polling and the order of states can be checked afterwards.
_TIMELINE_JS = """
([viewCell, runCell]) => {
  const log = (window.__dagnbTimeline = []);
  const t0 = performance.now();
  const sample = () => {
    const task = viewCell.querySelector('.dagnb-view svg.dagnb-graph g.dagnb-task[data-task="slow"]');
    const status = task ? task.getAttribute("data-status") : null;
    const prompt = runCell.querySelector(".jp-InputArea-prompt").textContent.trim();
    const last = log[log.length - 1];
    if (!last || last.status !== status || last.prompt !== prompt) {
      log.push({ status, prompt, ms: Math.round(performance.now() - t0) });
    }
  };
  sample();
  const observer = new MutationObserver(sample);
  observer.observe(viewCell.parentElement, { subtree: true, childList: true, attributes: true, characterData: true });
}
"""


def _record_timeline(nb: LabNotebook, view_cell: int, run_cell: int) -> None:
    nb.page.evaluate(_TIMELINE_JS, [nb.cell(view_cell).element_handle(), nb.cell(run_cell).element_handle()])


def _assert_live_transitions(timeline: list[dict[str, Any]]) -> None:
    """pending, then running while the run cell is busy (``[*]``), then done; nothing else in between."""
    statuses = [entry["status"] for entry in timeline]
    collapsed = [status for i, status in enumerate(statuses) if i == 0 or status != statuses[i - 1]]
    assert collapsed == ["pending", "running", "done"], f"status sequence {collapsed}; timeline {timeline}"
    running = [entry for entry in timeline if entry["status"] == "running"]
    assert any(entry["prompt"] == "[*]:" for entry in running), f"never `running` while the run cell ran: {timeline}"
    first_done = next(entry for entry in timeline if entry["status"] == "done")
    assert first_done["ms"] - running[0]["ms"] >= 3000, f"`slow` sleeps 4 s but ran for less than 3 s: {timeline}"
