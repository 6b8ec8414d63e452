"""``--map``: one call per element, each element's result cached on its own.

Executions are counted per element through the log file (each call notes its element).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dagnb
from dagnb.errors import TaskDefinitionError
from notebook_cells import Notebook


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
    assert report.line("size") == "size: ran (input files changed) · 1 of 1000 items ran"
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
