"""Notebooks in one folder share one cache: values by content, but heads, history and hit counts each its own.

Each "notebook" is a :class:`Notebook` over one cache folder, told its path
as the notebook glue tells it (``Graph.use_notebook``); a restarted kernel is
a new one. Executions are counted in one log file that every task appends to.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
from notebook_cells import Notebook, runs

from dagnb.cache.store import DiskStore
from dagnb.errors import CommandError
from dagnb.scope import Scope, notebook_path

GOLDEN = Path(__file__).resolve().parent.parent / "golden"

RAW = "def raw():\n    note('raw')\n    return [1, 2, 3]\n"
MODEL_A = "def model(raw, threshold):\n    note('a.model')\n    return [x for x in raw if x > threshold]\n"
MODEL_B = "def model(raw, threshold):\n    note('b.model')\n    return sum(raw) * threshold\n"


def notebook(tmp_path: Path, name: str, threshold: int, model: str) -> Notebook:
    """Notebook ``name`` in ``tmp_path`` (its kernel just started): ``raw`` and its own ``model``."""
    nb = Notebook(tmp_path)
    nb.graph.use_notebook(tmp_path / name)
    nb.cell(f"threshold = {threshold}")
    nb.task(RAW)
    nb.task(model)
    return nb


def both(tmp_path: Path) -> tuple[Notebook, Notebook]:
    a = notebook(tmp_path, "a.ipynb", 1, MODEL_A)
    a.run()
    b = notebook(tmp_path, "b.ipynb", 1, MODEL_B)
    b.run()
    return a, b


def test_a_notebook_explains_its_task_by_its_own_last_run_not_by_another_notebooks(tmp_path: Path) -> None:
    both(tmp_path)
    a = notebook(tmp_path, "a.ipynb", 2, MODEL_A)  # restarted, with another threshold
    assert str(a.graph.why("model")) == "model is stale: input threshold changed."
    assert a.graph.plan()["model"].reasons == ("input threshold changed",)
    b = notebook(tmp_path, "b.ipynb", 1, MODEL_B)
    assert str(b.graph.why("model")) == "model is up to date: its key is unchanged."
    assert b.graph.store.head("model").key != a.graph.store.head("model").key  # type: ignore[union-attr]


def test_identical_tasks_share_their_value_and_different_ones_do_not(tmp_path: Path) -> None:
    a, b = both(tmp_path)
    assert runs(a.log) == ["raw", "a.model", "b.model"], "b loaded raw (same code, same inputs) from a's run"
    assert (a.graph["model"], b.graph["model"]) == ([2, 3], 6)
    assert b.graph.store.hit_totals().keys() == {"raw"}
    assert a.graph.store.hit_totals() == {}, "b's hit is b's: a never loaded raw"


def test_each_notebook_has_its_own_history(tmp_path: Path) -> None:
    a, b = both(tmp_path)
    a.cell("threshold = 2")
    a.run()
    mine = a.graph.history()
    assert [r.id for r in mine.runs] == [3, 1]
    assert [[(t.task, t.status) for t in r.tasks] for r in mine.runs] == [
        [("raw", "cached"), ("model", "done")], [("raw", "done"), ("model", "done")]]
    assert mine.render_text().splitlines()[0] == "history of the notebook `a.ipynb` (newest first):"
    assert [r.id for r in b.graph.history().runs] == [2]
    with pytest.raises(CommandError) as other:
        a.graph.diff(1, 2)
    assert str(other.value) == "There is no run 2 in the history of the notebook `a.ipynb`. Recent runs: 3, 1."
    assert "model  key changed, value changed" in a.graph.diff(1, 3).render_text()
    restored = notebook(tmp_path, "a.ipynb", 2, MODEL_A)
    assert restored.graph.restore(1) == {"raw": "restored", "model": "restored"}
    assert restored.graph["model"] == [2, 3], "run 1 of a, not b's model"


def test_a_head_moved_to_another_notebooks_scope_is_not_used(tmp_path: Path) -> None:
    a, b = both(tmp_path)
    a.graph.store.close()
    b.graph.store.close()
    db = sqlite3.connect(tmp_path / "cache" / "meta.sqlite")
    with db:
        db.execute("DELETE FROM heads WHERE scope = 'b.ipynb'")
        db.execute("UPDATE heads SET scope = 'b.ipynb' WHERE scope = 'a.ipynb'")
    db.close()
    store = DiskStore(tmp_path / "cache", scope=Scope.of_notebook(tmp_path / "b.ipynb"))
    assert store.head("model") is None and store.head("raw") is None
    store.close()


def test_scope_names_are_relative_to_the_project_and_never_collide(tmp_path: Path) -> None:
    cache = tmp_path / "project" / ".dagnb"
    assert Scope.of_notebook(tmp_path / "project" / "a.ipynb").name_in(cache) == "a.ipynb"
    assert Scope.of_notebook(tmp_path / "project" / "sub" / "a.ipynb").name_in(cache) == "sub/a.ipynb"
    assert Scope.of_folder(tmp_path / "project").name_in(cache) == "./"
    assert Scope.of_folder(tmp_path / "project" / "a.ipynb").name_in(cache) == "a.ipynb/"
    elsewhere = tmp_path / "other" / "a.ipynb"
    assert Scope.of_notebook(elsewhere).name_in(cache) == str(elsewhere)
    assert Scope.of_folder(tmp_path / "project").describe() == "folder `project`"
    assert Scope.of_notebook(elsewhere).describe() == "notebook `a.ipynb`"


def test_the_notebook_path_comes_from_what_the_frontend_passed(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.ipynb").write_text("{}")
    here = tmp_path / "sub"
    assert notebook_path([None, str(here / "a.ipynb")], here) == here / "a.ipynb"  # VS Code, Jupyter Server
    assert notebook_path(["sub/a.ipynb"], here) == here / "a.ipynb"  # relative to the server's root
    assert notebook_path(["new.ipynb"], here) == here / "new.ipynb"  # not saved yet: still a notebook
    assert notebook_path(["console-1-0b2c"], here) is None  # a console: the folder's scope
    assert notebook_path([None, ""], here) is None


def test_a_format_4_cache_keeps_its_heads_and_history_in_the_folder_scope(tmp_path: Path) -> None:
    sys.path.insert(0, str(GOLDEN))
    from golden_values import HEADS, KEY

    for name in ("folder", "notebook"):
        shutil.copytree(GOLDEN / "format-4", tmp_path / name)
    folder = DiskStore(tmp_path / "folder", secret=KEY)
    assert {t: folder.head(t).key for t in HEADS} == HEADS and len(folder.runs()) == 1  # type: ignore[union-attr]
    folder.close()
    db = sqlite3.connect(tmp_path / "notebook" / "meta.sqlite")
    with db:
        task = next(iter(HEADS))
        db.execute("UPDATE heads SET key = 'forged' WHERE task = ?", (task,))  # fails its format-4 signature
    db.close()
    notebook = DiskStore(tmp_path / "notebook", secret=KEY, scope=Scope.of_notebook(tmp_path / "a.ipynb"))
    assert all(notebook.head(t) is None for t in HEADS) and notebook.runs() == []
    notebook.use_scope(Scope.of_folder())
    assert notebook.head(task) is None, "a forged format-4 head is kept, never signed anew"
    assert {t: notebook.head(t).key for t in HEADS if t != task} == {  # type: ignore[union-attr]
        t: k for t, k in HEADS.items() if t != task}
    (kept,) = notebook.meta.query("SELECT key FROM heads WHERE task = ?", (task,))
    assert kept == ("forged",)
    notebook.close()


def test_a_graph_keeps_the_scope_of_the_store_it_is_given(tmp_path: Path) -> None:
    import dagnb

    scope = Scope.of_notebook(tmp_path / "a.ipynb")
    graph = dagnb.Graph(store=DiskStore(tmp_path / "cache", scope=scope))
    assert graph.scope == scope
    graph.use_notebook(None)
    assert graph.scope == Scope.of_folder()
    graph.close()
    named = dagnb.Graph(cache_dir=str(tmp_path / "cache"), notebook=tmp_path / "b.ipynb")
    assert named.scope.describe() == "notebook `b.ipynb`" and named.store.scope == named.scope
    named.close()


def test_clearing_a_task_takes_it_out_of_every_notebooks_history_and_keeps_the_rest_signed(tmp_path: Path) -> None:
    import warnings

    a, b = both(tmp_path)
    assert a.graph.store.clear("model") == 2, "both notebooks' keys of `model`: the cache is one"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a run re-signed under another scope would be left out, with a warning
        for nb, run in ((a, 1), (b, 2)):
            (kept,) = nb.graph.history().runs
            assert (kept.id, [t.task for t in kept.tasks]) == (run, ["raw"])
    assert a.graph.store.verify().ok



def test_a_past_run_is_completed_from_its_own_notebooks_earlier_runs_across_anothers(tmp_path: Path) -> None:
    """Run 3 of a decides only `model` and `raw`; `label` comes from a's run 1, past b's run 2 in between."""
    a = notebook(tmp_path, "a.ipynb", 1, MODEL_A)
    a.task("def label():\n    note('label')\n    return 'a'\n")
    a.run()
    notebook(tmp_path, "b.ipynb", 1, MODEL_B).run()
    a.cell("threshold = 2")
    _, ran = a.run("model")
    assert ran == ["a.model"] and a.graph.last_history_id == 3
    assert {row.task for row in a.graph.run_record(3).tasks} == {"raw", "model"}, "label was not part of run 3"
    assert {row.task: row.status for row in a.graph.state_at(3).tasks} == {
        "raw": "cached", "model": "done", "label": "done"}
    restored = notebook(tmp_path, "a.ipynb", 2, MODEL_A)
    restored.task("def label():\n    note('label')\n    return 'a'\n")
    assert restored.graph.restore(3) == {"raw": "restored", "model": "restored", "label": "restored"}
    assert (restored.graph["model"], restored.graph["label"]) == ([3], "a")
