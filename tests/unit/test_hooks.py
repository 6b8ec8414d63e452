"""Hooks: user code called on run events, by name or through a subscriber object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.errors import CommandError


def _pair(tmp_path: Path) -> Notebook:
    """a --> b."""
    nb = Notebook(tmp_path)
    nb.task("def a():\n    note('a')\n    return 1\n")
    nb.task("def b(a):\n    note('b')\n    return a + 1\n")
    return nb


def test_on_task_finished_gets_every_field_by_keyword(tmp_path: Path) -> None:
    nb = _pair(tmp_path)
    seen: list[dict[str, Any]] = []
    sub = dagnb.on("task_finished", lambda **fields: seen.append(fields), graph=nb.graph)
    nb.run()
    assert [(f["task"], f["status"]) for f in seen] == [("a", "done"), ("b", "done")]
    assert {"run_id", "time", "duration", "worker", "cpu_time", "attempt"} <= set(seen[0])
    costs = seen[0]["costs"]  # the one record, and each of its fields by the name hooks always had
    assert [seen[0][name] for name in ("started", "duration", "cpu_time", "peak_memory", "output_bytes")] == [
        costs.started, costs.duration, costs.cpu_time, costs.peak_memory, costs.output_bytes]
    sub.remove()
    nb.run(force=["a"])
    assert len(seen) == 2, "a removed hook is not called"


def test_task_started_names_its_backend_and_still_answers_to_the_former_name(tmp_path: Path) -> None:
    nb = _pair(tmp_path)
    by_keyword: list[tuple[str, str, str]] = []
    events: list[Any] = []
    dagnb.on("task_started", lambda *, task, backend, worker, **_: by_keyword.append((task, backend, worker)),
             graph=nb.graph)
    nb.graph.bus.subscribe(events.append)
    nb.run(backend="threads", jobs=2)
    assert by_keyword == [("a", "threads", "threads"), ("b", "threads", "threads")]
    started = [e for e in events if type(e).__name__ == "TaskStarted"]
    assert [(e.backend, e.worker) for e in started] == [("threads", "threads")] * 2


def test_a_subscriber_object_gets_the_methods_it_has(tmp_path: Path) -> None:
    nb = _pair(tmp_path)
    log = tmp_path / "runs.jsonl"

    class FileLogger:
        """The example of docs/python.md, "Hooks": one JSON line per finished task, one per run."""

        def task_finished(self, *, task: str, status: str, duration: float, **_: Any) -> None:
            with open(log, "a") as handle:
                handle.write(json.dumps({"task": task, "status": status}) + "\n")

        def run_finished(self, *, run_id: int, duration: float, **_: Any) -> None:
            with open(log, "a") as handle:
                handle.write(json.dumps({"run": run_id}) + "\n")

    with dagnb.subscribe(FileLogger(), graph=nb.graph):
        nb.run()
    nb.run()  # after the `with`: no longer subscribed
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == [{"task": "a", "status": "done"}, {"task": "b", "status": "done"}, {"run": 1}]


def test_a_hook_that_raises_is_removed_and_the_run_goes_on(tmp_path: Path) -> None:
    nb = _pair(tmp_path)

    def broken(**_: Any) -> None:
        raise RuntimeError("metrics server down")

    dagnb.on("task_started", broken, graph=nb.graph)
    with pytest.warns(RuntimeWarning, match="metrics server down"):
        _, ran = nb.run()
    assert ran == ["a", "b"]


def test_an_unknown_event_name_suggests_the_close_one(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as info:
        dagnb.on("task_finish", print, graph=_pair(tmp_path).graph)
    assert str(info.value) == (
        "There is no event `task_finish`. Did you mean `task_finished`? "
        "Events: run_started, task_started, task_progress, task_finished, run_finished, graph_changed."
    )
