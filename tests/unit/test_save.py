"""``--save``: a copy of a task's value in a named file, written atomically after each run."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.ci.check import check_source
from dagnb.errors import DagnbSaveWarning, TaskDefinitionError


@pytest.fixture()
def inside(tmp_path: Path) -> Path:
    before = os.getcwd()
    os.chdir(tmp_path)
    yield tmp_path
    os.chdir(before)


def test_each_format_is_written_after_a_run_and_rewritten_only_when_it_reruns(inside: Path) -> None:
    nb = Notebook(inside)
    nb.cell("import numpy as np\n")
    saves = {"table": "out/{name}.csv", "arr": "out/{name}.npy", "summary": "out/summary.json"}
    nb.task("def table():\n    note('table')\n    return [{'x': 1, 'y': 2}, {'x': 3, 'y': 4}]\n")
    nb.task("def arr():\n    return np.arange(3)\n")
    nb.task("def summary(table):\n    return {'rows': len(table)}\n")
    graph = nb.graph
    for name, pattern in saves.items():  # what `%%task --save PATTERN` defines
        graph.add(dagnb.graph.spec_from_function(nb.ns[name], save=pattern))
    graph.run()
    assert (inside / "out" / "table.csv").read_bytes() == b"x,y\r\n1,2\r\n3,4\r\n"
    assert np.load(inside / "out" / "arr.npy").tolist() == [0, 1, 2]
    assert json.loads((inside / "out" / "summary.json").read_text()) == {"rows": 2}
    assert not [p for p in (inside / "out").iterdir() if p.name.startswith(".")], "no temporary files left"
    (inside / "out" / "summary.json").unlink()
    graph.run()  # a cache hit rewrites a missing copy, and nothing reruns
    assert json.loads((inside / "out" / "summary.json").read_text()) == {"rows": 2}
    assert nb.log.read_text().split() == ["table"]


def test_a_copy_that_cannot_be_written_warns_and_keeps_the_value(inside: Path) -> None:
    graph = dagnb.Graph()

    @graph.task(save="out/{name}.npy")
    def words() -> dict[str, int]:
        return {"a": 1}  # not an array: np.save refuses it without pickling

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph.run()
    assert graph["words"] == {"a": 1}
    [warning] = [w for w in caught if issubclass(w.category, DagnbSaveWarning)]
    assert str(warning.message).startswith("The value of task `words` could not be saved to `out/words.npy` (")
    assert not (inside / "out" / "words.npy").exists()


def test_an_unknown_format_is_refused_at_definition() -> None:
    with pytest.raises(TaskDefinitionError) as info:
        dagnb.Graph().task(save="out/{name}.xlsx")(lambda: 1)
    assert str(info.value).endswith(
        "`--save out/{name}.xlsx` has the extension `.xlsx`, which names no format dagnb writes. "
        "Use one of .npy, .parquet, .csv, .json, .pkl, .pickle."
    )


def test_check_knows_what_each_task_writes_and_refuses_two_writers() -> None:
    ok = check_source([("code", "%%task --save out/{name}.json\ndef a():\n    return 1")], "nb")
    assert ok.render_text() == "nb: ok (1 task in 1 cell; writes out/a.json)"
    clash = check_source([
        ("code", "%%task --save out/x.json\ndef a():\n    return 1"),
        ("code", "%%task --save out/x.json\ndef b():\n    return 2"),
    ], "nb")
    assert [p.render("nb") for p in clash.problems] == [
        "nb: cell 2, line 1: Task `b` saves to `out/x.json`, which task `a` (cell 1) also writes: each run would "
        "overwrite the other's file. Give one of them another `--save` path."
    ]


# ------------------------------------------------------------------ a copy always equals the value


def test_a_hit_that_brings_back_an_older_value_rewrites_the_copy(inside: Path) -> None:
    nb = Notebook(inside)
    version = "def table(k=1):\n    note('table')\n    return {'k': k}\n"
    for k in (1, 2, 1):  # edit, then undo the edit: the third is a cache hit of the first value
        nb.task(version.replace("k=1", f"k={k}"), save="out/{name}.json")
        nb.run()
        assert json.loads((inside / "out" / "table.json").read_text()) == {"k": k}
    assert nb.log.read_text().split() == ["table", "table"], "the undo was a cache hit"
    (inside / "out" / "table.json").write_text('{"k": "edited by hand"}')
    nb.run()  # up to date in memory, but the copy changed since it was written: written again
    assert json.loads((inside / "out" / "table.json").read_text()) == {"k": 1}
    nb.graph.store.close()

    restarted = Notebook(inside)  # a restart: the hit loads the value and writes the copy again
    (inside / "out" / "table.json").write_text('{"k": 2}')
    restarted.task(version, save="out/{name}.json")
    restarted.run()
    assert json.loads((inside / "out" / "table.json").read_text()) == {"k": 1}
    assert restarted.log.read_text().split() == ["table", "table"]


def test_saving_never_consumes_an_iterator_the_task_returned(inside: Path) -> None:
    nb = Notebook(inside)
    nb.task("def rows():\n    note('rows')\n    return (i * i for i in range(4))\n", save="out/{name}.csv")
    nb.task("def total(rows):\n    note('total')\n    return sum(rows)\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb.run()
    assert nb.graph["total"] == 14, "the reader got every element"
    assert not (inside / "out" / "rows.csv").exists()
    [warning] = [w for w in caught if issubclass(w.category, DagnbSaveWarning)]
    assert str(warning.message) == (
        "The value of task `rows` was not saved to `out/rows.csv`: it is an iterator (a generator, a `map`, a "
        "file): writing it would use it up, and the tasks that read it would find it empty. Return a list "
        "instead (`return list(...)`). The task's value and cache are fine."
    )
    assert warning.filename.startswith("<cell-"), "the warning points at the task's cell"


JSON_REFUSED = "Save it as `.npy`, `.parquet` or `.pkl`, or make it plain (finite numbers, strings, lists, dicts " \
               "with string keys). The task's value and cache are fine."


@pytest.mark.parametrize("source, reason", [
    ("import numpy as np\n    return np.linspace(0, 1, 10_000)", None),
    ("return {'mean': float('nan')}", "the value['mean'] holds nan, which JSON has no form for"),
    ("return {1: 'one'}", "the value has the key 1, which JSON would turn into a string"),
    ("import numpy as np\n    return [np.arange(3.0), np.array(['a'], dtype=object)]",
     "the value[1] is a `numpy.ndarray`, which has no exact JSON form"),
    ("import datetime\n    return {'when': datetime.date(2024, 1, 2)}",
     "the value['when'] is a `datetime.date`, which has no exact JSON form"),
])
def test_json_copies_are_exact_or_refused_with_the_fix(inside: Path, source: str, reason: str | None) -> None:
    nb = Notebook(inside)
    nb.task(f"def value():\n    {source}\n", save="out/{name}.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb.run()
    messages = [str(w.message) for w in caught if issubclass(w.category, DagnbSaveWarning)]
    path = inside / "out" / "value.json"
    if reason is None:  # an array: every float, exactly
        assert messages == [] and json.loads(path.read_text()) == np.linspace(0, 1, 10_000).tolist()
        return
    assert messages == [f"The value of task `value` was not saved to `out/value.json`: JSON cannot hold it "
                        f"exactly: {reason}. {JSON_REFUSED}"]
    assert not path.exists()


def test_frames_and_numpy_numbers_are_written_as_exact_json(inside: Path) -> None:
    nb = Notebook(inside)
    nb.task("def frame():\n    import pandas as pd\n    return pd.DataFrame({'x': [0.1, 2.5], 'n': [1, 2]})\n",
            save="out/{name}.json")
    nb.task("def stats(frame):\n    return {'rows': frame.shape[0], 'x': frame['x'].to_numpy(), "
            "'total': frame['n'].sum()}\n", save="out/{name}.json")
    nb.run()
    assert json.loads((inside / "out" / "frame.json").read_text()) == [{"x": 0.1, "n": 1}, {"x": 2.5, "n": 2}]
    assert json.loads((inside / "out" / "stats.json").read_text()) == {"rows": 2, "x": [0.1, 2.5], "total": 3}


def test_two_tasks_writing_one_file_are_refused_when_the_second_is_defined(inside: Path) -> None:
    from dagnb.errors import SavePathTaken

    def first() -> int:
        return 1

    def second() -> int:
        return 2

    graph = dagnb.Graph()
    graph.task(save="out/x.json")(first)
    with pytest.raises(SavePathTaken) as info:
        graph.task(save="./out/x.json")(second)
    assert str(info.value) == (
        "Task `second` saves to `out/x.json`, which task `first` also writes: each run would overwrite the "
        "other's file. Give one of them another `--save` path (`{name}` in it stands for the task's name)."
    )
    assert list(graph.tasks.specs) == ["first"]
    graph.task(save="out/x.json")(first)  # redefining a task with its own path is fine
    graph.task(save="out/{name}.json")(second)
    assert list(graph.tasks.specs) == ["first", "second"]
