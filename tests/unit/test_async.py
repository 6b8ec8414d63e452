"""Async tasks: ``async def`` in a task cell, awaited concurrently (on the caller's loop with ``arun``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from notebook_cells import Notebook, runs

from dagnb.errors import TaskFailed


def _fetch(name: str, value: int) -> str:
    return f"async def fetch_{name}():\n    note('{name}')\n    await asyncio.sleep(0.3)\n    return {value}\n"


FETCHES = [
    *(_fetch(name, value) for name, value in (("a", 1), ("b", 2), ("c", 3))),
    "def total(fetch_a, fetch_b, fetch_c):\n    note('total')\n    return fetch_a + fetch_b + fetch_c\n",
]


def _fetches(tmp_path: Path, sources: list[str] = FETCHES) -> Notebook:
    nb = Notebook(tmp_path)
    nb.cell("import asyncio\n")
    for source in sources:
        nb.task(source)
    return nb


def test_async_tasks_run_at_the_same_time_and_feed_sync_ones(tmp_path: Path) -> None:
    nb = _fetches(tmp_path)
    report = nb.graph.run()  # the inline backend: only async tasks overlap
    assert nb.graph["total"] == 6 and report.executed == ["fetch_a", "fetch_b", "fetch_c", "total"]
    spans = {s.task: s for s in nb.graph.trace.spans}
    a, b, c = spans["fetch_a"], spans["fetch_b"], spans["fetch_c"]
    assert max(a.start, b.start, c.start) < min(a.end, b.end, c.end), "the three awaits overlapped"
    assert {a.lane, b.lane, c.lane} == {"async"} and spans["total"].lane == "main"
    assert sorted(nb.log.read_text().split()) == ["a", "b", "c", "total"]


def test_async_results_are_cached_like_any_other(tmp_path: Path) -> None:
    _fetches(tmp_path).graph.run()
    again = _fetches(tmp_path)  # a new session over the same cache
    again.log.unlink()
    assert again.graph.run().cached == ["fetch_a", "fetch_b", "fetch_c", "total"]
    assert not again.log.exists()


def test_an_async_task_that_raises_fails_the_run(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.cell("import asyncio\n")
    nb.task("async def boom():\n    await asyncio.sleep(0)\n    raise ValueError('remote said no')\n")
    with pytest.raises(TaskFailed) as info:
        nb.graph.run()
    assert str(info.value).startswith("Task `boom` raised ValueError: remote said no.")


def _wait(name: str, value: int) -> str:
    """An async task that notes its event loop and prints before and after a 0.2 s wait."""
    return (f"async def {name}():\n    note(f'{name} {{id(asyncio.get_running_loop())}}')\n"
            f"    print('{name} starts')\n    await asyncio.sleep(0.2)\n    print('{name} ends')\n    return {value}\n")


LOOP_NOTES = [
    _wait("first_wait", 1),
    _wait("second_wait", 2),
    "def both(first_wait, second_wait):\n    note('both')\n    print('both prints')\n    return first_wait + second_wait\n",
]


def _waits(tmp_path: Path) -> Notebook:
    return _fetches(tmp_path, LOOP_NOTES)


def _loops(log: Path) -> dict[str, int]:
    return {name: int(loop) for name, loop in (line.split() for line in log.read_text().splitlines() if " " in line)}


def test_an_awaited_run_runs_async_tasks_on_the_callers_loop(tmp_path: Path) -> None:
    nb = _waits(tmp_path)

    async def main() -> tuple[int, object]:
        return id(asyncio.get_running_loop()), await nb.graph.arun()

    caller_loop, report = asyncio.run(main())
    assert report.executed == ["first_wait", "second_wait", "both"] and nb.graph["both"] == 3
    assert _loops(nb.log) == {"first_wait": caller_loop, "second_wait": caller_loop}
    spans = {s.task: s for s in nb.graph.trace.spans}
    first, second = spans["first_wait"], spans["second_wait"]
    assert max(first.start, second.start) < min(first.end, second.end), "the two awaits overlapped"


def test_a_blocking_run_runs_async_tasks_on_dagnbs_own_loop_thread(tmp_path: Path) -> None:
    nb = _waits(tmp_path)

    async def loop_id() -> int:
        return id(asyncio.get_running_loop())

    nb.graph.run()
    loops = _loops(nb.log)
    assert loops["first_wait"] == loops["second_wait"] != asyncio.run(loop_id())


@pytest.mark.parametrize("awaited", [False, True], ids=["run", "arun"])
def test_what_async_tasks_print_is_recorded_apart_and_replayed_on_a_hit(tmp_path: Path, awaited: bool,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    nb = _waits(tmp_path)
    asyncio.run(nb.graph.arun()) if awaited else nb.graph.run()
    captured = {t: nb.graph.results[t].captured for t in ("first_wait", "second_wait", "both")}
    assert captured == {
        "first_wait": [{"output_type": "stream", "name": "stdout", "text": "first_wait starts\nfirst_wait ends\n"}],
        "second_wait": [{"output_type": "stream", "name": "stdout", "text": "second_wait starts\nsecond_wait ends\n"}],
        "both": [{"output_type": "stream", "name": "stdout", "text": "both prints\n"}],
    }
    shown = capsys.readouterr().out
    assert shown.index("first_wait starts") < shown.index("second_wait starts") < shown.index("first_wait ends"), (
        "the prints were shown live, interleaved as they happened")

    again = _waits(tmp_path)  # a new session over the same cache: the recorded prints come back
    assert again.graph.run().cached == ["first_wait", "second_wait", "both"]
    assert again.graph.results["second_wait"].captured == captured["second_wait"]


def test_cancelling_an_awaited_run_keeps_what_finished_and_the_next_run_resumes(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.cell(f"import asyncio, os\nHOLD = {str(tmp_path / 'hold')!r}\n")
    nb.task("def quick():\n    note('quick')\n    return 1\n")
    nb.task("async def held(quick):\n    note('held')\n    while os.path.exists(HOLD):\n"
            "        await asyncio.sleep(0.01)\n    return quick + 1\n")
    nb.task("def after(held):\n    note('after')\n    return held * 10\n")
    (tmp_path / "hold").touch()

    async def cancel_once_held() -> None:
        run = asyncio.ensure_future(nb.graph.arun())
        while "held" not in runs(nb.log):
            await asyncio.sleep(0.01)
        run.cancel()
        await run

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancel_once_held())
    assert runs(nb.log) == ["quick", "held"]
    assert nb.graph.statuses == {"quick": "done", "held": "cancelled", "after": "skipped"}
    assert nb.ns["quick"] == 1 and "held" not in nb.graph.results

    (tmp_path / "hold").unlink()
    report = asyncio.run(nb.graph.arun())
    assert report.executed == ["held", "after"] and report.cached == ["quick"] and nb.graph["after"] == 20


@pytest.mark.parametrize("awaited", [False, True], ids=["run", "arun"])
def test_an_async_task_past_its_timeout_is_cancelled(tmp_path: Path, awaited: bool) -> None:
    nb = Notebook(tmp_path)
    nb.cell("import asyncio\n")
    nb.task("async def slow():\n    note('slow')\n    await asyncio.sleep(1)\n    note('slow-end')\n    return 1\n",
            timeout=0.2)

    async def run_then_linger() -> object:  # the loop lives on: a task left running would note its end
        report = await nb.graph.arun(raise_errors=False) if awaited else nb.graph.run(raise_errors=False)
        await asyncio.sleep(1.2)
        return report

    report = asyncio.run(run_then_linger())
    assert report.statuses == {"slow": "timed-out"}  # type: ignore[attr-defined]
    assert str(report.errors["slow"]).startswith(  # type: ignore[attr-defined]
        "Task `slow` did not finish within its timeout of 0.2 s.")
    assert runs(nb.log) == ["slow"], "the await was cancelled, not left to finish"
