"""``--save``: a copy of a task's value in a named file, written atomically after each run."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import dagnb
from dagnb.check import check_source
from dagnb.errors import DagnbSaveWarning, TaskDefinitionError
from notebook_cells import Notebook


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
