"""Running a graph: incremental runs, the cache, events, printed output.

What every backend must do (values, run-once, failures, retries, timeouts,
Ctrl-C) is the backend contract in ``tests/backends/test_contract.py``.
Executions are counted in a log file each task body appends to (see
:class:`notebook_cells.Notebook`), never in the report alone.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from notebook_cells import DIAMOND, Notebook
from notebook_cells import diamond as _diamond

import dagnb
from dagnb.errors import DagnbCacheWarning, TaskFailed, UnfingerprintableWarning, UnpicklableOutputWarning
from dagnb.events import Costs, Event, RunFinished, RunStarted, TaskFinished, TaskStarted

# ------------------------------------------------------------- incremental


# Edits of c after a run of the diamond, each with the tasks the next run executes (every
# other task is cached) and d's value then:
#
#     a --> b --> d
#      \         ^
#       `-> c* --'
C_EDITS = [
    pytest.param("def c(a):\n    note('c')\n    return a + 2\n", ["c", "d"], 24, id="a-new-output-reruns-c-and-d"),
    pytest.param(  # early cutoff: c now computes 3 another way; d does not rerun
        "def c(a):\n    note('c')\n    return 1 + a\n", ["c"], 23, id="the-same-output-leaves-the-downstream-cached"
    ),
    pytest.param(
        "# same task, new comment\ndef c(a):\n\n    note('c')  # log it\n    return a + 1\n", [], 23,
        id="a-layout-only-edit-runs-nothing",
    ),
]


@pytest.mark.parametrize(("source", "executed", "d"), C_EDITS)
def test_editing_a_task_reruns_it_and_its_downstream_only(
    tmp_path: Path, source: str, executed: list[str], d: int
) -> None:
    nb = _diamond(tmp_path)
    nb.run()
    nb.task(source)
    report, ran = nb.run()
    assert ran == executed
    assert nb.graph["d"] == d
    assert sorted(report.cached) == sorted(set("abcd") - set(executed))


def test_reverting_an_edit_is_a_cache_hit(tmp_path: Path) -> None:
    nb = _diamond(tmp_path)
    nb.run()
    nb.task("def c(a):\n    note('c')\n    return a + 2\n")
    nb.run()
    nb.task(DIAMOND[2])  # back to the original c
    report, ran = nb.run()
    assert ran == []
    assert nb.graph["c"] == 3 and nb.graph["d"] == 23
    assert sorted(report.cached) == ["a", "b", "c", "d"]


def test_a_restart_over_the_same_cache_executes_nothing(tmp_path: Path) -> None:
    first = _diamond(tmp_path)
    first.run()
    first.graph.store.close()

    restarted = _diamond(tmp_path)  # fresh namespace and graph, same cells, same cache dir
    report, ran = restarted.run()
    assert ran == []
    assert {t: restarted.graph[t] for t in "abcd"} == {"a": 2, "b": 20, "c": 3, "d": 23}
    assert sorted(report.cached) == ["a", "b", "c", "d"]


def test_force_reruns_the_task_and_early_cutoff_spares_its_dependents(tmp_path: Path) -> None:
    nb = _diamond(tmp_path)
    nb.run()
    report, ran = nb.run(force=["b"])
    assert ran == ["b"]
    assert report.executed == ["b"]


def test_a_volatile_task_always_runs(tmp_path: Path) -> None:
    nb = _diamond(tmp_path)
    nb.task("def v(a):\n    note('v')\n    return a\n", volatile=True)
    nb.run()
    _, ran = nb.run()
    assert ran == ["v"]
    _, ran = nb.run("v")
    assert ran == ["v"]


def test_changing_an_external_input_reruns_its_reader(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.cell("scale = 2\n")
    nb.task("def raw():\n    note('raw')\n    return 5\n")
    nb.task("def scaled(raw, scale):\n    note('scaled')\n    return raw * scale\n")
    nb.run()
    nb.cell("scale = 3\n")
    _, ran = nb.run()
    assert ran == ["scaled"]
    assert nb.graph["scaled"] == 15


def test_a_changed_file_input_reruns_its_reader(tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("1 2 3")
    nb = Notebook(tmp_path)
    nb.cell(f"import dagnb\nDATA = dagnb.file({str(data)!r})\n")
    nb.task("def raw(path=DATA):\n    note('raw')\n    return open(path).read().split()\n")
    nb.run()
    data.write_text("1 2 3 4")
    _, ran = nb.run()
    assert ran == ["raw"]
    assert nb.graph["raw"] == ["1", "2", "3", "4"]


# ------------------------------------------------------- bad outputs, cache


def test_an_unfingerprintable_output_warns_and_is_kept_in_memory(tmp_path: Path) -> None:
    """A generator can be neither fingerprinted nor pickled."""
    nb = Notebook(tmp_path)
    nb.task("def numbers():\n    note('numbers')\n    return (i for i in range(3))\n")
    nb.task("def total(numbers):\n    note('total')\n    return sum(numbers)\n")
    with pytest.warns((UnfingerprintableWarning, UnpicklableOutputWarning)):
        report, ran = nb.run()
    assert ran == ["numbers", "total"]
    assert nb.graph["total"] == 3
    _, ran = nb.run()
    assert ran == [], "in this session the value is in memory"


class Handle:
    """Fingerprintable once registered, but its pickle always fails."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle a Handle")


