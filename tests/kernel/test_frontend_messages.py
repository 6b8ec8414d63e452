"""What a frontend receives from a real kernel, message by message (see ``live_kernel.py``).

Executions are counted in a log file the task bodies append to (``note``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from .live_kernel import Cell, LiveKernel, kernel_for, loaded_kernel, wait_for

pytestmark = pytest.mark.kernel

NOTE = """
def note(name):
    with open(LOG, "a") as handle:
        handle.write(name + "\\n")
"""


@pytest.fixture()
def kernel(tmp_path: Path) -> Iterator[LiveKernel]:
    for live in loaded_kernel(tmp_path):
        live.ok(f"LOG = {str(tmp_path / 'log.txt')!r}\nHOLD = {str(tmp_path / 'hold')!r}\n{NOTE}")
        yield live


def runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    return log.read_text().split() if log.exists() else []


# ------------------------------------------------------------------ Ctrl-C

def test_kernel_interrupt_during_dag_run_ends_in_one_paragraph_and_the_run_resumes(
    kernel: LiveKernel, tmp_path: Path
) -> None:
    """Kernel → Interrupt while ``slow`` blocks the kernel (an awaited run: ``test_async_kernel.py``)."""
    kernel.ok("%%task --no-run\ndef first():\n    note('first')\n    return 1\n")
    kernel.ok("%%task --no-run\ndef slow(first):\n    note('slow')\n    import os, time\n"
              "    while os.path.exists(HOLD):\n        time.sleep(0.01)\n    return first + 1\n")
    kernel.ok("%%task --no-run\ndef last(slow):\n    note('last')\n    return slow * 10\n")
    (tmp_path / "hold").touch()
    started = kernel.start("%dag run")
    wait_for(lambda: "slow" in runs(tmp_path))
    kernel.interrupt()
    cell = kernel.collect(started)
    assert cell.status == "error"
    assert [m.content["ename"] for m in cell.errors] == ["RunInterrupted"]
    assert cell.errors[0].content["traceback"] == [
        "RunInterrupted: The run was interrupted. Finished and kept: `first` (ran). Cancelled: `slow` (it was "
        "running) and `last` (not started). Run `%dag run` again to resume: only the 2 unfinished tasks run, "
        "the others are kept."
    ]
    assert runs(tmp_path) == ["first", "slow"]

    (tmp_path / "hold").unlink()
    resumed = kernel.ok("%dag run")
    assert runs(tmp_path) == ["first", "slow", "slow", "last"]
    assert resumed.displays[-1].text.startswith("run: 2 ran, 1 cached")
    assert kernel.ok("print(last)").stdout == "20\n"


# ------------------------------------------------------------------ status lines, updated in place


def lines_of(cell: Cell) -> dict[str, str]:
    """Task -> display id of the status line a task cell showed."""
    return {m.metadata["dagnb"]["task"]: m.display_id for m in cell.displays if m.metadata.get("dagnb", {}).get("output") == "status"}


def updates(cell: Cell) -> list[tuple[str | None, str, str]]:
    """``(display id, text/plain, data-status)`` of every in-place update the cell sent."""
    found = []
    for m in cell.updates:
        if m.metadata.get("dagnb", {}).get("output") != "status":
            continue  # the cell's progress bar, hidden at the end
        status = re.search(r"data-status='([\w-]+)'", m.content["data"]["text/html"])
        found.append((m.display_id, m.text, status.group(1) if status else ""))
    return found


CHAIN = {
    "a": "%%task\ndef a():\n    note('a')\n    return 1\n",
    "b": "%%task\ndef b(a, threshold):\n    note('b')\n    return a + threshold\n",
    "c": "%%task\ndef c(b):\n    note('c')\n    return b * 2\n",
}


def chain(kernel: LiveKernel) -> dict[str, str]:
    """``a -> b -> c`` (``b`` also reads ``threshold``), each in its own cell; the display id of each line."""
    kernel.ok("threshold = 3")
    ids = {}
    for task, source in CHAIN.items():
        ids.update(lines_of(kernel.ok(source, cell_id=f"cell-{task}")))
    assert set(ids) == set(CHAIN) and len(set(ids.values())) == 3 and all(ids.values()), ids
    return ids


def test_an_edited_upstream_cell_turns_the_downstream_lines_stale_in_place(kernel: LiveKernel, tmp_path: Path) -> None:
    ids = chain(kernel)
    edited = kernel.ok(CHAIN["a"].replace("return 1", "return 2"), cell_id="cell-a")
    assert edited.displays[-1].text == "a: ran (code changed) · 2 downstream now stale: b, c"
    assert updates(edited) == [
        (ids["b"], "b: stale (upstream a changed)", "stale"),
        (ids["c"], "c: stale (upstream b reruns first)", "stale"),
    ]
    assert runs(tmp_path) == ["a", "b", "c", "a"], "only the edited task ran"
    new_a = lines_of(edited)["a"]
    assert new_a not in ids.values(), "a cell run again shows its line under a new id"

    ran = kernel.ok("%dag run")
    assert updates(ran) == [
        (ids["b"], "b: ran (upstream a changed)", "done"),
        (ids["c"], "c: ran (upstream b changed)", "done"),
    ], "a quick task's `running` and its outcome go out as one update; the old line of `a` is never updated"
    assert kernel.ok("print(c)").updates == [], "a cell that changes nothing sends nothing"


def test_cells_whose_runs_show_no_progress_bar_wake_no_thread_of_the_views(kernel: LiveKernel, tmp_path: Path) -> None:
    """A quick cell's progress bar is never on the page: nothing to redraw, so no timer (a thread's wake-up)."""
    chain(kernel)
    for task, source in CHAIN.items():  # again: cache hits, in memory
        assert kernel.ok(source, cell_id=f"cell-{task}").displays[-1].text.startswith(f"{task}: cached")
    kernel.ok("%dag run")
    threads = kernel.text("import threading\nprint(sorted(t.name for t in threading.enumerate()))")
    assert "dagnb-live-views" not in threads, threads
    assert runs(tmp_path) == ["a", "b", "c"]


def test_a_changed_notebook_variable_turns_its_readers_stale_in_the_same_cell(kernel: LiveKernel) -> None:
    ids = chain(kernel)
    kernel.ok("%dag", cell_id="cell-view")
    changed = kernel.ok("threshold = 4")
    assert updates(changed) == [
        (ids["b"], "b: stale (input threshold changed)", "stale"),
        (ids["c"], "c: stale (upstream b reruns first)", "stale"),
    ]
    graphs = [v for v in changed.widget_values() if '<svg class="dagnb-graph"' in v]
    assert graphs, "the %dag view above redrew in the cell that changed the variable"
    assert 'data-task="b" data-status="stale"' in graphs[-1] and 'data-task="a" data-status="done"' in graphs[-1]
    plan = kernel.ok("%dag plan").displays[-1].text
    assert "b  run  (input threshold changed)" in plan


def test_a_failure_and_a_cache_load_elsewhere_are_shown_in_the_tasks_own_cell(kernel: LiveKernel) -> None:
    ids = chain(kernel)
    failing = kernel.ok("%%task --no-run\ndef c(b):\n    note('c')\n    return b / 0\n", cell_id="cell-c")
    new_c = lines_of(failing)["c"]
    run = kernel.run("%dag run")
    assert run.status == "error"
    assert updates(run) == [(new_c, "c: failed (ZeroDivisionError)", "failed")]
    kernel.ok("threshold = 4")
    kernel.ok("%dag run b")
    back = kernel.ok("threshold = 3")
    assert updates(back)[0] == (ids["b"], "b: stale (its value for these inputs is in the cache)", "stale")
    assert updates(kernel.ok("%dag run b")) == [(ids["b"], "b: cached", "cached")]


def test_without_follow_lines_change_only_when_tasks_run(kernel: LiveKernel) -> None:
    ids = chain(kernel)
    assert kernel.text("%dag config --no-follow").splitlines()[-1] == "follow: off"
    assert kernel.ok("threshold = 4").updates == []
    assert updates(kernel.ok("%dag run"))[0] == (ids["b"], "b: ran (input threshold changed)", "done")


def test_a_task_that_takes_a_while_shows_running_while_it_runs(kernel: LiveKernel, tmp_path: Path) -> None:
    """Updates are sent in batches off the run's path; a task running longer than a batch's delay shows it."""
    ids = {}
    ids.update(lines_of(kernel.ok("%%task --no-run\ndef quick():\n    note('quick')\n    return 1\n")))
    slow = "%%task --no-run\ndef slow(quick):\n    note('slow')\n    import time\n    time.sleep(1)\n    return quick\n"
    ids.update(lines_of(kernel.ok(slow)))
    ran = kernel.ok("%dag run")
    assert runs(tmp_path) == ["quick", "slow"]
    seen = updates(ran)  # only messages of this cell are collected: a frontend would apply each to it
    assert seen[-2:] == [(ids["slow"], "slow: running", "running"), (ids["slow"], "slow: ran (new)", "done")], seen
    assert [u for u in seen if u[0] == ids["quick"]][-1] == (ids["quick"], "quick: ran (new)", "done"), seen



def test_what_a_task_printed_comes_before_its_status_line_ran_or_loaded(kernel: LiveKernel, tmp_path: Path) -> None:
    """A new line is displayed without ipykernel's stream flush only when the streams hold nothing."""
    cell = "%%task\ndef talk():\n    note('talk')\n    print('hello from talk')\n    return 1\n"
    ran = kernel.ok(cell)
    kinds = [(m.msg_type, m.text.strip()) for m in ran.messages if m.msg_type in ("stream", "display_data")]
    assert kinds == [("stream", "hello from talk"), ("display_data", "talk: ran (new)")], kinds
    for again in kernel_for(tmp_path, dict(os.environ, DAGNB_CACHE_DIR=str(tmp_path / "cache"))):  # a restart
        again.ok("%load_ext dagnb")
        again.ok(f"LOG = {str(tmp_path / 'log.txt')!r}\n{NOTE}")
        loaded = again.ok(cell)
        kinds = [(m.msg_type, m.text.strip()) for m in loaded.messages if m.msg_type in ("stream", "display_data")]
        assert kinds == [("stream", "hello from talk"), ("display_data", "talk: cached")], kinds
    assert runs(tmp_path) == ["talk"], "the second kernel loaded the value"
