"""LiveFeed: events reach a view at once, drawing is batched, and updates stay bounded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from dagnb.events import Event, EventBus, GraphChanged, RunFinished, RunStarted, TaskFinished, TaskStarted
from dagnb.widgets.live import LiveFeed, settle_all
from dagnb.widgets.views import DagView

from .support import (
    CommLog,
    FakeClock,
    Session,
    define_noop_tasks,
    diamond,
    fake_feed,
    graph_statuses,
    layered_upstream,
    progress_of,
)

INTERVAL = 0.25
WIDGETS_DRAWN_PER_FLUSH = 6  # header, progress, graph, plan, costs table, trace: the only values _draw sets


class Recorder:
    """A view that records what it is told."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.flushes: list[tuple[bool, int]] = []  # (full, events applied by then)

    def apply(self, event: Event) -> None:
        self.applied.append(type(event).__name__)

    def flush(self, full: bool) -> None:
        self.flushes.append((full, len(self.applied)))


def _feed(clock: FakeClock) -> tuple[EventBus, Recorder, LiveFeed]:
    bus, view = EventBus(), Recorder()
    return bus, view, LiveFeed(bus, view, interval=INTERVAL, clock=clock, schedule=clock.schedule)


def _started(task: str) -> TaskStarted:
    return TaskStarted(1, 0.0, task=task)


# -------------------------------------------------------------------- LiveFeed


def test_an_event_after_a_quiet_interval_is_drawn_at_once(clock: FakeClock) -> None:
    bus, view, _ = _feed(clock)
    bus.emit(_started("a"))
    assert view.flushes == [(False, 1)]
    clock.advance(INTERVAL)
    bus.emit(_started("b"))
    assert view.flushes == [(False, 1), (False, 2)]
    assert clock.scheduled == 0


def test_events_within_the_interval_share_one_timer_and_one_flush(clock: FakeClock) -> None:
    bus, view, feed = _feed(clock)
    bus.emit(_started("first"))
    for i in range(50):
        clock.advance(0.001)
        bus.emit(_started(f"t{i}"))
    assert view.applied == ["TaskStarted"] * 51, "every event is applied at once"
    assert view.flushes == [(False, 1)]
    assert clock.scheduled == 1
    clock.advance(INTERVAL)
    assert view.flushes == [(False, 1), (False, 51)]
    assert feed.flushes == 2


def test_the_timer_shows_the_last_event_even_when_no_more_come(clock: FakeClock) -> None:
    bus, view, _ = _feed(clock)
    bus.emit(_started("a"))
    clock.advance(0.01)
    bus.emit(_started("slow"))
    assert view.flushes == [(False, 1)], "not yet: the last flush was 10 ms ago"
    clock.advance(INTERVAL - 0.02)
    assert view.flushes == [(False, 1)]
    clock.advance(0.02)
    assert view.flushes == [(False, 1), (False, 2)]


def test_a_timer_with_nothing_new_to_draw_does_nothing(clock: FakeClock) -> None:
    bus, view, _ = _feed(clock)
    bus.emit(_started("a"))
    clock.advance(0.01)
    bus.emit(_started("b"))  # schedules a timer
    bus.emit(RunFinished(1, 0.0))  # draws fully at once
    clock.advance(1.0)
    assert view.flushes == [(False, 1), (True, 3)]


@pytest.mark.parametrize(
    ("event", "full"),
    [
        (RunStarted(1, 0.0, tasks=("a",)), False),
        (RunFinished(1, 0.0), True),
    ],
)
def test_run_boundaries_draw_at_once(clock: FakeClock, event: Event, full: bool) -> None:
    bus, view, _ = _feed(clock)
    bus.emit(_started("a"))
    clock.advance(0.001)  # well inside the interval
    bus.emit(event)
    assert view.flushes == [(False, 1), (full, 2)]


