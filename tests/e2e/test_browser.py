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


# ------------------------------------------------------------ the notebook follows

FOLLOW_NOTEBOOK = [
    "%load_ext dagnb",
    "threshold = 3",
    "%%task\ndef a():\n    return 1",
    "%%task\ndef b(a, threshold):\n    return a + threshold",
    "%%task\ndef c(b):\n    return b * 2",
    "%dag",
    "%dag run",
    "threshold = 4",
]
F_LOAD, F_THRESHOLD, F_A, F_B, F_C, F_VIEW, F_RUN, F_CHANGE = range(8)


def _line(nb: LabNotebook, index: int, task: str) -> Any:
    """The status line task ``task``'s cell shows (its HTML rendering, updated in place)."""
    return nb.outputs(index).locator(f'code.dagnb-status[data-task="{task}"]')


def test_status_lines_and_the_view_follow_the_notebook(open_notebook: Any) -> None:
    """An edited upstream cell turns the downstream cells' lines stale where they are (their cells are not
    rerun); a run elsewhere updates them; a changed notebook variable reaches the lines and the view."""
    from playwright.sync_api import expect

    nb = open_notebook("follow.ipynb", FOLLOW_NOTEBOOK)
    for cell in (F_LOAD, F_THRESHOLD, F_A, F_B, F_C, F_VIEW):
        nb.run_cell(cell)
    for cell, task in ((F_A, "a"), (F_B, "b"), (F_C, "c")):
        expect(_line(nb, cell, task)).to_have_text(f"{task}: ran (new)")
    prompts = {cell: nb.prompt(cell) for cell in (F_B, F_C, F_VIEW)}

    nb.edit_end_of_cell(F_A, 1, "2")  # `return 1` becomes `return 2`
    nb.run_cell(F_A)
    expect(_line(nb, F_A, "a")).to_have_text("a: ran (code changed) · 2 downstream now stale: b, c")
    expect(_line(nb, F_B, "b")).to_have_attribute("data-status", "stale")
    expect(_line(nb, F_B, "b")).to_have_text("b: stale (upstream a changed)")
    expect(_line(nb, F_C, "c")).to_have_text("c: stale (upstream b reruns first)")
    graph = nb.outputs(F_VIEW).locator(".dagnb-view svg.dagnb-graph")
    expect(graph.locator('g.dagnb-task[data-task="c"]')).to_have_attribute("data-status", "stale")
    out = artifacts_dir()
    nb.cell(F_B).scroll_into_view_if_needed()
    nb.page.screenshot(path=str(out / "status-lines-stale.png"))

    nb.run_cell(F_RUN)
    expect(_line(nb, F_B, "b")).to_have_text("b: ran (upstream a changed)")
    expect(_line(nb, F_C, "c")).to_have_text("c: ran (upstream b changed)")
    expect(graph.locator('g.dagnb-task[data-status="done"]')).to_have_count(3)

    nb.run_cell(F_CHANGE)  # an ordinary cell: `threshold = 4`
    expect(_line(nb, F_B, "b")).to_have_text("b: stale (input threshold changed)")
    expect(graph.locator('g.dagnb-task[data-task="b"]')).to_have_attribute("data-status", "stale")
    expect(graph.locator('g.dagnb-task[data-task="a"]')).to_have_attribute("data-status", "done")
    assert {cell: nb.prompt(cell) for cell in prompts} == prompts, "no cell above was run again"
    view = nb.outputs(F_VIEW).locator(".dagnb-view")
    view.screenshot(path=str(out / "dag-view-follows.png"))

    view.locator(".lm-TabBar-tab", has_text="Trace").click()
    runs = view.locator("table.dagnb-runs tr[data-run]")
    expect(runs).to_have_count(5)  # a, b, c in their cells, a again, then %dag run
    expect(runs.nth(4)).to_contain_text("%dag run")
    expect(runs.nth(1).locator("td").nth(4)).to_have_text("")  # b's cell asks only for b: `a` is not part of it
    expect(runs.nth(4).locator("td").nth(4)).to_have_text("a")  # %dag run decides every task: `a` was in memory
    expect(view.locator("svg.dagnb-gantt g.dagnb-run")).to_have_count(5)
    view.screenshot(path=str(out / "dag-timeline.png"))


CHAIN_NOTEBOOK = ["%load_ext dagnb"] + [
    f"%%task --no-run\ndef step{i}({f'step{i - 1}' if i else ''}):\n    return {i}" for i in range(6)
] + ["%dag", "%dag run"]


def test_a_six_task_chain_is_drawn_whole(open_notebook: Any) -> None:
    """Every node of a 6-task chain is inside the view's frame, at the default zoom; at 200% the frame scrolls."""
    from playwright.sync_api import expect

    nb = open_notebook("chain.ipynb", CHAIN_NOTEBOOK)
    for cell in range(len(CHAIN_NOTEBOOK)):
        nb.run_cell(cell)
    view = nb.outputs(7).locator(".dagnb-view")
    expect(view.locator('svg.dagnb-graph g.dagnb-task[data-status="done"]')).to_have_count(6)
    view.scroll_into_view_if_needed()
    frame = view.locator(".dagnb-scroll").first
    box = frame.bounding_box()
    for i in range(6):
        node = view.locator(f'svg.dagnb-graph g.dagnb-task[data-task="step{i}"] rect').bounding_box()
        assert box["x"] <= node["x"] and node["x"] + node["width"] <= box["x"] + box["width"], f"step{i} is cut off"
        assert box["y"] <= node["y"] and node["y"] + node["height"] <= box["y"] + box["height"], f"step{i} is cut off"
    assert frame.evaluate("e => e.scrollWidth <= e.clientWidth"), "nothing to scroll at the default zoom"
    view.screenshot(path=str(artifacts_dir() / "dag-chain.png"))

    view.locator("select").first.select_option(label="200%")
    expect(view.locator('svg.dagnb-graph[data-zoom="2"]')).to_have_count(1)
    assert frame.evaluate("e => e.scrollWidth > e.clientWidth"), "the drawing is wider than its frame"
    page_width = nb.page.evaluate("() => document.documentElement.scrollWidth")
    assert page_width <= nb.page.viewport_size["width"], "the frame scrolls, not the page"
    frame.evaluate("e => { e.scrollLeft = e.scrollWidth; }")
    last = view.locator('svg.dagnb-graph g.dagnb-task[data-task="step3"] rect').bounding_box()
    box = frame.bounding_box()
    assert last["x"] + last["width"] <= box["x"] + box["width"] + 1, "scrolled to its end, the frame shows it"


