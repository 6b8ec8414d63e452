"""Widget views: rendering large views, and what a live view costs a run.

Two questions, on the seeded random DAG of ``bench_graph`` (each task reads
up to 2 earlier ones) with no-op tasks:

1. How long each view takes to render for ``Sizes.tasks`` tasks: the graph
   SVG, the snapshot every full redraw takes (``graph.overview()``: plan and
   statuses; its costs are read when first shown), the costs table, the trace Gantt and its critical path,
   building a live ``DagView``, and one full redraw of it (what every run
   end and every task definition costs: views redrawn at one moment share
   the snapshot and its drawing, so the views on a page pay it once).
2. What following the notebook costs each cell: the plan taken after a cell
   for every status line and live view on the page (``planned`` then
   ``StatusLines.on_plan`` and ``follow_all``), when the cell changed nothing
   (nothing is sent), and what a notebook variable of ``memory_input_bytes``
   that a task reads adds to it (it is fingerprinted again after every cell).
3. What a live ``DagView`` adds to a run: the same ``graph.run()`` with and
   without one attached (real clock, default interval, thread timers), the
   overhead per task, and how many comm messages and bytes the run sends.
   Its goal comes from the design of the views: the graph is drawn in tiles
   and a redraw sends only the tiles whose tasks changed, the counts and
   the bar; the tabs not on show are not sent. The first redraw of a run
   changes no status, so a run sends at most ``redraws - 1`` times the
   drawing's bytes (as JSON, the way they are sent), plus ``HEAD_BYTES``
   per redraw for the counts and the bar. The tasks of this DAG finish
   spread over every tile, so each redraw resends most tiles; a chain sends
   each tile about twice (the kernel row of ``bench_kernel_live``).

No kernel runs: ``comm.create_comm`` is replaced by a comm that counts what
it would publish, as ipywidgets 8 opens every widget's comm through it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from _common import Row, Sizes, best_of, ms, us_per
from bench_graph import make_graph, random_edges

import dagnb
from dagnb.trace import critical_path
from dagnb.widgets import costs as costs_view
from dagnb.widgets import graph as graph_view
from dagnb.widgets import trace as trace_view
from dagnb.widgets.live import LiveFeed

HEAD_BYTES = 2_000  # per redraw, the goal's allowance for the counts and the progress bar


@dataclass
class CommCount:
    """``comm_msg`` messages and their JSON payload bytes (state updates to a frontend)."""

    messages: int = 0
    nbytes: int = 0
    opened: int = 0

    def reset(self) -> None:
        self.messages = self.nbytes = self.opened = 0


@contextmanager
def counting_comms() -> Iterator[CommCount]:
    import comm

    count = CommCount()

    class CountingComm(comm.DummyComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            if msg_type == "comm_open":
                count.opened += 1
            elif msg_type == "comm_msg":
                count.messages += 1
                count.nbytes += len(json.dumps(data, default=str).encode()) + sum(len(b) for b in buffers or ())

    original = comm.create_comm
    comm.create_comm = lambda *args, **kwargs: CountingComm(*args, **kwargs)
    try:
        yield count
    finally:
        comm.create_comm = original


def _ran(n: int) -> dagnb.Graph:
    """A graph of ``n`` no-op tasks after one run (so costs and trace have rows)."""
    graph = make_graph(random_edges(n))
    report = graph.run()
    if len(report.executed) != n:
        raise RuntimeError(f"expected {n} tasks to run: {report.summary()}")
    return graph


def _close(views: list[Any]) -> None:
    while views:
        views.pop().close()


# ------------------------------------------------------------------ rendering


def render_times(n: int, repeat: int) -> dict[str, float]:
    from dagnb.widgets.views import DagView

    graph = _ran(n)
    view = graph.overview()
    trace = view.trace
    assert trace is not None
    _ = trace.critical  # computed once, when first drawn; timed on its own below
    times = {
        "svg": best_of(lambda _: graph_view.render_svg(view.tasks, view.upstream, view.statuses), lambda: None, repeat),
        "overview": best_of(lambda _: graph.overview(), lambda: None, repeat),
        "costs": best_of(lambda _: costs_view.render_html(view.costs), lambda: None, repeat),
        "gantt": best_of(lambda _: trace_view.render_html(trace), lambda: None, repeat),
        "critical": best_of(lambda _: critical_path(trace.spans, graph.upstream), lambda: None, repeat),
    }
    views: list[Any] = []

    def fresh() -> None:
        _close(views)

    with counting_comms():
        times["dagview"] = best_of(lambda _: views.append(DagView(graph)), fresh, repeat)
        _close(views)
        views.append(DagView(graph))
        times["redraw"] = best_of(lambda _: views[0].flush(full=True), lambda: None, repeat)
        _close(views)
    return times


# ------------------------------------------------------------ run overhead


@dataclass
class LiveRun:
    seconds: float
    drawing: float  # of the best run: seconds spent inside the view's redraws
    messages: list[int]
    drawn: list[int]  # bytes of the whole drawing (every tile) after each run
    nbytes: list[int]
    opened: list[int]
    flushes: list[int]
    walls: list[float]


def run_without_view(n: int, repeat: int) -> float:
    edges = random_edges(n)
    return best_of(lambda g: g.run(), lambda: make_graph(edges), repeat)


def run_with_view(n: int, repeat: int) -> LiveRun:
    from dagnb.widgets.views import DagView

    edges = random_edges(n)
    result = LiveRun(float("inf"), 0.0, [], [], [], [], [], [])
    views: list[Any] = []
    with counting_comms() as count:
        for _ in range(repeat):
            _close(views)
            graph = make_graph(edges)
            view = DagView(graph)  # its own LiveFeed: real clock, default interval, thread timers
            views.append(view)
            drawing = _time_flushes(view)
            count.reset()
            seconds = best_of(lambda g: g.run(), lambda g=graph: g, 1)
            feed: LiveFeed = view.feed
            if seconds < result.seconds:
                result.seconds, result.drawing = seconds, drawing[0]
            result.messages.append(count.messages)
            result.drawn.append(sum(len(json.dumps(tile.value).encode()) for tile in view.drawing.tiles))
            result.nbytes.append(count.nbytes)
            result.opened.append(count.opened)
            result.flushes.append(feed.flushes)
            result.walls.append(seconds)
        _close(views)
    return result


def _time_flushes(view: Any) -> list[float]:
    """Accumulate the time ``view.flush`` takes (on any thread) into the returned cell."""
    spent = [0.0]
    flush = view.flush

    def timed(full: bool) -> None:
        started = time.perf_counter()
        try:
            flush(full)
        finally:
            spent[0] += time.perf_counter() - started

    view.flush = timed
    return spent


def define_with_views(n: int, repeat: int) -> tuple[float, float]:
    """Redefining one task of an ``n``-task graph, up to the end of its cell (when views
    that saw the edit redraw): (no view, MAX_LIVE live DagViews)."""
    from dagnb.widgets.live import settle_all
    from dagnb.widgets.views import MAX_LIVE, DagView

    graph = _ran(n)
    last = f"t{n - 1}"
    spec = graph.tasks.specs[last]
    bare = best_of(lambda _: graph.add(spec), lambda: None, repeat)
    with counting_comms():
        views = [DagView(graph) for _ in range(MAX_LIVE)]
        live = best_of(lambda _: (graph.add(spec), settle_all()), lambda: None, repeat)
        _close(views)
    return bare, live


def after_cell_times(n: int, input_bytes: int, repeat: int) -> tuple[float, int, float, float]:
    """The plan after a cell: (seconds with ``n`` status lines and a live view, messages it sent when nothing
    changed; seconds for one task that reads an ``input_bytes`` notebook variable, and without it)."""
    import numpy as np

    from dagnb.notebook.status_lines import StatusLines
    from dagnb.overview import planned
    from dagnb.widgets.live import follow_all
    from dagnb.widgets.views import DagView

    graph = _ran(n)
    lines = StatusLines()
    for task in graph.tasks.specs:
        lines.shown(task, "done", f"{task}: ran (new)", {})

    def after_cell(_: None) -> None:
        now = planned(graph)
        lines.on_plan(now.statuses, now.reasons())
        follow_all(now)

    with counting_comms() as count:
        views = [DagView(graph)]
        count.reset()
        seconds = best_of(after_cell, lambda: None, repeat)
        sent = count.messages
        _close(views)

    def reader(variable: bool) -> dagnb.Graph:
        namespace: dict[str, Any] = {"data": np.ones(input_bytes // 8)} if variable else {}
        small = dagnb.Graph(namespace=namespace)
        exec("def reader(data" + ("" if variable else "=1") + "):\n    return None\n", namespace)  # noqa: S102
        small.task(namespace["reader"])
        small.run()
        return small

    big, none = reader(True), reader(False)
    return (seconds, sent, best_of(lambda _: planned(big), lambda: None, repeat),
            best_of(lambda _: planned(none), lambda: None, repeat))


def _span(values: list[int]) -> str:
    return f"{min(values):,}" if min(values) == max(values) else f"{min(values):,}–{max(values):,}"


# ------------------------------------------------------------------------ rows


def rows(sizes: Sizes) -> list[Row]:
    n = sizes.tasks
    t = render_times(n, sizes.repeat)
    bare = run_without_view(n, sizes.repeat)
    live = run_with_view(n, sizes.repeat)
    define_bare, define_live = define_with_views(n, sizes.repeat)
    follow, follow_sent, with_input, without_input = after_cell_times(n, sizes.memory_input_bytes, sizes.repeat)
    mib = sizes.memory_input_bytes / 2**20
    bounds = [(f - 1) * d + HEAD_BYTES * f for f, d in zip(live.flushes, live.drawn, strict=True)]
    within = all(b <= bound for b, bound in zip(live.nbytes, bounds, strict=True))
    overhead = max(live.seconds - bare, 0.0)
    mean_bytes = sum(live.nbytes) / len(live.nbytes)
    return [
        Row(f"{n:,}-task graph view: SVG (`graph.render_svg`) (info)", ms(t["svg"]), "—", None, "—", None),
        Row(f"{n:,}-task snapshot for a full redraw (`graph.overview()`: plan and statuses; costs are read when "
            "shown) (info)",
            ms(t["overview"]), "—", None, "—", None),
        Row(f"{n:,}-task costs table (`costs.render_html`) (info)", ms(t["costs"]), "—", None, "—", None),
        Row(f"{n:,}-task trace Gantt (`trace.render_html`, critical path known) (info)", ms(t["gantt"]), "—",
            None, "—", None),
        Row(f"critical path of a {n:,}-task run (`trace.critical_path`) (info)", ms(t["critical"]), "—", None,
            "—", None),
        Row(f"`DagView` of {n:,} tasks: build its widgets (the graph in tiles) and draw every tab (info)", ms(t["dagview"]), "—", None,
            "—", None),
        Row(f"`DagView` of {n:,} tasks: one full redraw (each run end and task definition; the views on a page "
            "share it) (info)",
            ms(t["redraw"]), "—", None, "—", None),
        Row(f"{n:,} no-op tasks, `graph.run()` with a live `DagView` vs without (info)",
            f"{ms(live.seconds)} ({us_per(live.seconds, n)})", f"without: {ms(bare)} ({us_per(bare, n)})",
            None, "—", None),
        Row(f"{n:,} no-op tasks, overhead of a live `DagView` on the run (info)",
            f"{us_per(overhead, n)} ({ms(overhead)} per run)",
            f"of which redraws: {ms(live.drawing)}, {_span(live.flushes)} per run", None, "—", None),
        Row(f"redefining one task of {n:,}, to the end of its cell, with 6 live `DagView`s "
            "(one shared snapshot) vs none (info)",
            ms(define_live), f"none: {ms(define_bare)}", None, "—", None),
        Row(f"the plan after a cell that changed nothing: {n:,} tasks, {n:,} status lines and a live `DagView` "
            "(info)", f"{ms(follow)}, {follow_sent} messages sent", "—", None, "—", None),
        Row(f"the plan after a cell: one task that reads a {mib:.0f} MiB numpy notebook variable vs one that reads "
            "none (info)", ms(with_input), f"none: {ms(without_input)}", None, "—", None),
        Row(f"{n:,} no-op tasks under a live `DagView`: comm messages (bytes) per run, {len(live.walls)} runs",
            f"{_span(live.messages)} msgs ({mean_bytes / 1e6:.2f} MB mean), {_span(live.opened)} widgets built",
            f"the whole drawing: {sum(live.drawn) / len(live.drawn) / 1e6:.2f} MB", None,
            f"<= (redraws - 1) × the drawing + {HEAD_BYTES / 1e3:.0f} KB per redraw", within),
    ]
