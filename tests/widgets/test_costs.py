"""Costs: sorting rows, measuring real runs, counting cache hits, and the table renderer."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from dagnb.run.costs import TaskCosts
from dagnb.widgets import costs as costs_view
from dagnb.widgets.costs import COLUMNS, sort_rows

from .support import NUM_SPAN, Session, durations, table_tasks

ROWS = [
    TaskCosts("a", "done", 2.0, 0.1, 300, None, 5, 0, 0.0),
    TaskCosts("b", "cached", None, 0.3, 100, 10, None, 3, 0.9),
    TaskCosts("c", "failed", 0.5, None, 200, 30, 7, 1, 0.1),
    TaskCosts("d", "stale", 1.0, 0.2, None, 20, 6, 2, 0.5),
]

# column -> task order when sorted descending (ascending is separate: unknown values stay last)
DESCENDING = {
    "task": "dcba",
    "status": "dcab",
    "duration": "adcb",
    "cpu_time": "bdac",
    "peak_memory": "acbd",
    "output_bytes": "cdba",
    "cache_bytes": "cdab",
    "hits": "bdca",
    "saved": "bdca",
}
ASCENDING = {
    "task": "abcd",
    "status": "bacd",
    "duration": "cdab",
    "cpu_time": "adbc",
    "peak_memory": "bcad",
    "output_bytes": "bdca",
    "cache_bytes": "adcb",
    "hits": "acdb",
    "saved": "acdb",
}


# ---------------------------------------------------------------- sort_rows


@pytest.mark.parametrize("column", list(COLUMNS))
def test_rows_sort_by_every_column_in_both_directions(column: str) -> None:
    assert "".join(r.task for r in sort_rows(ROWS, column, descending=True)) == DESCENDING[column]
    assert "".join(r.task for r in sort_rows(ROWS, column, descending=False)) == ASCENDING[column]


def test_every_column_is_covered_by_the_sort_expectations() -> None:
    assert set(DESCENDING) == set(ASCENDING) == set(COLUMNS)


def test_ties_keep_task_order_in_both_directions() -> None:
    rows = [TaskCosts(t, "done", 1.0) for t in "qpzx"] + [TaskCosts("m", "done", 3.0)]
    assert [r.task for r in sort_rows(rows, "duration", True)] == ["m", "q", "p", "z", "x"]
    assert [r.task for r in sort_rows(rows, "duration", False)] == ["q", "p", "z", "x", "m"]


def test_sorting_by_an_unknown_column_names_the_columns() -> None:
    with pytest.raises(ValueError) as info:
        sort_rows(ROWS, "speed")
    assert str(info.value) == (
        "cannot sort costs by `speed`; columns: task, status, duration, cpu_time, peak_memory, "
        "output_bytes, cache_bytes, hits, saved"
    )


def test_sorting_leaves_the_input_alone() -> None:
    before = list(ROWS)
    sort_rows(ROWS, "duration")
    assert ROWS == before


# ------------------------------------------------------------------- renderer


def test_table_follows_the_sort_and_marks_the_sorted_column() -> None:
    html = costs_view.render_html(ROWS, by="hits", descending=False)
    assert table_tasks(html) == list(ASCENDING["hits"])
    assert "<th class='r'>hits ▲</th>" in html
    assert html.count("▲") + html.count("▼") == 1


def test_every_measured_cell_is_a_masked_number() -> None:
    html = costs_view.render_html(ROWS)
    cells = re.findall(r'<td class="r">(.*?)</td>', html)
    assert len(cells) == len(ROWS) * (len(COLUMNS) - 2)
    assert all(NUM_SPAN.fullmatch(c) for c in cells), cells
    assert re.findall(r'<span class="dagnb-num">([^<]*)</span>', html)[:7] == [
        "2.00 s", "100 ms", "300 B", "–", "5 B", "0", "0 s",
    ]
    assert "time saved by cache hits, all tasks: <span class=\"dagnb-num\">1.50 s</span>" in html


def test_without_numbers_the_table_shows_only_what_timing_cannot_change() -> None:
    html = costs_view.render_html(ROWS, numbers=False)
    assert table_tasks(html) == ["a", "b", "c", "d"], "task order, not a timing order"
    assert "dagnb-num" not in html and durations(html) == []
    assert re.findall(r"<td>(yes|no)</td><td class='r'>(\d+)</td>", html) == [
        ("yes", "0"), ("no", "3"), ("yes", "1"), ("yes", "2"),
    ]


def test_text_fallback() -> None:
    assert costs_view.render_text(ROWS) == (
        "costs: 4 tasks (timings, memory and bytes are in the live view)\n"
        "  a  done       cached value, 0 hits\n"
        "  b  cached     no cached value, 3 hits\n"
        "  c  failed     cached value, 1 hits\n"
        "  d  stale      cached value, 2 hits"
    )
    assert costs_view.render_text([]) == "costs: no tasks yet"
    assert "<p>no tasks yet</p>" in costs_view.render_html([])


# ---------------------------------------------------------------- real runs


def _costs(session: Session) -> dict[str, TaskCosts]:
    return {r.task: r for r in session.graph.overview().costs}


@pytest.mark.skipif(sys.platform != "linux", reason="the per-task peak is exact only on Linux (/proc/self/clear_refs)")
def test_peak_memory_is_the_tasks_own_allocation(tmp_path: Path) -> None:
    from dagnb.run import costs

    session = Session(tmp_path, cache=False)
    session.tasks([
        "def big():\n    note('big')\n    buffer = bytearray(50_000_000)\n    return len(buffer)\n",
        "def small(big):\n    note('small')\n    return big + 1\n",
        "def spike(small):\n    note('spike')\n    buffer = bytearray(50_000_000)\n    del buffer\n    return 1\n",
    ])
    session.graph.run()
    if not isinstance(costs._probe, costs._ProcMemory):
        pytest.skip("/proc/self/clear_refs is not writable here; peaks fall back to the lifetime peak")
    rows = _costs(session)
    assert rows["big"].peak_memory >= 40_000_000
    assert rows["small"].peak_memory < 10_000_000, "the peak is reset between tasks"
    # filling 50 MB takes milliseconds, so the high-water mark is read (a task under QUICK reads its resident set)
    assert rows["spike"].peak_memory >= 40_000_000, "the peak of memory freed before the task returned"
    assert rows["spike"].duration is not None and rows["spike"].duration >= costs.QUICK
    assert session.runs() == ["big", "small", "spike"]


CHILD = """
import dagnb

