"""Values changed in place are never read under their old fingerprint (no ``check_mutation`` needed).

A task that changes its input in place (``rows.sort()``, ``arr += 1``,
``frame.dropna(inplace=True)``) or a cell that changes a task's value must
never make a later task compute from the changed value while its result is
cached under the key of the original. Executions are counted in the log
file the task bodies append to; a restart is a new Graph over the same cache.
"""

from __future__ import annotations

import dataclasses
import enum
import warnings
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.errors import ValueChangedWarning
from dagnb.inplace import immutable

pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")  # pandas 3 deprecates it; still the case

KINDS: dict[str, dict[str, Any]] = {
    "list.sort": {
        "up": "def rows():\n    note('rows')\n    return [3, 1, 2]\n",
        "mutator": "def first(rows):\n    note('first')\n    rows.sort()\n    return rows[0]\n",
        "reader": "def listed(rows):\n    note('listed')\n    return list(rows)\n",
        "cell": "rows.append(99)",
        "original": [3, 1, 2],
        "read": [3, 1, 2],
        "mutated": 1,
    },
    "numpy +=": {
        "up": "def rows():\n    note('rows')\n    import numpy as np\n    return np.arange(4.0)\n",
        "mutator": "def first(rows):\n    note('first')\n    rows += 10\n    return float(rows[0])\n",
        "reader": "def listed(rows):\n    note('listed')\n    return rows.tolist()\n",
        "cell": "rows[0] = -1.0",
        "original": np.arange(4.0),
        "read": [0.0, 1.0, 2.0, 3.0],
        "mutated": 10.0,
    },
    "pandas dropna(inplace=True)": {
        "up": "def rows():\n    note('rows')\n    import pandas as pd\n    return pd.DataFrame({'x': [1.0, None, 3.0]})\n",
        "mutator": "def first(rows):\n    note('first')\n    rows.dropna(inplace=True)\n    return len(rows)\n",
        "reader": "def listed(rows):\n    note('listed')\n    return rows['x'].tolist()\n",
        "cell": "rows.dropna(inplace=True)",
        "original": pd.DataFrame({"x": [1.0, None, 3.0]}),
        "read": [1.0, float("nan"), 3.0],
        "mutated": 2,
    },
}


def same(a: Any, b: Any) -> bool:
    if isinstance(a, pd.DataFrame):
        return a.equals(b)
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float), equal_nan=True))


def changed_by_task(value: str, task: str, how: str) -> str:
    return (
        f"The value of task `{value}` was changed in place after it was computed, by task `{task}`. As soon as "
        f"that task finished, dagnb {how}, so no result is computed from the changed value. Work on a copy in "
        f"that task (`{value} = {value}.copy()`) or build a new value."
    )


def changed_by_cell(value: str, reader: str, how: str) -> str:
    return (
        f"The value of task `{value}` was changed in place after it was computed, by code outside its task "
        f"(a cell). Before task `{reader}` read it, dagnb {how}, so no result is computed from the changed "
        f"value. Change `{value}` in its own task, or work on a copy in the cell (`{value}.copy()`)."
    )


RELOADED, RECOMPUTED = "reloaded it from the cache", "computed it again (the cache had no intact copy)"