def test_graph_edits_wait_for_the_cell_to_end_and_then_redraw_once_fully(clock: FakeClock) -> None:
    bus, view, feed = _feed(clock)
    for name in ("a", "b", "c"):
        bus.emit(GraphChanged(0, 0.0, tasks=(name,)))
    clock.advance(1.0)
    assert view.flushes == [], "an edit alone draws nothing, not even on a timer"
    settle_all()
    assert view.flushes == [(True, 3)], "one full redraw for the three edits"
    settle_all()
    assert view.flushes == [(True, 3)], "settled: nothing left to draw"


def test_a_run_end_settles_a_pending_edit(clock: FakeClock) -> None:
    bus, view, feed = _feed(clock)
    bus.emit(GraphChanged(0, 0.0, tasks=("a",)))
    bus.emit(RunStarted(1, 0.0, tasks=("a",)))
    bus.emit(RunFinished(1, 0.0))
    settle_all()
    assert [full for full, _ in view.flushes] == [False, True]


def test_a_stopped_feed_delivers_nothing(clock: FakeClock) -> None:
    bus, view, feed = _feed(clock)
    feed.stop()
    bus.emit(_started("a"))
    assert view.applied == [] and view.flushes == []


def test_the_default_feed_uses_a_thread_timer() -> None:
    bus, view = EventBus(), Recorder()
    LiveFeed(bus, view, interval=0.01)
    bus.emit(_started("a"))
    bus.emit(_started("b"))
    deadline = time.monotonic() + 5
    while len(view.flushes) < 2 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert view.flushes == [(False, 1), (False, 2)]


# ------------------------------------------------------------ DagView, timed


def test_a_running_task_is_shown_by_the_timer(tmp_path: Path, clock: FakeClock, comms: CommLog) -> None:
    session = diamond(tmp_path, cache=False)
    view = DagView(session.graph)
    fake_feed(view, session.graph.bus, clock)
    bus = session.graph.bus
    bus.emit(RunStarted(1, 0.0, tasks=("a", "b", "c", "d")))
    assert progress_of(view.progress.value) == (0, 4, {})
    clock.advance(0.01)
    bus.emit(TaskStarted(1, 0.0, task="a"))
    assert graph_statuses(view.graph_html.value)["a"] == "pending", "drawn at most once per interval"
    mark = comms.mark()
    clock.advance(INTERVAL)
    assert graph_statuses(view.graph_html.value)["a"] == "running"
    assert "1 running" in view.header.value
    drawn = {*(t.model_id for t in view.drawing.tiles), view.header.model_id, view.progress.model_id}
    assert {m.comm_id for m in comms.updates(mark)} <= drawn
    assert "run 1: 0/4 tasks · running a" in view.progress.value
    clock.advance(0.01)
    bus.emit(TaskFinished(1, 0.0, task="a", status="done"))
    clock.advance(INTERVAL)
    assert graph_statuses(view.graph_html.value)["a"] == "done"
    assert progress_of(view.progress.value) == (1, 4, {"done": 1})


def test_a_long_task_shows_running_during_a_real_run(tmp_path: Path, clock: FakeClock) -> None:
    session = diamond(tmp_path, cache=False)
    view = DagView(session.graph)
    bus = session.graph.bus
    bus.subscribe(clock.ticker(0.001))
    fake_feed(view, bus, clock)
    seen: list[dict[str, str]] = []

    def long_body(event: Event) -> None:  # after the feed: the body of c "takes" a second
        if isinstance(event, TaskStarted) and event.task == "c":
            clock.advance(1.0)
            seen.append(graph_statuses(view.graph_html.value))

    bus.subscribe(long_body)
    session.graph.run()
    assert seen == [{"a": "done", "b": "done", "c": "running", "d": "pending"}]
    assert graph_statuses(view.graph_html.value) == dict.fromkeys("abcd", "done")


# ------------------------------------------------------------ bounded updates