graph = dagnb.Graph()


@graph.task
def trivial():
    return 1


graph.run()
print(graph.overview().costs[0].peak_memory)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the per-task peak is exact only on Linux (/proc/self/clear_refs)")
def test_a_kernels_peak_memory_excludes_what_the_process_that_started_it_used(tmp_path: Path) -> None:
    """A Jupyter server forks each kernel: Linux's ``ru_maxrss`` keeps the server's peak in the kernel, so a
    trivial task once showed the server's size (tens of MiB in JupyterLab, 0 when started from a small process)."""
    import subprocess

    from dagnb.run import costs

    if not isinstance(costs._probe or costs._set_probe(), costs._ProcMemory):
        pytest.skip("/proc/self/clear_refs is not writable here; peaks fall back to the lifetime peak")
    parent = bytearray(300 * 2**20)  # the starting process holds 300 MiB resident
    for page in range(0, len(parent), 4096):
        parent[page] = 1
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    child = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    del parent
    assert child.returncode == 0, child.stderr
    assert int(child.stdout) < 2**20, f"a task that returns 1 peaked at {int(child.stdout) / 2**20:.0f} MiB"


def test_output_and_cache_bytes_of_an_array(tmp_path: Path) -> None:
    np = pytest.importorskip("numpy")
    session = Session(tmp_path)
    session.cell("import numpy as np\n")
    session.task("def arr():\n    note('arr')\n    return np.arange(100_000, dtype=np.float64)\n")
    session.graph.run()
    row = _costs(session)["arr"]
    assert row.output_bytes == np.arange(100_000, dtype=np.float64).nbytes == 800_000
    assert row.cache_bytes is not None and row.cache_bytes > 0
    assert row.status == "done" and row.hits == 0 and row.saved == 0.0
    assert row.duration is not None and row.duration > 0
    assert row.cpu_time is not None and row.cpu_time >= 0


def test_an_unpicklable_value_has_no_cache_bytes(tmp_path: Path) -> None:
    session = Session(tmp_path)
    session.task("def gen():\n    return (i for i in range(3))\n")
    with pytest.warns(Warning):
        session.graph.run()
    row = _costs(session)["gen"]
    assert row.cache_bytes is None
    assert "no cached value" in costs_view.render_text([row])


def test_hits_and_saved_time_add_up_over_restarts(tmp_path: Path) -> None:
    sources = [
        "def base():\n    note('base')\n    return list(range(1000))\n",
        "def total(base):\n    note('total')\n    return sum(base)\n",
    ]
    first = Session(tmp_path)
    first.tasks(sources)
    computed = first.graph.run().durations
    for _ in range(2):  # two restarted kernels, each loading both values from the cache
        again = Session(tmp_path)
        again.tasks(sources)
        assert again.graph.run().cached == ["base", "total"]
    assert first.runs() == ["base", "total"], "each body ran once in all three sessions"
    rows = _costs(again)
    for task in ("base", "total"):
        assert rows[task].hits == 2
        assert rows[task].saved == pytest.approx(2 * computed[task], rel=1e-9)
        assert rows[task].duration == computed[task], "the compute time of the value, not of its load"
        assert rows[task].status == "cached"
    assert {t: r.hits for t, r in _costs(first).items()} == {"base": 2, "total": 2}, "hits live in the cache"


def test_a_value_already_in_memory_is_not_a_cache_hit(tmp_path: Path) -> None:
    session = Session(tmp_path, cache=False)
    session.tasks(["def one():\n    note('one')\n    return 1\n"])
    session.graph.run()
    session.graph.run()
    assert session.runs() == ["one"]
    row = _costs(session)["one"]
    assert (row.hits, row.saved) == (0, 0.0)
