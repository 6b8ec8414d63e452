"""Run traces: the critical path, the recorder fed by real runs, and the Gantt renderer."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from dagnb.events import Event, TaskFinished
from dagnb.trace import Span, Trace, critical_path, lane_rows
from dagnb.widgets import trace as trace_view

from .support import DIAMOND, NUM_SPAN, Session, diamond, durations, nbval_sanitize

DIAMOND_UP = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def _up(task: str) -> list[str]:
    return DIAMOND_UP.get(task, [])


def _span(task: str, start: float, end: float, status: str = "done", kind: str = "run", lane: str = "main") -> Span:
    return Span(task, lane, start, end, status, kind)


# ------------------------------------------------------------- critical path


def test_the_critical_path_follows_the_longest_branch() -> None:
    spans = [_span("a", 0, 1), _span("b", 1, 4), _span("c", 1, 2), _span("d", 4, 5)]
    assert critical_path(spans, _up) == ["a", "b", "d"]
    spans = [_span("a", 0, 1), _span("b", 1, 2), _span("c", 1, 4), _span("d", 4, 5)]
    assert critical_path(spans, _up) == ["a", "c", "d"]


def test_the_critical_path_weighs_durations_not_end_times() -> None:
    # c ends last but b is longer (c waited on another worker before it started)
    spans = [_span("a", 0, 1), _span("b", 1, 4), _span("c", 3.9, 4.5), _span("d", 4.5, 5)]
    assert critical_path(spans, _up) == ["a", "b", "d"]


def test_a_tie_is_broken_the_same_way_whatever_the_order_of_spans() -> None:
    spans = [_span("a", 0, 1), _span("b", 1, 3), _span("c", 1, 3), _span("d", 3, 4)]
    paths = {tuple(critical_path(list(order), _up)) for order in itertools.permutations(spans)}
    assert len(paths) == 1
    assert paths.pop() in {("a", "b", "d"), ("a", "c", "d")}


def test_equal_independent_chains_give_one_deterministic_path() -> None:
    spans = [_span("x", 0, 2), _span("y", 0, 2)]
    results = {tuple(critical_path(order, lambda t: [])) for order in itertools.permutations(spans)}
    assert len(results) == 1 and results.pop() in {("x",), ("y",)}


def test_tasks_without_spans_are_left_out() -> None:
    # b was up to date (no span); the path goes through c even though b is upstream of d
    spans = [_span("a", 0, 1), _span("c", 1, 1.5), _span("d", 1.5, 2)]
    assert critical_path(spans, _up) == ["a", "c", "d"]
    # an upstream name that is no task at all is ignored too
    assert critical_path([_span("z", 0, 1)], lambda t: ["ghost"]) == ["z"]
    assert critical_path([], _up) == []


# ------------------------------------------------------------ recorded runs


def test_a_run_records_one_main_lane_span_per_executed_task(tmp_path: Path) -> None:
    session = diamond(tmp_path)
    report = session.graph.run()
    trace = session.graph.trace
    assert trace is not None and trace.run_id == report.run_id == 1
    assert sorted(s.task for s in trace.spans) == ["a", "b", "c", "d"] == sorted(session.runs())
    assert {(s.lane, s.kind, s.status) for s in trace.spans} == {("main", "run", "done")}
    assert trace.lanes == ["main"]
    assert trace.tasks == ["a", "b", "c", "d"]
    assert trace.statuses == {"a": "done", "b": "done", "c": "done", "d": "done"}
    for span in trace.spans:
        assert span.duration == pytest.approx(report.durations[span.task], abs=1e-9)
        assert 0.0 <= span.start <= span.end <= trace.wall_time
    assert trace.critical[0] == "a" and trace.critical[-1] == "d" and len(trace.critical) == 3
    assert trace.saved == 0.0


def test_loads_in_a_new_session_are_load_spans_that_saved_the_original_compute_time(tmp_path: Path) -> None:
    first = diamond(tmp_path)
    computed = first.graph.run().durations
    second = Session(tmp_path)  # a restarted kernel: same cells, same cache directory
    second.tasks(DIAMOND)
    seen: list[Event] = []
    second.graph.bus.subscribe(seen.append)
    report = second.graph.run()
    assert report.cached == ["a", "b", "c", "d"]
    assert first.runs() == ["a", "b", "c", "d"], "the log both sessions write shows each body ran once"
    trace = second.graph.trace
    assert [(s.task, s.kind, s.status, s.lane) for s in trace.spans] == [
        (t, "load", "cached", "main") for t in "abcd"
    ]
    saved = {e.task: e.saved for e in seen if isinstance(e, TaskFinished)}
    assert saved == {t: computed[t] for t in "abcd"}, "each load saved exactly the compute time it skipped"
    assert trace.saved == pytest.approx(sum(computed.values()), rel=1e-12)
    assert trace.task_time == 0.0, "loads are not task time"


def test_the_critical_path_uses_the_edges_the_run_had(tmp_path: Path) -> None:
    session = Session(tmp_path, cache=False)
    session.cell("import time\n")
    session.tasks([
        "def a():\n    return 1\n",
        "def b(a):\n    time.sleep(0.05)\n    return a\n",
        "def c(a):\n    return a\n",
        "def d(b, c):\n    return b + c\n",
    ])
    session.graph.run()
    session.task("def d(c):\n    return c\n")  # edited after the run, before any view drew its trace
    assert session.graph.trace.critical == ["a", "b", "d"]


def test_the_trace_is_the_latest_runs(tmp_path: Path) -> None:
    session = diamond(tmp_path, cache=False)
    session.graph.run()
    session.graph.run(["b"], force=["b"])
    trace = session.graph.trace
    assert trace.run_id == 2
    assert trace.tasks == ["a", "b"]
    assert [s.task for s in trace.spans] == ["b"], "a was already in memory: no work, no span"


def test_a_failed_run_traces_the_failure_and_what_it_stopped(tmp_path: Path) -> None:
    session = Session(tmp_path, cache=False)
    session.tasks(["def a():\n    raise ValueError('boom')\n", "def b(a):\n    return a\n"])
    session.graph.run(raise_errors=False)
    trace = session.graph.trace
    assert trace.statuses == {"a": "failed", "b": "skipped"}
    assert [(s.task, s.status) for s in trace.spans] == [("a", "failed")]
    assert trace_view.render_text(trace) == (
        "trace of run 1: 0 ran, 1 failed, 1 skipped (timings are in the live view)\n"
        "  a  failed\n"
        "  b  skipped"
    )


# ------------------------------------------------------------------ renderer


def _trace() -> Trace:
    spans = [
        _span("a", 0.0, 0.010, "cached", "load"),
        _span("b", 0.010, 0.200, lane="dagnb_0"),
        _span("c", 0.010, 0.050, lane="dagnb_1"),
        _span("d", 0.200, 0.300, lane="dagnb_0"),
    ]
    return Trace(
        run_id=3,
        tasks=["a", "b", "c", "d"],
        spans=spans,
        statuses={"a": "cached", "b": "done", "c": "done", "d": "done"},
        wall_time=0.31,
        saved=0.5,
        upstream={t: tuple(u) for t, u in DIAMOND_UP.items()},
    )


def _bars(svg: str) -> dict[str, tuple[bool, str]]:
    found = re.findall(r'<g class="dagnb-span( dagnb-critical)?" data-task="([^"]*)" data-kind="(\w+)">', svg)
    return {task: (bool(critical), kind) for critical, task, kind in found}


def test_gantt_outlines_the_critical_path_and_marks_loads() -> None:
    trace = _trace()
    assert trace.critical == ["a", "b", "d"]
    assert _bars(trace_view.render_svg(trace)) == {
        "a": (True, "load"),
        "b": (True, "run"),
        "c": (False, "run"),
        "d": (True, "run"),
    }


def test_gantt_has_one_lane_per_worker_with_main_first() -> None:
    trace = _trace()
    assert trace.lanes == ["main", "dagnb_0", "dagnb_1"]
    svg = trace_view.render_svg(trace)
    labels = re.findall(r'<text x="8" y="(\d+)" fill="#57606a">([^<]*)</text>', svg)
    assert [name for _, name in labels] == ["main", "dagnb_0", "dagnb_1"]
    y_of = {name: int(y) for y, name in labels}
    bar_y = dict(re.findall(r'data-task="(\w)" data-kind="\w+"><title>[^<]*</title><rect x="[\d.]+" y="(\d+)"', svg))
    assert int(bar_y["b"]) == int(bar_y["d"]) != int(bar_y["c"]), "b and d ran on the same worker"
    assert int(bar_y["a"]) < int(bar_y["b"]) < int(bar_y["c"])
    assert y_of["main"] < y_of["dagnb_0"] < y_of["dagnb_1"]


def test_gantt_bars_are_placed_by_time() -> None:
    svg = trace_view.render_svg(_trace())
    x = {t: (float(a), float(w)) for t, a, w in re.findall(
        r'data-task="(\w)" data-kind="\w+"><title>[^<]*</title><rect x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)}
    scale = trace_view.CHART_W / 0.31
    assert x["b"][0] == pytest.approx(trace_view.LABEL_W + 0.010 * scale, abs=0.1)
    assert x["b"][1] == pytest.approx(0.190 * scale, abs=0.1)
    assert x["d"][0] == pytest.approx(x["b"][0] + x["b"][1], abs=0.2), "d starts when b ends"


def test_html_names_the_run_its_counts_and_critical_path() -> None:
    html = trace_view.render_html(_trace())
    assert "<b>run 3: 3 ran, 1 loaded from cache</b>" in html
    assert 'critical path (outlined): <span class="dagnb-num">a → b → d</span>' in html
    assert 'data-kind="load"' in html


def test_fallbacks_carry_no_timing() -> None:
    trace = _trace()
    text = trace_view.render_text(trace)
    html = trace_view.render_html(trace, numbers=False)
    assert text == (
        "trace of run 3: 3 ran, 1 loaded from cache (timings are in the live view)\n"
        "  a  loaded from cache\n"
        "  b  ran\n"
        "  c  ran\n"
        "  d  ran"
    )
    assert durations(text) == [] and durations(html) == []
    assert "dagnb-num" not in html and "<svg" not in html


def test_without_a_run_the_trace_says_how_to_get_one() -> None:
    assert trace_view.render_text(None) == "trace: no run yet (%dag run records one)"
    assert trace_view.render_html(None) == (
        "<p class='dagnb-trace'>no run yet: <code>%dag run</code> records a trace</p>"
    )


def test_live_totals_are_masked_numbers() -> None:
    html = trace_view.render_html(_trace())
    totals = re.search(r"<p>(wall time .*?)</p>", html).group(1)
    assert NUM_SPAN.sub("N", totals) == "wall time N · task time N · parallelism N · saved by cache loads N"
    assert re.findall(r'<span class="dagnb-num">([^<]*)</span>', totals) == ["310 ms", "330 ms", "1.1×", "500 ms"]


def test_the_numbers_of_the_live_trace_all_sit_where_validators_mask_them() -> None:
    """Totals are ``dagnb-num`` spans; the Gantt (ticks, tooltips, bar geometry) is masked whole."""
    html = trace_view.render_html(_trace())
    assert durations(html), "the live view does show times"
    masked = nbval_sanitize(html)
    assert durations(masked) == []
    assert '<svg class="dagnb-gantt">…</svg>' in masked
    assert "<title>" not in masked, "every bar tooltip (with its time) went with the Gantt"


# ---------------------------------------------------------- the session timeline


def test_tasks_that_ran_at_the_same_time_get_rows_of_their_own_and_never_overlap(tmp_path: Path) -> None:
    session = Session(tmp_path, cache=False)
    session.cell("import asyncio\n")
    session.tasks([
        "async def first():\n    note('first')\n    await asyncio.sleep(0.05)\n    return 1\n",
        "async def second():\n    note('second')\n    await asyncio.sleep(0.05)\n    return 2\n",
        "def after(first, second):\n    note('after')\n    return first + second\n",
    ])
    session.graph.run()
    trace = session.graph.trace
    spans = {s.task: s for s in trace.spans}
    assert spans["first"].lane == spans["second"].lane == "async"
    assert spans["second"].start < spans["first"].end, "the two async tasks did run at the same time"
    rows = trace.rows()
    assert [label for label, _ in rows] == ["main", "async", "async ·2"]
    assert sorted(s.task for _, row in rows[1:] for s in row) == ["first", "second"]
    svg = trace_view.render_svg(trace)
    bars = {t: (float(x), int(y), float(w)) for t, x, y, w in re.findall(
        r'data-task="(\w+)" data-kind="run"><title>[^<]*</title><rect x="([\d.]+)" y="(\d+)" width="([\d.]+)"', svg)}
    assert bars["first"][1] != bars["second"][1], "drawn on different rows"
    for a, b in itertools.combinations(bars.values(), 2):
        assert a[1] != b[1] or a[0] + a[2] <= b[0] + 0.1 or b[0] + b[2] <= a[0] + 0.1, "no bar over another"
    assert sorted(session.runs()) == ["after", "first", "second"]


def test_a_lane_is_split_only_where_spans_overlap() -> None:
    spans = [_span("a", 0, 2), _span("b", 1, 3), _span("c", 2, 4), _span("d", 3.5, 5)]
    rows = [(label, [s.task for s in row]) for label, row in lane_rows(spans, ["main"])]
    assert rows == [("main", ["a", "c"]), ("main ·2", ["b", "d"])]


def _cell_by_cell(tmp_path: Path) -> Session:
    """Three cells, as a notebook run cell by cell: each defines a task and brings it up to date."""
    session = Session(tmp_path)
    for label, source in zip(("[1] %%task a", "[2] %%task b", "[3] %%task c"), DIAMOND[:3]):
        session.graph.origin = label
        session.graph.run([session.task(source)])
    session.graph.origin = "[4] %dag run"
    session.task(DIAMOND[3])
    session.graph.run()
    return session


def test_the_timeline_has_every_run_of_the_session_in_order(tmp_path: Path) -> None:
    session = _cell_by_cell(tmp_path)
    timeline = session.graph.timeline
    assert [(t.run_id, t.origin) for t in timeline.runs] == [
        (1, "[1] %%task a"), (2, "[2] %%task b"), (3, "[3] %%task c"), (4, "[4] %dag run")]
    assert trace_view.render_timeline_text(timeline) == (
        "trace: 4 runs since the kernel started: 4 ran, 5 already in memory (timings are in the live view)\n"
        "  run 1 · [1] %%task a: a ran\n"
        "  run 2 · [2] %%task b: b ran; a already in memory\n"
        "  run 3 · [3] %%task c: c ran; a already in memory\n"
        "  run 4 · [4] %dag run: d ran; a, b, c already in memory"
    )
    svg = trace_view.render_timeline_svg(timeline)
    assert re.findall(r'<g class="dagnb-run" data-run="(\d+)">', svg) == ["1", "2", "3", "4"]
    placed = dict(re.findall(r'data-task="(\w)" data-kind="run" data-run="(\d)"', svg))
    assert placed == {"a": "1", "b": "2", "c": "3", "d": "4"}
    xs = {t: float(x) for t, x in re.findall(r'data-task="(\w)" data-kind="run" data-run="\d"><title>[^<]*</title>'
                                             r'<rect x="([\d.]+)"', svg)}
    assert xs["a"] < xs["b"] < xs["c"] < xs["d"], "runs side by side in the order they ran"
    assert session.runs() == ["a", "b", "c", "d"]


def test_the_timeline_names_what_each_run_loaded_and_what_was_in_memory(tmp_path: Path) -> None:
    _cell_by_cell(tmp_path)
    again = Session(tmp_path)  # a restarted kernel: its timeline starts empty
    assert again.graph.timeline.runs == []
    again.tasks(DIAMOND)
    again.graph.origin = "[1] %dag run"
    again.graph.run(["b"])
    again.graph.run()
    html = trace_view.render_timeline_html(again.graph.timeline)
    assert "<b>2 runs since the kernel started: 0 ran, 4 loaded from cache, 2 already in memory</b>" in html
    rows = re.findall(r"<tr data-run='(\d)'><td>\d</td><td>([^<]*)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>",
                      html)
    assert rows == [
        ("1", "[1] %dag run", "", "<code>a</code>, <code>b</code>", ""),
        ("2", "[1] %dag run", "", "<code>c</code>, <code>d</code>", "<code>a</code>, <code>b</code>"),
    ]
    assert "no task ran" in html, "no parallelism of 0.0× when nothing ran"
    deterministic = trace_view.render_timeline_html(again.graph.timeline, numbers=False)
    assert durations(deterministic) == [] and "<svg" not in deterministic
    masked = nbval_sanitize(html)
    assert durations(masked) == [] and '<svg class="dagnb-gantt">…</svg>' in masked