def _run_counting(tmp_path: Path, comms: CommLog, n: int) -> dict[str, Any]:
    """Run ``n`` no-op tasks under a DagView; the fake clock moves 1 ms per event."""
    clock = FakeClock()
    session = Session(tmp_path / f"n{n}", cache=False)
    define_noop_tasks(session.graph, layered_upstream(n, width=50, seed=n))
    view = DagView(session.graph)
    bus = session.graph.bus
    bus.subscribe(clock.ticker(0.001))
    feed = fake_feed(view, bus, clock, INTERVAL)
    per_flush: list[list[str]] = []
    flush = view.flush

    def counted(full: bool) -> None:
        mark = comms.mark()
        flush(full)
        per_flush.append([m.comm_id for m in comms.updates(mark)])

    view.flush = counted  # type: ignore[method-assign]
    mark = comms.mark()
    report = session.graph.run()
    assert len(report.executed) == n
    assert progress_of(view.progress.value) == (n, n, {"done": n})
    return {
        "flushes": feed.flushes,
        "elapsed": clock.now,
        "updates": comms.updates(mark),
        "opened": comms.opened(mark),
        "per_flush": per_flush,
        "view": view,
    }


def test_a_run_of_many_quick_tasks_sends_a_bounded_number_of_updates(tmp_path: Path, comms: CommLog) -> None:
    small, large = _run_counting(tmp_path, comms, 100), _run_counting(tmp_path, comms, 1000)
    for run in (small, large):
        assert run["opened"] == [], "no widget is built during a run"
        # run start + run end, and at most one timed flush per interval of (fake) time
        assert run["flushes"] <= 2 + run["elapsed"] / INTERVAL
        assert all(len(ids) == len(set(ids)) for ids in run["per_flush"]), "one message per widget per flush"
        tiles = len(run["view"].drawing.tiles)
        assert len(run["updates"]) <= (WIDGETS_DRAWN_PER_FLUSH + tiles) * run["flushes"]
    assert small["flushes"] == 2, "100 tasks take 0.2 s of fake time: only the run boundaries draw"
    assert large["flushes"] <= 2 + 2.002 / INTERVAL
    # per-task drawing would add >= 900 updates for 900 more tasks; batching adds a few per interval
    assert len(large["updates"]) < 1000 / 10
    assert graph_statuses(large["view"].graph_html.value) == {f"t{i}": "done" for i in range(1000)}


def test_a_run_sends_the_tiles_whose_tasks_changed_not_the_whole_drawing(tmp_path: Path, comms: CommLog) -> None:
    """1,000 tasks run layer by layer: each flush redraws the few tiles where tasks finished since the last."""
    run = _run_counting(tmp_path, comms, 1000)
    view = run["view"]
    tiles = {t.model_id: t for t in view.drawing.tiles}
    assert len(tiles) >= 10, "a large drawing is cut in tiles"
    whole = sum(len(t.value) for t in tiles.values())
    sent = [m for m in run["updates"] if m.comm_id in tiles]
    # the drawing redrawn whole at each flush would send flushes x whole
    assert sum(m.size for m in sent) < 3 * whole < run["flushes"] * whole
    for ids in run["per_flush"][1:-1]:  # while tasks run: the tiles of the tasks that changed, a few per flush
        assert len(set(ids) & set(tiles)) <= 4


def test_delayed_redraws_run_on_one_thread_in_the_order_they_fall_due_and_survive_a_failing_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from dagnb.widgets.live import _Timers

    timers, ran, reported = _Timers(), [], []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_type))

    def note(name: str) -> None:
        ran.append((name, threading.current_thread().name))

    def broken() -> None:
        raise RuntimeError("a view's redraw failed")

    timers(0.15, lambda: note("late"))
    timers(0.01, broken)
    timers(0.05, lambda: note("early"))
    deadline = time.monotonic() + 10
    while len(ran) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ran == [("early", "dagnb-live-views"), ("late", "dagnb-live-views")]
    assert reported == [RuntimeError], "a failing redraw is reported as a thread's exception, and the rest still run"
