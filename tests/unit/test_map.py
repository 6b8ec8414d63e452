"""``--map``: one call per element, each element's result cached on its own.

Executions are counted per element through the log file (each call notes its element).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from notebook_cells import Notebook, runs

import dagnb
from dagnb.errors import TaskDefinitionError


def _mapped(tmp_path: Path, files: object, name: str = "cache") -> Notebook:
    """files (external) --> size (map over files) --> total (fan-in)."""
    nb = Notebook(tmp_path, name=name)
    nb.ns["files"] = files
    nb.task("def size(files):\n    note(f'size:{files}')\n    return len(str(files))\n")
    nb.graph.add(dagnb.graph.spec_from_function(nb.ns["size"], map="files"))
    nb.task("def total(size):\n    note('total')\n    return sum(size.values()) if isinstance(size, dict) else sum(size)\n")
    return nb


def _calls(nb: Notebook) -> list[str]:
    calls = nb.log.read_text().split() if nb.log.exists() else []
    nb.log.unlink(missing_ok=True)
    return calls


def test_editing_one_element_of_a_thousand_reruns_one_call(tmp_path: Path) -> None:
    files = [f"file{i:04d}" for i in range(1000)]
    nb = _mapped(tmp_path, files)
    nb.graph.run()
    assert len(_calls(nb)) == 1001  # 1,000 elements and the fan-in
    edited = list(files)
    edited[500] = "edited"
    restarted = _mapped(tmp_path, edited)  # a new session on the same cache
    report = restarted.graph.run()
    assert _calls(restarted) == ["size:edited", "total"], "one element reran; 999 came from the cache"
    assert report.line("size") == "size: ran (input files changed) · 1 of 1000 elements ran"
    assert restarted.graph["size"][500] == len("edited") and len(restarted.graph["size"]) == 1000
    assert restarted.graph["total"] == 999 * 8 + 6


@pytest.mark.parametrize(("files", "expected"), [
    (["a", "bb"], [1, 2]),
    (("a", "bb"), (1, 2)),
    ({"x": "a", "y": "bb"}, {"x": 1, "y": 2}),
    (range(10, 12), [2, 2]),
], ids=["list", "tuple", "dict keeps keys", "other iterable gives a list"])
def test_results_come_back_in_the_same_kind_of_container(tmp_path: Path, files: object, expected: object) -> None:
    nb = _mapped(tmp_path, files)
    nb.graph.run()
    assert nb.graph["size"] == expected
    assert type(nb.graph["size"]) is type(expected)


def test_an_element_that_repeats_is_computed_once(tmp_path: Path) -> None:
    nb = _mapped(tmp_path, ["a", "b", "a", "a"])
    nb.graph.run()
    assert sorted(_calls(nb)) == ["size:a", "size:b", "total"]
    assert nb.graph["size"] == [1, 1, 1, 1]


def test_an_unchanged_collection_is_one_cache_hit(tmp_path: Path) -> None:
    nb = _mapped(tmp_path, ["a", "b"])
    nb.graph.run()
    _calls(nb)
    report = nb.graph.run()
    assert report.cached == ["size", "total"] and _calls(nb) == []


def test_map_over_a_name_that_is_no_parameter_is_refused() -> None:
    def size(files: list[str]) -> int:
        return len(files)

    with pytest.raises(TaskDefinitionError) as info:
        dagnb.Graph().task(map="file")(size)
    assert str(info.value) == (
        "Task `size`: `--map file` names no parameter of the task (its parameters: files). "
        "Map over one of its inputs, e.g. `--map files`."
    )


@pytest.mark.parametrize("backend", ["threads", "processes"])
def test_elements_run_on_several_workers_at_once(tmp_path: Path, backend: str) -> None:
    nb = Notebook(tmp_path)
    nb.cell("import os, threading, time\n")
    nb.ns["files"] = [f"f{i}" for i in range(8)]
    nb.task("def where(files):\n    time.sleep(0.05)\n"
            "    note(f'{files}@{os.getpid()}-{threading.current_thread().name}')\n    return files.upper()\n")
    nb.graph.add(dagnb.graph.spec_from_function(nb.ns["where"], map="files"))
    nb.graph.run(backend=backend, jobs=2)
    assert nb.graph["where"] == [f"F{i}" for i in range(8)], "results in element order"
    calls = _calls(nb)
    assert sorted(c.split("@")[0] for c in calls) == [f"f{i}" for i in range(8)], "each element once"
    assert len({c.split("@")[1] for c in calls}) == 2, f"two workers shared the elements: {calls}"
    nb.graph.close()


def _slow_map(tmp_path: Path, count: int, body: str = "def slow(files):\n    time.sleep(0.03)\n") -> Notebook:
    nb = Notebook(tmp_path)
    nb.cell("import asyncio, time\n")
    nb.ns["files"] = [f"f{i}" for i in range(count)]
    nb.task(body + "    note(f'slow:{files}')\n    return files.upper()\n")
    nb.graph.add(dagnb.graph.spec_from_function(nb.ns["slow"], map="files"))
    return nb


def _progress_while_running(nb: Notebook, **options: object) -> list[tuple[int, int]]:
    """The (done, total) counts of ``slow`` reported before it finished."""
    counts: list[tuple[int, int]] = []
    finished: list[str] = []

    def progressed(*, task: str, done: int, total: int, **_: object) -> None:
        assert task == "slow" and "slow" not in finished, "counts arrive while the task runs"
        counts.append((done, total))

    with dagnb.on("task_progress", progressed, graph=nb.graph), \
         dagnb.on("task_finished", lambda *, task, **_: finished.append(task), graph=nb.graph):
        nb.graph.run(**options)  # type: ignore[arg-type]
    return counts


def test_a_running_map_task_reports_its_item_count_as_elements_finish(tmp_path: Path) -> None:
    nb = _slow_map(tmp_path, 20)  # inline: 20 calls of 30 ms, counts at most every 0.1 s
    counts = _progress_while_running(nb)
    done = [d for d, _ in counts]
    assert {t for _, t in counts} == {20}
    assert done[0] == 1 and done == sorted(set(done)) and 3 <= len(done) <= 10, counts
    assert len(nb.log.read_text().split()) == 20

    nb.ns["files"] = [*nb.ns["files"][:19], "changed"]
    assert _progress_while_running(nb) == [(1, 1)], "the total is what must be computed: one element"


@pytest.mark.parametrize("backend", ["threads", "processes"])
def test_split_map_elements_report_progress_from_every_worker(tmp_path: Path, backend: str) -> None:
    nb = _slow_map(tmp_path, 16)
    counts = _progress_while_running(nb, backend=backend, jobs=2)
    assert counts and {t for _, t in counts} == {16}
    done = [d for d, _ in counts]
    assert done == sorted(done) and all(0 < d <= 16 for d in done)
    if backend == "processes":  # counted in the kernel as each worker's slice arrives
        assert set(done) <= {8, 16}
    else:  # counted element by element, in the worker threads
        assert len(done) >= 2
    assert nb.graph["slow"] == [f"F{i}" for i in range(16)]
    nb.graph.close()


def test_an_async_map_task_awaits_its_elements_together_and_caches_each(tmp_path: Path) -> None:
    nb = _slow_map(tmp_path, 10, body="async def slow(files):\n    await asyncio.sleep(0.2)\n")
    nb.graph.run()
    assert nb.graph["slow"] == [f"F{i}" for i in range(10)]
    [span] = [s for s in nb.graph.trace.spans if s.task == "slow"]
    assert span.end - span.start < 1.0, "ten 0.2 s waits overlapped (one after another: 2 s)"
    assert len(nb.log.read_text().split()) == 10

    nb.log.unlink()
    nb.ns["files"] = [*nb.ns["files"][:9], "changed"]
    report = asyncio.run(nb.graph.arun())
    assert nb.log.read_text().split() == ["slow:changed"] and report.items["slow"] == (1, 10)
    assert nb.graph["slow"][9] == "CHANGED"


@pytest.mark.parametrize("param", ["items", "func", "param", "progress", "part"])
def test_a_map_task_may_have_parameters_named_like_dagnbs_own(tmp_path: Path, param: str) -> None:
    nb = Notebook(tmp_path)
    nb.ns["files"] = ["a", "bb"]
    nb.ns[param] = 10
    nb.task(f"def sized(files, {param}):\n    return len(files) + {param}\n")
    nb.graph.add(dagnb.graph.spec_from_function(nb.ns["sized"], map="files"))
    nb.graph.run()
    assert nb.graph["sized"] == [11, 12]


def test_the_session_decorator_takes_the_map_option(tmp_path: Path) -> None:
    from dagnb import session

    nb = Notebook(tmp_path)
    nb.ns["files"] = ["a", "bb", "ccc"]
    session.set_current(nb.graph)
    try:
        nb.cell("import dagnb\n@dagnb.task(map='files', retries=1)\ndef sized(files):\n    note(files)\n"
                "    return len(files)\n")
        nb.graph.run()
    finally:
        session.set_current(None)
    assert nb.graph["sized"] == [1, 2, 3] and sorted(runs(nb.log)) == ["a", "bb", "ccc"]
    assert nb.graph.tasks.specs["sized"].map == "files" and nb.graph.tasks.specs["sized"].retries == 1
