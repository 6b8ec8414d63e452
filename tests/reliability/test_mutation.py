"""``graph.check_mutation = True`` (``%dag config --check-mutation``): a task that changes its input in place.

The task fails with InputMutated naming it and the input; with a disk
cache the damaged upstream value is put back from disk; without one it
is forgotten when the run ends and recomputed by the next run. A task
that only reads its input is unaffected.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import faultlib
import numpy as np
import pandas as pd
import pytest
from notebook_cells import Notebook

from dagnb import TaskFailed
from dagnb.errors import InputMutated

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # pandas 3 deprecates it; still the case to catch

KINDS: dict[str, dict[str, Any]] = {
    "list.remove": {
        "upstream": ("items", """
def items():
    note("items")
    return [1, 2, 3]
"""),
        "mutator": ("shrink", """
def shrink(items):
    note("shrink")
    items.remove(2)
    return len(items)
"""),
        "reader": ("count", """
def count(items):
    note("count")
    return len(items)
"""),
        "original": [1, 2, 3],
        "read": 3,
    },
    "numpy +=": {
        "upstream": ("arr", """
def arr():
    note("arr")
    import numpy as np
    return np.arange(5.0)
"""),
        "mutator": ("bump", """
def bump(arr):
    note("bump")
    arr += 1
    return float(arr.sum())
"""),
        "reader": ("mean", """
def mean(arr):
    note("mean")
    return float(arr.mean())
"""),
        "original": np.arange(5.0),
        "read": 2.0,
    },
    "pandas dropna(inplace=True)": {
        "upstream": ("frame", """
def frame():
    note("frame")
    import pandas as pd
    return pd.DataFrame({"x": [1.0, None, 3.0], "y": ["a", "b", "c"]})
"""),
        "mutator": ("clean", """
def clean(frame):
    note("clean")
    frame.dropna(inplace=True)
    return len(frame)
"""),
        "reader": ("rows", """
def rows(frame):
    note("rows")
    return len(frame)
"""),
        "original": pd.DataFrame({"x": [1.0, None, 3.0], "y": ["a", "b", "c"]}),
        "read": 3,
    },
}


def message(task: str, param: str) -> str:
    return (
        f"Task `{task}` changed its input `{param}` in place (for example `{param}.dropna(inplace=True)` or "
        f"`{param}.append(...)`), which silently changes it for every other task too. Work on a copy "
        f"(`{param} = {param}.copy()`) or build a new value; dagnb reloads `{param}` from the cache on the next run."
    )


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame):
        return isinstance(b, pd.DataFrame) and a.equals(b)
    return faultlib.same(a, b)


def notebook(tmp_path: Path, kind: str, cache: bool, *roles: str) -> Notebook:
    nb = Notebook(tmp_path, cache=cache)
    nb.graph.check_mutation = True
    for role in ("upstream", *roles):
        nb.task(KINDS[kind][role][1])
    return nb


def run_failing(nb: Notebook, **options: Any) -> tuple[TaskFailed, list[str]]:
    with pytest.raises(TaskFailed) as raised:
        nb.run(**options)
    return raised.value, nb.graph.last_run.executed  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_mutating_task_fails_naming_itself_and_the_input_and_the_disk_copy_is_restored(tmp_path: Path, kind: str) -> None:
    (up, _), (task, _), (reader, _) = (KINDS[kind][r] for r in ("upstream", "mutator", "reader"))
    original = KINDS[kind]["original"]
    nb = notebook(tmp_path, kind, True, "mutator", "reader")
    error, _ = run_failing(nb, keep_going=True)
    assert str(error) == message(task, up)
    found = nb.graph.last_run.errors[task]  # type: ignore[union-attr]
    assert isinstance(found, InputMutated) and str(found) == message(task, up)
    assert equal(nb.graph[up], original) and equal(nb.ns[up], original), "the damaged value was not restored"
    assert nb.graph[reader] == KINDS[kind]["read"], "a later task saw the damaged value"

    error, _ = run_failing(nb)  # the next run: the same failure, the upstream value still right, not recomputed
    assert str(error) == message(task, up)
    assert equal(nb.graph[up], original)
    assert nb.graph.statuses[up] in ("done", "cached")
    nb.graph.store.close()
    faultlib.assert_usable(tmp_path / "cache")
    faultlib.record_case("test_mutation", f"{kind}, disk cache")


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_task_that_only_reads_its_input_is_unaffected(tmp_path: Path, kind: str) -> None:
    (up, _), (reader, _) = KINDS[kind]["upstream"], KINDS[kind]["reader"]
    for cache in (True, False):
        (tmp_path / str(cache)).mkdir()
        nb = notebook(tmp_path / str(cache), kind, cache, "reader")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            report, ran = nb.run()
            assert report.ok and ran == [up, reader] and nb.graph[reader] == KINDS[kind]["read"]
            report, ran = nb.run()
        assert ran == [] and equal(nb.graph[up], KINDS[kind]["original"])
    faultlib.record_case("test_mutation", f"{kind}: a reader, with and without a disk cache")


@pytest.mark.parametrize("kind", list(KINDS))
def test_without_a_disk_cache_the_damaged_value_is_recomputed_by_the_next_run(tmp_path: Path, kind: str) -> None:
    (up, _), (task, _) = KINDS[kind]["upstream"], KINDS[kind]["mutator"]
    nb = notebook(tmp_path, kind, False, "mutator")
    error, _ = run_failing(nb)
    assert str(error) == message(task, up)
    assert up not in nb.graph.results, "the damaged value is forgotten when the run ends"
    nb.graph.drop(task)  # the user fixes the notebook: only the upstream task is left
    report, ran = nb.run()
    assert ran == [up], f"the damaged value must be recomputed, not reused: {report.render_text()}"
    assert equal(nb.graph[up], KINDS[kind]["original"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_without_a_disk_cache_a_later_task_never_sees_the_damaged_value(tmp_path: Path, kind: str) -> None:
    (up, _), (reader, _) = KINDS[kind]["upstream"], KINDS[kind]["reader"]
    nb = notebook(tmp_path, kind, False, "mutator", "reader")
    run_failing(nb, keep_going=True)
    value = nb.graph.results.get(reader)
    assert value is None or value.value == KINDS[kind]["read"], f"`{reader}` computed from the damaged `{up}`"