dagnb.register_fingerprint(Handle, lambda h: h.name)


def test_an_unpicklable_output_warns_and_is_kept_in_memory(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.ns["Handle"] = Handle
    nb.task("def handle():\n    note('handle')\n    return Handle('db')\n")
    with pytest.warns(UnpicklableOutputWarning, match="`handle`"):
        _, ran = nb.run()
    assert ran == ["handle"]
    assert nb.graph["handle"].name == "db"
    assert not [p for p in (tmp_path / "cache").rglob(".tmp-*")]


def test_a_self_referencing_output_does_not_crash_the_run(tmp_path: Path) -> None:
    """A cyclic list cannot be fingerprinted: dagnb must warn and keep it, not crash."""
    nb = Notebook(tmp_path)
    nb.task("def loop():\n    note('loop')\n    x = [1]\n    x.append(x)\n    return x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report, ran = nb.run()
    assert ran == ["loop"]
    assert nb.graph["loop"][1] is nb.graph["loop"]


@pytest.mark.value_files
def test_a_corrupt_blob_warns_and_the_task_recomputes_the_right_value(tmp_path: Path) -> None:
    first = _diamond(tmp_path)
    first.run()
    first.graph.store.close()
    blob = next(p for p in (tmp_path / "cache" / "blobs").rglob("*.pkl") if _is_blob_of(p, 23))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    restarted = _diamond(tmp_path)
    with pytest.warns(DagnbCacheWarning, match="`d`"):
        _, ran = restarted.run()
    assert ran == ["d"]
    assert restarted.graph["d"] == 23
    _, ran = _diamond(tmp_path).run()
    assert ran == [], "the recomputed value was written back"


def _is_blob_of(path: Path, value: Any) -> bool:
    return path.name == f"{dagnb.fingerprint(value)}.pkl"


# ------------------------------------------------------------------- events


def test_events_tell_what_ran_and_what_came_from_the_cache(tmp_path: Path) -> None:
    """a --> b."""
    nb = Notebook(tmp_path)
    nb.task("def a():\n    note('a')\n    return 1\n")
    nb.task("def b(a):\n    note('b')\n    return a + 1\n")
    seen: list[Event] = []
    nb.graph.bus.subscribe(seen.append)

    nb.run()
    assert [_describe(e) for e in seen] == [
        "RunStarted", "TaskStarted a", "TaskFinished a done", "TaskStarted b", "TaskFinished b done", "RunFinished",
    ]
    assert seen[0].tasks == ("a", "b")  # type: ignore[attr-defined]
    assert len({e.run_id for e in seen}) == 1

    seen.clear()
    nb.run()
    assert [_describe(e) for e in seen] == ["RunStarted", "TaskFinished a cached", "TaskFinished b cached", "RunFinished"]


def _slow_pair(tmp_path: Path) -> tuple[Notebook, list[Event]]:
    """a (50 ms) --> b, with every event of the session recorded."""
    nb = Notebook(tmp_path)
    nb.cell("import time\n")
    nb.task("def a():\n    note('a')\n    time.sleep(0.05)\n    return list(range(1000))\n")
    nb.task("def b(a):\n    note('b')\n    return len(a)\n")
    seen: list[Event] = []
    nb.graph.bus.subscribe(seen.append)
    return nb, seen


def test_finished_events_carry_lane_start_costs_and_what_a_load_saved(tmp_path: Path) -> None:
    """a --> b, run on two threads, then loaded by a new session."""
    nb, seen = _slow_pair(tmp_path)
    nb.graph.run(backend="threads", jobs=2)
    done = {e.task: e for e in seen if isinstance(e, TaskFinished)}
    started = next(e for e in seen if isinstance(e, RunStarted)).time
    assert {e.worker for e in done.values()} <= {"dagnb_0", "dagnb_1"}
    assert done["a"].started >= started and done["b"].started >= done["a"].started + done["a"].duration
    assert done["a"].duration >= 0.05 and done["a"].output_bytes > 8 * 1000
    assert done["a"].nbytes > 0  # bytes in the cache

    fresh, loads = _slow_pair(tmp_path)
    fresh.run()
    cached = {e.task: e for e in loads if isinstance(e, TaskFinished)}
    assert {e.status for e in cached.values()} == {"cached"}
    assert cached["a"].saved == pytest.approx(done["a"].duration)
    assert cached["a"].worker == "main" and cached["a"].duration > 0
    assert fresh.graph.store.hit_totals()["a"] == (1, pytest.approx(done["a"].duration))


def test_a_finished_event_carries_the_costs_its_cache_entry_and_costs_row_keep(tmp_path: Path) -> None:
    """One Costs record from the body to the event; the entry and the costs view keep the same numbers."""
    nb, seen = _slow_pair(tmp_path)
    nb.run()
    a = next(e for e in seen if isinstance(e, TaskFinished) and e.task == "a")
    assert isinstance(a.costs, Costs) and a.costs.output_bytes > 8 * 1000
    former = (a.started, a.duration, a.cpu_time, a.peak_memory, a.output_bytes)
    assert former == (a.costs.started, a.costs.duration, a.costs.cpu_time, a.costs.peak_memory, a.costs.output_bytes)
    entry = nb.graph.store.entry(nb.graph.results["a"].key)
    assert entry is not None
    assert (entry.duration, entry.cpu_time, entry.peak_memory, entry.value_bytes) == (
        a.duration, a.cpu_time, a.peak_memory, a.output_bytes)
    row = next(r for r in nb.graph.overview().costs if r.task == "a")
    assert (row.duration, row.cpu_time, row.peak_memory, row.output_bytes) == (
        a.duration, a.cpu_time, a.peak_memory, a.output_bytes)
    with pytest.raises(AttributeError):
        a.cpu_time = 1.0  # type: ignore[misc]  # read-only: an event never changes under its subscribers


def test_a_failed_task_reports_its_time_but_no_sizes(tmp_path: Path) -> None:
    """A body that allocated 40 MB, then raised: its CPU time counts, its peak and output do not (as before)."""
    nb = Notebook(tmp_path)
    nb.task("def a():\n    note('a')\n    block = b'x' * 40_000_000\n    raise ValueError(len(block))\n")
    seen: list[Event] = []
    nb.graph.bus.subscribe(seen.append)
    with pytest.raises(TaskFailed):
        nb.run()
    a = next(e for e in seen if isinstance(e, TaskFinished))
    assert a.status == "failed" and a.duration > 0 and a.cpu_time > 0
    assert (a.costs.peak_memory, a.costs.output_bytes) == (0, 0)


def _describe(event: Event) -> str:
    if isinstance(event, TaskStarted):
        return f"TaskStarted {event.task}"
    if isinstance(event, TaskFinished):
        return f"TaskFinished {event.task} {event.status}"
    assert isinstance(event, (RunStarted, RunFinished))
    return type(event).__name__


def test_a_failing_subscriber_does_not_break_the_run(tmp_path: Path) -> None:
    nb = _diamond(tmp_path)

    def broken(event: Event) -> None:
        raise RuntimeError("view crashed")

    nb.graph.bus.subscribe(broken)
    with pytest.warns(RuntimeWarning):
        _, ran = nb.run()
    assert sorted(ran) == ["a", "b", "c", "d"]


# ------------------------------------------------------------ printed output


def test_threads_keep_each_tasks_prints_apart_and_restore_stdout(tmp_path: Path) -> None:
    """Two tasks print while running side by side on two threads.

    Each task's recorded output must be its own (it is replayed on a cache
    hit), and ``sys.stdout`` must be the original object after the run.
    """
    nb = Notebook(tmp_path)
    nb.cell("import time\n")
    nb.task("def p():\n    print('p1')\n    time.sleep(0.2)\n    print('p2')\n    return 1\n")
    nb.task("def q():\n    time.sleep(0.05)\n    print('q1')\n    time.sleep(0.3)\n    return 2\n")
    original = sys.stdout
    try:
        nb.run(backend="threads", jobs=2)
        assert sys.stdout is original
    finally:
        sys.stdout = original
    text = {t: "".join(o.get("text", "") for o in nb.graph.results[t].captured) for t in ("p", "q")}
    assert text == {"p": "p1\np2\n", "q": "q1\n"}


def test_inline_prints_are_recorded_per_task(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task("def p():\n    print('hello from p')\n    return 1\n")
    nb.run()
    assert nb.graph.results["p"].captured == [{"output_type": "stream", "name": "stdout", "text": "hello from p\n"}]


def test_the_old_names_output_and_outputs_still_read(tmp_path: Path) -> None:
    """``output`` (the value's fingerprint) and ``outputs`` (what it printed) were renamed; users may read the old names."""
    nb = Notebook(tmp_path)
    nb.task("def p():\n    print('hello from p')\n    return 1\n")
    nb.run()
    result, entry = nb.graph.results["p"], nb.graph.current_entry("p")
    (decision,) = nb.graph.plan().decisions
    (row,) = nb.graph.history().runs[0].tasks
    assert entry is not None
    assert result.output == entry.output == decision.output == row.output == dagnb.fingerprint(1)
    printed = [{"output_type": "stream", "name": "stdout", "text": "hello from p\n"}]
    assert result.outputs == entry.outputs == printed
    with pytest.raises(AttributeError):
        result.output = "another"  # type: ignore[misc]


def test_a_cache_hit_rebinds_a_variable_the_user_overwrote() -> None:
    """A cached task puts its value back, so the namespace never shows a stale variable."""
    namespace: dict[str, Any] = {}
    graph = dagnb.Graph(namespace=namespace)

    @graph.task
    def answer() -> int:
        return 42

    graph.run()
    namespace["answer"] = "clobbered"
    assert graph.run().cached == ["answer"]
    assert namespace["answer"] == 42


def test_tasks_without_source_and_equal_bodies_keep_distinct_keys() -> None:
    """Two exec'd functions with no source on record differ by name, so neither is a hit for the other."""
    namespace: dict[str, Any] = {}
    exec("def a():\n    return []\ndef b():\n    return []\n", namespace)
    graph = dagnb.Graph()
    graph.task(namespace["a"])
    graph.task(namespace["b"])
    assert graph.run().executed == ["a", "b"]


def test_merging_a_later_report_adds_its_tasks_and_keeps_this_runs_word() -> None:
    from dagnb.run.executor import RunReport

    first = RunReport(statuses={"a": "done"}, reasons={"a": "code changed"}, durations={"a": 1.0})
    later = RunReport(statuses={"a": "cached", "b": "done"}, reasons={"b": "upstream a changed"},
                      durations={"a": 0.0, "b": 2.0})
    merged = first.merge(later)
    assert merged is first
    assert merged.statuses == {"a": "done", "b": "done"}
    assert merged.reasons == {"a": "code changed", "b": "upstream a changed"}
    assert merged.durations == {"a": 1.0, "b": 2.0}
