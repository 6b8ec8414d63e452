"""Keys that see all the code, in a real kernel, across restarts under another ``PYTHONHASHSEED``.

Each scenario is a notebook executed by nbclient in a new ipykernel, edited
the way users edit (a ``.py`` file beside the notebook, a class cell, a
helper cell), and executed again, in the same kernel and after a restart.
Executions are counted in a log file the task bodies append to, and every
value a cell prints is compared with what the current code computes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .test_notebook_flow import env, execute, log_lines, make_notebook, statuses, stdout_of, task_cell, text_of

__all__ = ["env"]  # the fixture, imported for pytest

pytestmark = pytest.mark.kernel

HELPERS = "FACTOR = 2\n\ndef scale(x):\n    return x * FACTOR\n"


def _write(path: Path, text: str, clock: list[int]) -> None:
    """A new version of a file, with a modification time of its own (as an editor saves it)."""
    import os

    path.write_text(text)
    clock[0] += 2
    stamp = path.stat().st_mtime + clock[0]
    os.utime(path, (stamp, stamp))


def test_a_module_beside_the_notebook_is_code(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, clock = env / "log.txt", [0]
    _write(env / "helpers.py", HELPERS, clock)
    edit = HELPERS.replace("x * FACTOR", "x * FACTOR + 1")
    nb = make_notebook(
        "import helpers, importlib",
        task_cell("t", "", "return helpers.scale(3)", log),
        f"open('helpers.py', 'w').write({edit!r})\nimport os; os.utime('helpers.py', (2e9, 2e9))",
        "%dag run\nprint('edited, not reloaded:', t)",
        "importlib.reload(helpers)\n%dag run\nprint('reloaded:', t)",
        "helpers.FACTOR = 10\n%dag run\nprint('state set from the notebook:', t)",
    )
    done = execute(nb, env)
    assert log_lines(env) == ["t", "t", "t"]
    assert stdout_of(done.cells[4]) == "edited, not reloaded: 6\n"
    # said in the cell that wrote the file: the plan after each cell (status lines, views) sees it first
    assert "`helpers.py` changed on disk after `helpers` was imported" in text_of(done.cells[3])
    assert stdout_of(done.cells[5]) == "reloaded: 7\n"
    assert stdout_of(done.cells[6]) == "state set from the notebook: 31\n"

    monkeypatch.setenv("PYTHONHASHSEED", "7")  # a restart: the file now holds the edit
    again = execute(make_notebook("import helpers", task_cell("t", "", "return helpers.scale(3)", log),
                                  "print(t)"), env)
    assert log_lines(env) == ["t", "t", "t"], "the edited module's key was computed before: a cache hit"
    assert statuses(again) == {"t": "cached"} and stdout_of(again.cells[3]) == "7\n"


MODEL = "class Model:\n    def __init__(self, k):\n        self.k = k\n    def predict(self, x):\n        return x * self.k\n"


def _model_notebook(log: Path, model: str, *more: str) -> object:
    return make_notebook(
        model,
        task_cell("fit", "k=3", "return Model(k)", log),
        task_cell("predictions", "fit", "return fit.predict(10)", log),
        *more,
    )


def test_a_fitted_model_whose_method_was_edited_reruns_its_readers(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = env / "log.txt"
    edited = MODEL.replace("x * self.k", "x * self.k + 1")
    first = execute(_model_notebook(log, MODEL, edited, "%dag run\nprint(predictions)"), env)
    assert log_lines(env) == ["fit", "predictions", "fit", "predictions"]
    assert stdout_of(first.cells[5]) == "31\n"

    monkeypatch.setenv("PYTHONHASHSEED", "11")
    again = execute(_model_notebook(log, edited, "print(predictions)"), env)
    assert len(log_lines(env)) == 4, "both keys of the edited model were cached by the first session"
    assert statuses(again) == {"fit": "cached", "predictions": "cached"}
    assert stdout_of(again.cells[4]) == "31\n"


def test_a_task_that_reads_another_tasks_variable_follows_it_in_auto_mode(env: Path) -> None:
    log = env / "log.txt"
    nb = make_notebook(
        "%dag mode auto",
        task_cell("base", "", "return 7", log),
        task_cell("double", "", "return base * 2", log),  # no parameter: base is read as a global
        task_cell("base", "", "return 8", log),
        "print(double)",
    )
    done = execute(nb, env)
    assert log_lines(env) == ["base", "double", "base", "double"]
    assert stdout_of(done.cells[5]) == "16\n"


LAMBDA = "%%task\ndef t(f=lambda v: v + 1, log={log!r}):\n    open(log, 'a').write('t\\n')\n    return f(1)\n"


def test_an_unchanged_lambda_default_is_cached_after_a_restart(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = env / "log.txt"
    cell = LAMBDA.format(log=str(log))
    execute(make_notebook(cell), env)
    monkeypatch.setenv("PYTHONHASHSEED", "5")
    again = execute(make_notebook(cell), env)
    assert log_lines(env) == ["t"]
    assert statuses(again) == {"t": "cached"}
    assert "Warning" not in text_of(again.cells[1])


def test_a_global_with_no_fingerprint_reruns_its_task_and_says_why_once(env: Path) -> None:
    log = env / "log.txt"
    nb = make_notebook(
        "import threading\nLOCK = threading.Lock()",
        task_cell("t", "", "return 1 if LOCK else 0", log),
        "%dag run\n%dag why t",
    )
    done = execute(nb, env)
    assert log_lines(env) == ["t", "t"]
    assert "UnfingerprintableWarning: Task `t` reads the global `LOCK`" in text_of(done.cells[2])
    assert "UnfingerprintableWarning" not in text_of(done.cells[3])
    assert "t is stale: the global `LOCK` cannot be fingerprinted." in text_of(done.cells[3])


SCRIPT = "OFFSET = 1\n\ndef prepare(x):\n    return x + OFFSET\n"
BASE = "class Base:\n    def bonus(self):\n        return 10\n"


def test_a_percent_run_script_and_a_base_class_are_code(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``prepare`` comes from ``%run prep.py``; ``Sub`` inherits ``Base.bonus``. Each edit reruns its user."""
    log, clock = env / "log.txt", [0]
    _write(env / "prep.py", SCRIPT, clock)

    def notebook(base: str, *more: str) -> object:
        return make_notebook(
            "%run prep.py", base, "class Sub(Base):\n    pass",
            task_cell("prepared", "", "return prepare(1)", log),
            task_cell("scored", "", "return Sub().bonus()", log),
            *more,
        )

    execute(notebook(BASE), env)
    assert sorted(log_lines(env)) == ["prepared", "scored"]

    _write(env / "prep.py", SCRIPT.replace("x + OFFSET", "x + OFFSET * 100"), clock)
    monkeypatch.setenv("PYTHONHASHSEED", "13")
    edited = execute(notebook(BASE.replace("10", "20"), "print(prepared, scored)"), env)
    assert sorted(log_lines(env)) == ["prepared", "prepared", "scored", "scored"]
    assert stdout_of(edited.cells[6]) == "101 20\n"

    monkeypatch.setenv("PYTHONHASHSEED", "14")
    again = execute(notebook(BASE.replace("10", "20"), "print(prepared, scored)"), env)
    assert len(log_lines(env)) == 4 and statuses(again) == {"prepared": "cached", "scored": "cached"}


ENUM = "import enum\nclass Mode(enum.Enum):\n    FAST = {fast}\n    SLOW = 2\n"


def test_a_task_reading_a_notebook_enum_is_cached_across_a_restart_and_reruns_when_a_member_changes(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An enum's members are attributes of its own class: its key follows their values, with no warning."""
    log = env / "log.txt"
    pick = task_cell("pick", "", "return Mode.FAST.value", log)
    first = execute(make_notebook(ENUM.format(fast=1), pick), env)
    assert statuses(first) == {"pick": "done"} and "Warning" not in text_of(first.cells[2])
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    again = execute(make_notebook(ENUM.format(fast=1), pick), env)
    assert statuses(again) == {"pick": "cached"}
    edited = execute(make_notebook(ENUM.format(fast=3), pick, "print(pick)"), env)
    assert statuses(edited) == {"pick": "done"} and stdout_of(edited.cells[3]) == "3\n"
    assert log_lines(env) == ["pick", "pick"]