def run_warned(nb: Notebook, **options: Any) -> tuple[list[str], list[str], list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, ran = nb.run(**options)
    changed = [w for w in caught if issubclass(w.category, ValueChangedWarning)]
    return ran, [str(w.message) for w in changed], changed


def session(tmp_path: Path, kind: str, cache: bool, *roles: str) -> Notebook:
    nb = Notebook(tmp_path, cache=cache)
    for role in ("up", *roles):
        nb.task(KINDS[kind][role])
    return nb


@pytest.mark.parametrize("cache", [True, False], ids=["disk cache", "memory cache"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_task_that_changes_its_input_never_feeds_the_change_to_a_later_task(tmp_path: Path, kind: str,
                                                                             cache: bool) -> None:
    nb = session(tmp_path, kind, cache, "mutator", "reader")
    ran, messages, caught = run_warned(nb)
    how = RELOADED if cache else RECOMPUTED
    assert messages == [changed_by_task("rows", "first", how)]
    assert caught[0].filename.startswith("<cell-"), "the warning points at the notebook cell of `rows`"
    assert ran == (["rows", "first", "listed"] if cache else ["rows", "first", "rows", "listed"])
    assert same(nb.graph["listed"], KINDS[kind]["read"]), "the reader computed from the changed value"
    assert nb.graph["first"] == KINDS[kind]["mutated"], "the task that changed its input keeps its own result"
    assert same(nb.ns["rows"], KINDS[kind]["original"]) and nb.ns["rows"] is nb.graph["rows"]

    ran, messages, _ = run_warned(nb)
    assert ran == [] and messages == [], "a second run finds everything cached, and intact"
    if cache:  # a restart: every cached value is the right one
        again = Notebook(tmp_path, cache=True)
        for role in ("up", "mutator", "reader"):
            again.task(KINDS[kind][role])
        ran, messages, _ = run_warned(again)
        assert ran == [] and messages == []
        assert same(again.graph["listed"], KINDS[kind]["read"]) and same(again.graph["rows"], KINDS[kind]["original"])


@pytest.mark.parametrize("cache", [True, False], ids=["disk cache", "memory cache"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_cell_that_changes_a_tasks_value_never_feeds_the_change_to_a_task(tmp_path: Path, kind: str,
                                                                           cache: bool) -> None:
    nb = session(tmp_path, kind, cache, "reader")
    assert run_warned(nb)[0] == ["rows", "listed"]
    nb.cell(KINDS[kind]["cell"])  # the user's ordinary cell
    nb.task(KINDS[kind]["reader"].replace("return", "return [] + "))  # an edit: `listed` must run again
    ran, messages, _ = run_warned(nb)
    how = RELOADED if cache else RECOMPUTED
    assert messages == [changed_by_cell("rows", "listed", how)]
    assert ran == (["listed"] if cache else ["rows", "listed"])
    assert same(nb.graph["listed"], KINDS[kind]["read"])
    assert same(nb.ns["rows"], KINDS[kind]["original"])
    if cache:
        again = Notebook(tmp_path, cache=True)
        again.task(KINDS[kind]["up"])
        again.task(KINDS[kind]["reader"].replace("return", "return [] + "))
        ran, _, _ = run_warned(again)
        assert ran == [] and same(again.graph["listed"], KINDS[kind]["read"]), "the restart loads the right value"


def test_a_task_that_changes_its_input_and_then_fails_is_named_before_the_next_reader(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task(KINDS["list.sort"]["up"])
    nb.task("def broken(rows):\n    note('broken')\n    rows.sort()\n    raise ValueError('no')\n")
    nb.task(KINDS["list.sort"]["reader"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = nb.graph.run(keep_going=True, raise_errors=False)
    assert report.failed == ["broken"] and nb.graph["listed"] == [3, 1, 2]
    messages = [str(w.message) for w in caught if issubclass(w.category, ValueChangedWarning)]
    assert messages == [
        "The value of task `rows` was changed in place after it was computed, by task `broken`. Before task "
        "`listed` read it, dagnb reloaded it from the cache, so no result is computed from the changed value. "
        "Work on a copy in that task (`rows = rows.copy()`) or build a new value."
    ]


def test_the_same_change_is_told_once(tmp_path: Path) -> None:
    nb = session(tmp_path, "list.sort", True, "mutator", "reader")
    assert len(run_warned(nb)[1]) == 1
    nb.task(KINDS["list.sort"]["mutator"].replace("rows[0]", "rows[0] + 0"))  # runs again, changes it again
    ran, messages, _ = run_warned(nb)
    assert ran == ["first"] and messages == []
    assert nb.ns["rows"] == [3, 1, 2], "repaired all the same"


def test_with_verify_inputs_off_the_change_goes_through(tmp_path: Path) -> None:
    """The opt-out for very large object graphs: no check, the old behaviour."""
    nb = session(tmp_path, "list.sort", True, "mutator", "reader")
    nb.graph.verify_inputs = False
    ran, messages, _ = run_warned(nb)
    assert ran == ["rows", "first", "listed"] and messages == []
    assert nb.graph["listed"] == [1, 2, 3], "without the check the reader sees the sorted list"


def test_a_producer_whose_output_differs_when_recomputed_gives_its_readers_a_new_key(tmp_path: Path) -> None:
    nb = Notebook(tmp_path, cache=False)
    nb.cell("import itertools\nCOUNTER = itertools.count()")
    nb.task("def rows():\n    note('rows')\n    return [next(COUNTER)]\n", volatile=True)
    nb.task("def grow(rows):\n    note('grow')\n    rows.append(7)\n    return len(rows)\n")
    nb.task("def listed(rows):\n    note('listed')\n    return list(rows)\n")
    ran, messages, _ = run_warned(nb)
    assert ran == ["rows", "grow", "rows", "listed"] and len(messages) == 1
    assert nb.graph["listed"] == nb.ns["rows"] == [1], "the reader read the recomputed value"
    assert nb.graph.results["rows"].fingerprint == dagnb.fingerprint([1])


class Colour(enum.Enum):
    RED = 1


class Point(NamedTuple):
    x: int
    y: float


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str
    values: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class FrozenHoldingAList:
    values: list[int]


@pytest.mark.parametrize("value, expected", [
    (None, True), (3, True), (2.5, True), ("text", True), (b"bytes", True), ((1, ("a", 2.0)), True),
    (frozenset({1, 2}), True), (range(3), True), (Fraction(1, 3), True), (Colour.RED, True),
    (Point(1, 2.0), True), (Frozen("a", (1, 2)), True), (np.float64(1.5), True), (dagnb.file("x.csv"), True),
    ([1], False), ((1, [2]), False), ({"a": 1}, False), ({1}, False), (np.arange(3), False),
    (pd.Series([1]), False), (FrozenHoldingAList([1]), False), (tuple(range(20_000)), False),
])
def test_which_values_can_change_in_place(value: Any, expected: bool) -> None:
    assert immutable(value) is expected


def test_when_the_changed_value_cannot_be_recomputed_its_reader_fails_and_the_next_run_recomputes(
        tmp_path: Path) -> None:
    from dagnb.errors import InputDamaged

    nb = Notebook(tmp_path, cache=False)
    nb.cell(f"FLAG = {str(tmp_path / 'broken')!r}")
    nb.task("def rows():\n    note('rows')\n    import os\n    if os.path.exists(FLAG):\n"
            "        raise OSError('the source is gone')\n    return [3, 1, 2]\n")
    nb.task(KINDS["list.sort"]["mutator"])
    nb.task(KINDS["list.sort"]["reader"])
    nb.graph.run(["rows"])
    (tmp_path / "broken").touch()  # recomputing `rows` now fails
    report = nb.graph.run(keep_going=True, raise_errors=False)
    assert report.statuses == {"rows": "cached", "first": "done", "listed": "failed"}
    assert isinstance(report.errors["listed"], InputDamaged) and str(report.errors["listed"]) == (
        "Task `listed` did not run: its input `rows` was changed in place by another task in this run, and there "
        "is no intact copy to put back. Fix what changed it; `rows` is recomputed on the next run."
    )
    assert "rows" not in nb.graph.results, "the damaged value is forgotten when the run ends"
    (tmp_path / "broken").unlink()
    report, ran = nb.run()
    assert ran == ["rows", "listed"] and nb.graph["listed"] == [3, 1, 2]
