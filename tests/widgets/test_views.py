"""The ipywidgets views, driven by real runs, with a recording comm and no kernel."""

from __future__ import annotations

import gc
import re
import weakref
from pathlib import Path
from typing import Any

import pytest

from dagnb.events import Event, RunStarted, TaskProgress, TaskStarted
from dagnb.graph import spec_from_function
from dagnb.widgets.live import LiveFeed, settle_all
from dagnb.widgets.progress_view import SHOW_AFTER
from dagnb.widgets.views import (
    HIDDEN,
    MAX_LIVE,
    WIDGET_MIME,
    CostsView,
    DagView,
    RunProgress,
    TraceView,
)

from .support import (
    CommLog,
    FakeClock,
    Session,
    define_noop_tasks,
    diamond,
    durations,
    fake_feed,
    graph_statuses,
    progress_of,
    table_tasks,
)

pytestmark = pytest.mark.usefixtures("comms")


def _tabs(view: DagView) -> Any:
    return view.widget.children[2]


def _tile(view: DagView) -> Any:
    """The one tile of a small graph's drawing."""
    assert len(view.drawing.tiles) == 1
    return view.drawing.tiles[0]


def _show(view: DagView, tab: int) -> None:
    """Select a tab, as a click in the frontend does."""
    _tabs(view).selected_index = tab


def _walk(widget: Any) -> Any:
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


def _sent_to(comms: CommLog, widget: Any, since: int = 0) -> list[dict[str, Any]]:
    """The state updates ``widget`` sent since ``since``."""
    return [m.data["state"] for m in comms.updates(since) if m.comm_id == widget.model_id]


# -------------------------------------------------------------------- DagView


def test_dag_view_is_one_widget_tree_with_four_tabs(tmp_path: Path, comms: CommLog) -> None:
    session = diamond(tmp_path)
    view = DagView(session.graph)
    assert "dagnb-view" in view.widget._dom_classes
    assert _tabs(view).titles == ("Graph", "Plan", "Costs", "Trace")
    assert graph_statuses(view.graph_html.value) == dict.fromkeys("abcd", "pending")
    assert "<b>plan: 4 to run, 0 cached</b>" in view.plan_html.value
    assert "no run yet" in view.trace_html.value
    assert table_tasks(view.costs.table.value) == ["a", "b", "c", "d"]
    assert progress_of(view.progress.value) == (0, 0, {}) and "dagnb-run-label" not in view.progress.value
    assert "4 pending" in view.header.value
    assert session.runs() == [], "showing a view never runs a task"
    opened = {m.comm_id for m in comms.opened()}
    assert view.widget.model_id in opened and _tile(view).model_id in opened


def test_a_run_through_the_real_event_bus_updates_every_panel(tmp_path: Path, comms: CommLog) -> None:
    session = diamond(tmp_path)
    view = DagView(session.graph)  # its own feed: real clock, real timers
    before = {"plan": view.plan_html.value, "costs": view.costs.table.value, "trace": view.trace_html.value}
    mark = comms.mark()
    session.graph.run()
    assert graph_statuses(view.graph_html.value) == dict.fromkeys("abcd", "done")
    assert progress_of(view.progress.value) == (4, 4, {"done": 4})
    assert "<span class='dagnb-run-label'>run 1: 4/4 tasks: 4 ran</span>" in view.progress.value
    assert "4 done" in view.header.value
    hidden = {view.plan_html.model_id, view.costs.table.model_id, view.trace_html.model_id}
    assert not hidden & {m.comm_id for m in comms.updates(mark)}, "a hidden tab is not redrawn"
    assert before == {"plan": view.plan_html.value, "costs": view.costs.table.value, "trace": view.trace_html.value}
    _show(view, DagView.PLAN)
    assert "<b>plan: 0 to run, 4 cached</b>" in view.plan_html.value
    _show(view, DagView.TRACE)
    assert "<b>1 run since the kernel started: 4 ran</b>" in view.trace_html.value
    _show(view, DagView.COSTS)
    assert view.costs.table.value != before["costs"]
    assert before["trace"] != view.trace_html.value and before["plan"] != view.plan_html.value
    sent = len(comms.updates())
    _show(view, DagView.PLAN)
    _show(view, DagView.COSTS)
    assert len(comms.updates()) == sent + 2, "a tab shown again sends only the selection: it shows this snapshot"
    assert sorted(session.runs()) == ["a", "b", "c", "d"]