INTERRUPT_NOTEBOOK = [
    "%load_ext dagnb",
    "%%task --no-run\ndef first():\n    return 1",
    "%%task --no-run\ndef slow(first):\n    import time\n    time.sleep(60)\n    return first",
    "%%task --no-run\ndef last(slow):\n    return slow",
    "%dag",
    "%dag run",
]


def test_interrupting_a_run_ends_in_one_paragraph_and_a_bar_that_says_what_finished(open_notebook: Any) -> None:
    from playwright.sync_api import expect

    nb = open_notebook("interrupt.ipynb", INTERRUPT_NOTEBOOK)
    for cell in range(5):
        nb.run_cell(cell)
    view = nb.outputs(4).locator(".dagnb-view")
    slow = view.locator('svg.dagnb-graph g.dagnb-task[data-task="slow"]')
    nb.start_cell(5)
    expect(slow).to_have_attribute("data-status", "running", timeout=30_000)
    nb.interrupt_kernel()
    expect(nb.cell(5).locator(".jp-InputArea-prompt").first).to_have_text(LabNotebook.PROMPT_DONE, timeout=30_000)
    error = nb.outputs(5).filter(has_text="RunInterrupted")
    expect(error).to_have_count(1)
    assert error.inner_text().strip() == (
        "RunInterrupted: The run was interrupted. Finished and kept: `first` (ran). Cancelled: `slow` (it was "
        "running) and `last` (not started). Run `%dag run` again to resume: only the 2 unfinished tasks run, "
        "the others are kept."
    )
    bar = view.locator(".dagnb-bar")
    for status, count in (("done", "1"), ("cancelled", "1"), ("skipped", "1")):
        expect(bar.locator(f'.dagnb-seg[data-status="{status}"]')).to_have_attribute("data-count", count)
    expect(bar).to_have_attribute("aria-valuenow", "3")
    expect(slow).to_have_attribute("data-status", "cancelled")
    nb.cell(4).scroll_into_view_if_needed()
    nb.page.screenshot(path=str(artifacts_dir() / "interrupt.png"))


LONG_CHAIN = 120  # tasks: the drawing is cut into tiles (TILE_TASKS per tile at most)
TILES_NOTEBOOK = [
    "%load_ext dagnb",
    "import dagnb\n@dagnb.task\ndef c0():\n    return 0\n" + "".join(
        f"@dagnb.task\ndef c{i}(c{i - 1}):\n    return c{i - 1} + 1\n" for i in range(1, LONG_CHAIN)),
    "%dag",
    "%dag run",
    "%%task --no-run\ndef extra(c119):\n    return c119",
]


def test_a_large_graph_is_drawn_in_tiles_that_stack_into_one_drawing(open_notebook: Any) -> None:
    """A 120-task chain: its tiles stack with no gap, as wide as each other; a run turns every box done; a task
    defined below appears in the last tile."""
    from playwright.sync_api import expect

    nb = open_notebook("tiles.ipynb", TILES_NOTEBOOK)
    for cell in range(3):
        nb.run_cell(cell)
    view = nb.outputs(2).locator(".dagnb-view")
    tiles = view.locator("svg.dagnb-graph")
    expect(view.locator("g.dagnb-task")).to_have_count(LONG_CHAIN)
    assert tiles.count() > 3, "drawn in tiles"
    view.scroll_into_view_if_needed()
    boxes = [tiles.nth(i).bounding_box() for i in range(tiles.count())]
    for above, below in zip(boxes, boxes[1:]):
        assert abs(above["y"] + above["height"] - below["y"]) < 1, f"a gap or an overlap between tiles: {boxes}"
        assert abs(above["width"] - below["width"]) < 1 and abs(above["x"] - below["x"]) < 1
    frame = view.locator(".dagnb-scroll").first
    assert frame.evaluate("e => e.scrollWidth <= e.clientWidth"), "fits the width at the default zoom"
    assert frame.evaluate("e => e.scrollHeight > e.clientHeight"), "a tall drawing scrolls in its frame"
    view.screenshot(path=str(artifacts_dir() / "dag-tiles.png"))

    nb.run_cell(3)
    expect(view.locator('g.dagnb-task[data-status="done"]')).to_have_count(LONG_CHAIN)
    nb.run_cell(4)
    expect(view.locator('g.dagnb-task[data-task="extra"]')).to_have_attribute("data-status", "pending")
    last = tiles.last.locator('g.dagnb-task[data-task="extra"]')
    expect(last).to_have_count(1)
    frame.evaluate("e => { e.scrollTop = e.scrollHeight; }")
    node = last.locator("rect").bounding_box()
    box = frame.bounding_box()
    assert box["y"] <= node["y"] and node["y"] + node["height"] <= box["y"] + box["height"] + 1, "scrolled, it shows"
    view.screenshot(path=str(artifacts_dir() / "dag-tiles-end.png"))