def test_the_tab_on_show_follows_each_run(tmp_path: Path, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    view = DagView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    _show(view, DagView.TRACE)
    session.graph.run()
    assert "<b>1 run since the kernel started: 4 ran</b>" in view.trace_html.value
    assert "<b>plan: 4 to run, 0 cached</b>" in view.plan_html.value, "hidden: drawn when shown"


def test_a_second_run_keeps_values_already_in_memory_done(tmp_path: Path, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    session.graph.run()
    view = DagView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    session.graph.run()
    assert session.runs() == ["a", "b", "c", "d"], "nothing ran twice"
    assert graph_statuses(view.graph_html.value) == dict.fromkeys("abcd", "done")
    assert progress_of(view.progress.value) == (4, 4, {"cached": 4})
    _show(view, DagView.TRACE)
    assert "<b>2 runs since the kernel started: 4 ran, 4 already in memory</b>" in view.trace_html.value


def test_a_failed_run_shows_failed_and_skipped_tasks(tmp_path: Path, clock: FakeClock) -> None:
    session = Session(tmp_path, cache=False)
    session.tasks([
        "def ok():\n    note('ok')\n    return 1\n",
        "def bad(ok):\n    note('bad')\n    raise ValueError('boom')\n",
        "def after(bad):\n    note('after')\n    return bad\n",
    ])
    view = DagView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    session.graph.run(raise_errors=False)
    assert graph_statuses(view.graph_html.value) == {"ok": "done", "bad": "failed", "after": "skipped"}
    assert "1 done, 1 failed, 1 skipped" in view.header.value
    assert progress_of(view.progress.value) == (3, 3, {"done": 1, "failed": 1, "skipped": 1}), "one color per outcome"
    assert session.runs() == ["ok", "bad"]


def test_a_graph_that_cannot_be_planned_says_why_in_graph_and_plan(tmp_path: Path) -> None:
    session = Session(tmp_path, cache=False)
    session.task("def e(missing):\n    return 1\n")
    view = DagView(session.graph)
    message = (
        "Task `e` has a parameter `missing` that is neither a task, a default, nor a notebook variable. "
        "Define it in a cell above, give it a default, or add a `%%task def missing(...)`."
    )
    assert f"<p class='dagnb-problem'>{message}</p>" in view.graph_html.value
    assert f"<p class='dagnb-problem'>cannot plan: {message}</p>" == view.plan_html.value
    assert view.render_text().endswith(f"  cannot plan: {message}")


def test_defining_a_task_redraws_once_when_the_cell_ends(tmp_path: Path, comms: CommLog, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    view = DagView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    mark = comms.mark()
    session.task("def e(d):\n    return d\n")
    assert "e" not in graph_statuses(view.graph_html.value)
    settle_all()  # what the magics do after each cell
    assert graph_statuses(view.graph_html.value)["e"] == "pending"
    assert len(_sent_to(comms, _tile(view), mark)) == 1
    _show(view, DagView.PLAN)
    assert "<b>plan: 5 to run, 0 cached</b>" in view.plan_html.value
    assert comms.opened(mark) == [], "a redraw sets values; it builds no widgets"


def test_six_views_share_one_snapshot_and_a_definition_sends_what_changed(tmp_path: Path, comms: CommLog,
                                                                          clock: FakeClock) -> None:
    """A task added below a 300-task chain under 6 live views: each sends its header and its last tile."""
    from dagnb.overview import planned
    from dagnb.widgets.live import follow_all

    session = Session(tmp_path, cache=False)
    define_noop_tasks(session.graph, [[i - 1] if i else [] for i in range(300)])
    session.graph.run()
    views = [DagView(session.graph) for _ in range(MAX_LIVE)]
    for view in views:
        fake_feed(view, session.graph.bus, clock)
    whole = sum(len(t.value) for t in views[0].drawing.tiles)
    mark = comms.mark()
    session.task("def extra(t299):\n    return None\n")
    follow_all(planned(session.graph))  # what the notebook glue does when the cell ends
    assert all(view.view is views[0].view for view in views), "one snapshot for every view"
    for view in views:
        assert graph_statuses(view.graph_html.value)["extra"] == "pending"
        assert "1 pending, 300 done" in view.header.value
    sent = comms.updates(mark)
    assert {m.comm_id for m in sent} == {m for v in views for m in (v.header.model_id, v.drawing.tiles[-1].model_id)}
    assert sum(m.size for m in sent) < len(views) * whole / 10, "a tile, not the drawing again"
    assert comms.opened(mark) == []


def test_zoom_redraws_the_graph_scaled(tmp_path: Path, comms: CommLog) -> None:
    session = diamond(tmp_path, cache=False)
    view = DagView(session.graph)

    def size() -> tuple[int, int]:
        m = re.search(r'<svg class="dagnb-graph" [^>]*width="(\d+)" height="(\d+)"', view.graph_html.value)
        return int(m.group(1)), int(m.group(2))

    assert view.zoom.value == "fit" and 'style="max-width:100%;height:auto"' in view.graph_html.value, "it fits"
    view.zoom.value = 1.0
    w, h = size()
    mark = comms.mark()
    view.zoom.value = 2.0
    assert size() == (2 * w, 2 * h)
    assert len(_sent_to(comms, _tile(view), mark)) == 1
    session.graph.run()
    assert size() == (2 * w, 2 * h), "a redraw keeps the zoom"


def test_bundle_is_the_widget_plus_deterministic_fallbacks(tmp_path: Path) -> None:
    def session_bundle(root: Path) -> tuple[dict[str, Any], dict[str, Any], DagView, list[dict[str, Any]]]:
        session = diamond(root)
        view = DagView(session.graph)
        others = [CostsView(session.graph), TraceView(session.graph)]
        session.graph.run()
        data, meta = view._repr_mimebundle_()
        return data, meta, view, [v._repr_mimebundle_()[0] for v in others]

    data, meta, view, other = session_bundle(tmp_path / "one")
    again, _, _, other_again = session_bundle(tmp_path / "two")
    for one, two in zip(other, other_again, strict=True):
        assert (one["text/plain"], one["text/html"]) == (two["text/plain"], two["text/html"])
        assert durations(one["text/plain"]) == durations(one["text/html"]) == []
    assert data[WIDGET_MIME] == {"version_major": 2, "version_minor": 0, "model_id": view.widget.model_id}
    assert data["text/plain"] == again["text/plain"] == (
        "dag: 4 tasks: 4 done\n"
        "  a  done\n"
        "  b  done       <- a\n"
        "  c  done       <- a\n"
        "  d  done       <- b, c"
    )
    assert data["text/html"] == again["text/html"]
    assert data["text/html"].startswith('<div class="dagnb-static">')
    assert durations(data["text/html"]) == [] and "dagnb-num" not in data["text/html"]
    assert repr(view) == data["text/plain"]
    dagnb = meta["dagnb"]
    assert dagnb["view"] == "dag"
    assert set(dagnb["durations"]) == {"a", "b", "c", "d"}
    assert all(isinstance(d, float) and d >= 0 for d in dagnb["durations"].values())
    assert dagnb["statuses"] == dict.fromkeys("abcd", "done")
    assert dagnb["critical_path"][0] == "a" and dagnb["critical_path"][-1] == "d"
    assert dagnb["wall_time"] > 0


def test_a_view_without_a_kernel_is_static(tmp_path: Path, comms: CommLog) -> None:
    session = diamond(tmp_path)
    mark = comms.mark()
    views = [DagView(session.graph, live=False), CostsView(session.graph, live=False),
             TraceView(session.graph, live=False)]
    session.graph.run()
    assert comms.messages[mark:] == [], "no widget, no comm"
    for view in views:
        data, meta = view._repr_mimebundle_()
        assert WIDGET_MIME not in data
        assert set(data) == {"text/plain", "text/html"}
        assert meta["dagnb"]["view"] == view.kind
        assert view.feed is None
    assert views[0].render_text().splitlines()[0] == "dag: 4 tasks: 4 pending", "a static view is a snapshot"


# ------------------------------------------------------------ Costs and Trace


def test_costs_view_sorts_with_its_dropdown_and_toggle(tmp_path: Path, comms: CommLog) -> None:
    session = Session(tmp_path, cache=False)
    output_bytes = {"alpha": 100_000, "beta": 10, "gamma": 1_000}
    session.tasks([f"def {name}():\n    return b'x' * {size}\n" for name, size in output_bytes.items()])
    session.graph.run()
    view = CostsView(session.graph)
    panel = view.panel
    assert "dagnb-costs-view" in view.widget._dom_classes
    mark = comms.mark()
    panel.by.value = "output_bytes"
    assert table_tasks(panel.table.value) == ["alpha", "gamma", "beta"]
    panel.descending.value = False
    assert table_tasks(panel.table.value) == ["beta", "gamma", "alpha"]
    assert "output bytes ▲" in panel.table.value
    panel.by.value = "task"
    assert table_tasks(panel.table.value) == ["alpha", "beta", "gamma"]
    assert len(_sent_to(comms, panel.table, mark)) == 3, "one table update per change"
    data, _ = view._repr_mimebundle_()
    assert data["text/plain"].splitlines()[1:] == [
        "  alpha  done       cached value, 0 hits",
        "  beta   done       cached value, 0 hits",
        "  gamma  done       cached value, 0 hits",
    ]


def test_costs_view_redraws_only_when_a_run_ends(tmp_path: Path, comms: CommLog, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    view = CostsView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    session.graph.bus.subscribe(clock.ticker(1.0))  # every event is a second later: each could redraw
    mark = comms.mark()
    session.graph.run()
    assert len(_sent_to(comms, view.panel.table, mark)) == 1
    assert re.search(r"<td><code>a</code></td>.*?<td class=\"r\"><span class=\"dagnb-num\">(\d+ µs|\d+ ms)",
                     view.panel.table.value), "the table shows the measured durations"


def test_trace_view_follows_the_newest_run(tmp_path: Path, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    view = TraceView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    assert "no run yet" in view.html.value
    session.graph.run()
    assert "<b>1 run since the kernel started: 4 ran</b>" in view.html.value
    session.graph.run(["b"], force=["b"])
    assert "<b>2 runs since the kernel started: 5 ran, 1 already in memory</b>" in view.html.value
    assert view.panel.run.options == (("the whole session", 0), ("run 1", 1), ("run 2", 2))
    view.panel.run.value = 2  # one run alone: its Gantt chart
    assert "<b>run 2: 1 ran, 1 already in memory</b>" in view.html.value and "dagnb-runs" not in view.html.value
    assert view.render_text() == (
        "trace: 2 runs since the kernel started: 5 ran, 1 already in memory (timings are in the live view)\n"
        "  run 1: a, b, c, d ran\n"
        "  run 2: b ran; a already in memory"
    )


# ------------------------------------------------------------ lifetime


def test_views_beyond_max_live_keep_their_drawing_but_stop_following(tmp_path: Path) -> None:
    session = diamond(tmp_path, cache=False)
    views = [TraceView(session.graph) for _ in range(MAX_LIVE + 1)]
    session.graph.run()
    assert "no run yet" in views[0].html.value, "the oldest view stopped following events"
    assert all("<b>1 run since the kernel started" in v.html.value for v in views[1:])
    assert views[0].html.comm is not None, "its widget is still open, showing its last drawing"


def test_a_feed_whose_view_was_collected_unsubscribes_on_the_next_event(tmp_path: Path) -> None:
    session = diamond(tmp_path, cache=False)
    bus = session.graph.bus

    class Recorder:
        def __init__(self) -> None:
            self.events: list[Event] = []

        def apply(self, event: Event) -> None:
            self.events.append(event)

        def flush(self, full: bool) -> None:
            pass

    view = Recorder()
    feed = LiveFeed(bus, view)
    unsubscribed: list[Any] = []
    original = bus.unsubscribe
    bus.unsubscribe = lambda fn: (unsubscribed.append(fn), original(fn))[1]  # type: ignore[method-assign]
    session.graph.run(["a"])
    assert len(view.events) == 4 and unsubscribed == []
    ref = weakref.ref(view)
    del view
    gc.collect()
    assert ref() is None, "the feed does not keep its view alive"
    session.graph.run(["a"])
    assert unsubscribed == [feed], "unsubscribed once, at the first event after"
    session.graph.run(["a"])
    assert unsubscribed == [feed]


def test_a_closed_view_stops_following_and_closes_its_widgets(tmp_path: Path, comms: CommLog) -> None:
    session = diamond(tmp_path, cache=False)
    view = DagView(session.graph)
    html = view.graph_html.value
    tree = list(_walk(view.widget))
    ids = {w.model_id for w in tree}
    view.close()
    closed = {m.comm_id for m in comms.messages if m.msg_type == "comm_close"}
    assert len(tree) == 21 and ids <= closed
    assert all(w.comm is None for w in tree)
    mark = comms.mark()
    session.graph.run()
    assert comms.messages[mark:] == []
    assert view.graph_html.value == html


def test_after_a_cell_a_view_follows_a_changed_notebook_variable(tmp_path: Path, comms: CommLog) -> None:
    """``threshold = 4`` in an ordinary cell: the plan after the cell reaches the view; nothing runs."""
    from dagnb.overview import planned
    from dagnb.widgets.live import follow_all

    session = Session(tmp_path, cache=False)
    session.cell("threshold = 3\n")
    session.tasks(["def a():\n    note('a')\n    return 1\n",
                   "def b(a, threshold):\n    note('b')\n    return a + threshold\n"])
    session.graph.run()
    view, costs = DagView(session.graph), CostsView(session.graph)
    mark = comms.mark()
    follow_all(planned(session.graph))
    assert comms.updates(mark) == [], "a cell that changed nothing redraws nothing"

    session.cell("threshold = 4\n")
    follow_all(planned(session.graph))
    assert graph_statuses(view.graph_html.value) == {"a": "done", "b": "stale"}
    _show(view, DagView.PLAN)
    assert "<td><code>b</code></td><td>run</td><td>input threshold changed</td>" in view.plan_html.value
    assert "1 stale, 1 done" in view.header.value
    assert 'dagnb-swatch" style="background:#f2c744"></span> stale' in costs.panel.table.value
    assert session.runs() == ["a", "b"], "following never runs a task"


# ---------------------------------------------------------------- RunProgress


class Displays:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def __call__(self, data: dict[str, Any], **kwargs: Any) -> None:
        self.calls.append((data, kwargs))


def _progress(session: Session, clock: FakeClock, own: str | None, slow: bool = True) -> tuple[RunProgress, Displays]:
    """A progress bar on a fake clock; ``slow``: each run takes ``SHOW_AFTER`` before its first task starts."""
    progress = RunProgress(session.graph, own)
    shown = Displays()
    progress._display = shown  # type: ignore[method-assign]
    fake_feed(progress, session.graph.bus, clock)
    if slow:  # after the feed: the bar has seen the run start when time moves on
        session.graph.bus.subscribe(lambda e: clock.advance(SHOW_AFTER) if isinstance(e, RunStarted) else None)
    return progress, shown


def test_a_run_that_ends_before_a_bar_is_due_shows_none_and_loads_no_widget(tmp_path: Path, clock: FakeClock,
                                                                            comms: CommLog) -> None:
    session = diamond(tmp_path, cache=False)
    mark = comms.mark()
    progress, shown = _progress(session, clock, own=None, slow=False)
    session.graph.run()
    progress.close()
    assert shown.calls == [] and comms.messages[mark:] == [], "a quick run shows no bar that would vanish at once"
    assert clock.scheduled == 0, "a bar not on the page is never redrawn: no timer (a thread's wake-up) per cell"
    assert session.runs() == ["a", "b", "c", "d"]
    later, shown = _progress(session, clock, own=None, slow=False)
    session.graph.run(force=["a"])  # the first event starts the cell's clock
    clock.advance(SHOW_AFTER)
    session.graph.run(force=["b"])
    assert len(shown.calls) == 1, "a cell whose runs go on past SHOW_AFTER shows its bar at the next task"
    later.close()


def test_progress_is_shown_once_another_task_starts_and_hidden_at_close(tmp_path: Path, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    progress, shown = _progress(session, clock, own="a")
    session.graph.run(["a"])
    assert shown.calls == [], "the cell's own task alone shows no progress"
    session.graph.run()  # b, c and d start
    assert len(shown.calls) == 1, "displayed once, then updated in place"
    data, options = shown.calls[0]
    assert data == {WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": progress.widget.model_id}}
    assert options == {"raw": True, "display_id": progress.display_id}
    assert progress_of(progress.bar.value) == (5, 5, {"done": 4, "cached": 1}), "counts add up over the cell's runs"
    assert progress.label.value == "5/5 tasks: 4 ran, 1 cached"
    bar = progress.bar
    progress.close()
    assert shown.calls[1] == (HIDDEN, {"raw": True, "display_id": progress.display_id, "update": True})
    assert len(shown.calls) == 2
    assert bar.comm is None, "its widgets are closed"
    assert session.runs() == ["a", "b", "c", "d"]


def test_progress_of_a_cell_whose_own_task_runs_alone_is_never_shown(tmp_path: Path, clock: FakeClock,
                                                                    comms: CommLog) -> None:
    session = diamond(tmp_path, cache=False)
    mark = comms.mark()
    progress, shown = _progress(session, clock, own="a")
    session.graph.run(["a"])
    progress.close()
    assert shown.calls == []
    assert comms.messages[mark:] == [], "no widget was even made"
    assert session.runs() == ["a"]


def test_progress_lists_running_tasks_while_a_long_task_runs(tmp_path: Path, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    progress, shown = _progress(session, clock, own=None)
    labels: list[str] = []

    def long_body(event: Event) -> None:  # after the feed: the task body "takes" a second
        if isinstance(event, TaskStarted) and event.task == "c":
            clock.advance(1.0)
            labels.append(progress.label.value)

    session.graph.bus.subscribe(long_body)
    session.graph.run()
    assert labels == ["2/4 tasks: 2 ran · running c"]
    assert progress.label.value == "4/4 tasks: 4 ran"
    progress.close()
    assert len(shown.calls) == 2


def test_a_run_stopped_by_ctrl_c_shows_what_finished_and_what_was_cancelled(tmp_path: Path, clock: FakeClock) -> None:
    """Ctrl-C in ``stop``'s body: one task finished, two did not; neither bar looks complete."""
    from dagnb.errors import RunInterrupted

    session = Session(tmp_path, cache=False)
    session.tasks([
        "def ok():\n    note('ok')\n    return 1\n",
        "def stop(ok):\n    note('stop')\n    raise KeyboardInterrupt\n",
        "def after(stop):\n    note('after')\n    return stop\n",
    ])
    view = DagView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    progress, _ = _progress(session, clock, own=None)
    with pytest.raises(RunInterrupted):
        session.graph.run()
    assert session.runs() == ["ok", "stop"]
    outcome = {"done": 1, "cancelled": 1, "skipped": 1}
    assert progress_of(view.progress.value) == (3, 3, outcome)
    assert progress_of(progress.bar.value) == (3, 3, outcome)
    assert progress.label.value == "3/3 tasks: 1 ran, 1 skipped, 1 cancelled"
    widths = dict(re.findall(r'data-status="([\w-]+)" data-count="\d+" style="width:([\d.]+)%', view.progress.value))
    assert widths == {"done": "33.333", "skipped": "33.333", "cancelled": "33.333"}
    colors = set(re.findall(r"background:(#[0-9a-f]{6})\"></span>", view.progress.value))
    assert len(colors) == 3, "each outcome has its own color"
    progress.close()


# ----------------------------------------------------------- map tasks, live


def _slow_map(tmp_path: Path) -> Session:
    session = Session(tmp_path, cache=False)
    session.cell("import time\nfiles = [f'f{i}' for i in range(12)]\n")
    session.task("def count(files):\n    time.sleep(0.04)\n    note(files)\n    return len(files)\n")
    session.graph.add(spec_from_function(session.ns["count"], map="files"))
    session.task("def total(count):\n    return sum(count)\n")
    return session


def test_the_graph_shows_a_running_map_tasks_item_count(tmp_path: Path, clock: FakeClock) -> None:
    session = _slow_map(tmp_path)
    view = DagView(session.graph)
    fake_feed(view, session.graph.bus, clock, interval=0.0)  # every event redraws
    drawn: list[str] = []

    def seen(event: Event) -> None:  # after the feed: what the frontend has at each count
        if isinstance(event, TaskProgress):
            node = re.search(r'<g class="dagnb-task s-running" data-task="count".*?</g>', view.graph_html.value)
            assert node is not None, "the map task is drawn running"
            drawn.append(node.group(0))

    session.graph.bus.subscribe(seen)
    session.graph.run()
    assert len(drawn) >= 2
    first = re.search(r">count (\d+)/12</text>", drawn[0])
    assert first is not None and int(first.group(1)) < 12
    assert "elements to compute are done</title>" in drawn[0]
    assert ">count 12/12</text>" in view.graph_html.value and "12 of 12 elements ran" in view.graph_html.value
    assert len(session.runs()) == 12


def test_progress_names_the_item_count_of_a_running_map_task(tmp_path: Path, clock: FakeClock) -> None:
    session = _slow_map(tmp_path)
    progress, _ = _progress(session, clock, own=None)
    progress.feed.interval = 0.0
    labels: list[str] = []
    session.graph.bus.subscribe(lambda e: labels.append(progress.label.value) if isinstance(e, TaskProgress) else None)
    session.graph.run()
    counted = [label for label in labels if re.fullmatch(r"0/2 tasks · running count \(\d+/12 elements\)", label)]
    assert len(counted) >= 2, labels
    assert progress.label.value == "2/2 tasks: 2 ran"
    progress.close()
