"""``dagnb check --plan``: what a run would execute, checked against real runs.

A small pipeline notebook (``raw`` reads ``data.txt`` through
``dagnb.file``, ``clean`` calls the notebook helper ``helper``, which reads
the global ``K``, ``total`` reads the global ``SCALE``, ``other`` has a
literal default) is run for real with ``python -m dagnb run``, which
executes it in a kernel and fills this test's cache. The notebook (or its
data file) is then edited, and the exact ``--plan`` output is asserted.

Each plan is then checked against the run it predicts (the oracle): the
tasks the plan says ``run`` are exactly those ``dagnb run --json`` reports
``done``, a ``run if needed`` task may be either, and ``cached`` ones stay
cached. Executions are also counted for real: every task body appends its
name to ``log.txt``, so the report cannot claim a run that did not happen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NB = "nb.ipynb"
DATA = "alpha beta gamma\n"
ALL = ["raw", "clean", "total", "other"]
OK = f"{NB}: ok (4 tasks in 8 cells)"
ALL_CACHED = [
    "  raw    cached",
    "  clean  cached",
    "  total  cached",
    "  other  cached",
]


# ------------------------------------------------------------------ helpers


def logged_task(name: str, params: str, body: str) -> str:
    """A ``%%task`` cell whose body first appends its name to ``log.txt`` (beside the notebook)."""
    return (
        f"%%task\ndef {name}({params}):\n"
        f"    with open('log.txt', 'a') as log:\n"
        f"        log.write('{name}\\n')\n"
        f"    {body}\n"
    )


def pipeline(
    K: str = "2",
    SCALE: str = "10",
    helper: str = "return [w.upper() for w in words][:K]",
    raw: str = "return open(path).read().split()",
    clean: str = "return helper(raw)",
    n: str = "3",
) -> list[Any]:
    return [
        new_markdown_cell("# Pipeline"),
        new_code_cell("import dagnb"),
        new_code_cell(f"K = {K}\nSCALE = {SCALE}"),
        new_code_cell(f"def helper(words):\n    {helper}\n"),
        new_code_cell(logged_task("raw", 'path=dagnb.file("data.txt")', raw)),
        new_code_cell(logged_task("clean", "raw, K", clean)),
        new_code_cell(logged_task("total", "clean", "return len(clean) * SCALE")),
        new_code_cell(logged_task("other", "raw, n=" + n, "return raw[:n]")),
    ]


class Project:
    """A notebook, its data file and its cache in one directory; the real CLI run there."""

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.cache = root / "cache"
        self.env = env if env is not None else {**os.environ, "DAGNB_CACHE_DIR": str(self.cache)}

    def write(self, cells: list[Any] | None = None, **edits: str) -> None:
        nb = new_notebook()
        nb.cells = cells if cells is not None else pipeline(**edits)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, self.root / NB)

    def data(self, text: str) -> None:
        (self.root / "data.txt").write_text(text)

    def dagnb(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dagnb", *args],
            cwd=cwd or self.root, env=self.env, capture_output=True, text=True, timeout=300, check=False,
        )

    def plan(self, *extra: str) -> subprocess.CompletedProcess[str]:
        done = self.dagnb("check", "--plan", NB, "--cache-dir", str(self.cache), *extra)
        assert done.stderr == ""
        assert done.returncode == 0
        return done

    def run(self) -> dict[str, str]:
        """``dagnb run --json``: each task's status."""
        done = self.dagnb("run", "--json", NB)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        report = json.loads(done.stdout)
        return {name: line["status"] for name, line in report["tasks"].items()}

    def executed(self) -> list[str]:
        """Task bodies that ran since the last call (read from the log, which is then cleared)."""
        log = self.root / "log.txt"
        names = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return names

    def header(self, counts: str, cache: str | None = None) -> str:
        """The plan's first line; ``--cache-dir`` is shown resolved, ``$DAGNB_CACHE_DIR`` as set."""
        return f"{NB}: a run would execute {counts} from the cache at {cache or self.cache.resolve()}"


def decisions(plan_stdout: str) -> dict[str, str]:
    """``{task: "run" | "run if needed" | "cached"}`` from the task lines of a plan."""
    found = {}
    for line in plan_stdout.splitlines():
        if not line.startswith("  ") or line.strip().startswith("assuming unchanged:"):
            continue
        name, rest = line.split(maxsplit=1)
        found[name] = "run if needed" if rest.startswith("run if needed") else rest.split()[0]
    return found


def plan_lines(plan: str) -> tuple[str, list[str]]:
    """A plan written as an indented block: its first line (the header's counts) and its task lines."""
    counts, *tasks = textwrap.dedent(plan).strip("\n").splitlines()
    return counts, tasks


def statuses_after(*executed: str) -> dict[str, str]:
    """What ``dagnb run --json`` reports when exactly these tasks ran: every other task ``cached``."""
    return {name: "done" if name in executed else "cached" for name in ALL}


def run_as_planned(project: Project, plan_stdout: str) -> dict[str, str]:
    """Run the notebook; check the run against the plan (the oracle) and against the log; return statuses."""
    planned = decisions(plan_stdout)
    statuses = project.run()
    executed = project.executed()
    done = {t for t, s in statuses.items() if s == "done"}

    assert sorted(executed) == sorted(done), "the report and the task bodies disagree on what ran"
    assert set(statuses) == set(planned)
    must = {t for t, a in planned.items() if a == "run"}
    may = {t for t, a in planned.items() if a == "run if needed"}
    assert must <= done, f"planned to run but loaded from the cache: {sorted(must - done)}"
    assert done <= must | may, f"ran although planned as cached: {sorted(done - must - may)}"
    assert all(statuses[t] == "cached" for t, a in planned.items() if a == "cached")
    return statuses


@pytest.fixture()
def project(tmp_path: Path) -> Project:
    """The pipeline notebook and its data file; nothing run yet."""
    project = Project(tmp_path)
    project.data(DATA)
    project.write()
    return project


@pytest.fixture()
def ran(project: Project) -> Project:
    """The pipeline after one real run: every task in the cache."""
    assert project.run() == dict.fromkeys(ALL, "done")
    assert project.executed() == ALL
    return project


# ------------------------------------------------------------------- no cache


@pytest.mark.kernel
def test_with_nothing_cached_every_task_runs(project: Project) -> None:
    done = project.plan()

    assert done.stdout.splitlines() == [
        OK,
        project.header("4 tasks and load 0"),
        "  raw    run  (nothing cached yet)",
        "  clean  run  (nothing cached yet)",
        "  total  run  (nothing cached yet)",
        "  other  run  (nothing cached yet)",
    ]
    assert run_as_planned(project, done.stdout) == dict.fromkeys(ALL, "done")


def test_a_notebook_with_problems_gets_no_plan(project: Project) -> None:
    project.write([new_markdown_cell("# Loop"), new_code_cell("%%task\ndef a(a):\n    return 1\n")])

    done = project.dagnb("check", "--plan", NB, "--cache-dir", str(project.cache))

    assert done.stdout.splitlines() == [
        (f"{NB}: cell 2, line 2: Task `a` depends on itself: its parameter `a` names the task. "
        "Rename the parameter, or rename the function."),
        f"{NB}: 1 problem",
    ]
    assert done.returncode == 1
    assert not project.cache.exists()


# --------------------------------------------------------------- after a run


@pytest.mark.kernel
def test_after_a_run_every_task_is_cached(ran: Project) -> None:
    done = ran.plan()

    assert done.stdout.splitlines() == [OK, ran.header("0 tasks and load 4"), *ALL_CACHED]
    assert run_as_planned(ran, done.stdout) == dict.fromkeys(ALL, "cached")


@pytest.mark.kernel
def test_the_cache_dir_defaults_to_dagnb_cache_dir(ran: Project) -> None:
    done = ran.dagnb("check", "--plan", NB)

    assert done.stdout.splitlines()[1:] == [
        ran.header("0 tasks and load 4", ran.env["DAGNB_CACHE_DIR"]),
        *ALL_CACHED,
    ]


@pytest.mark.kernel
def test_without_any_setting_the_cache_is_the_one_beside_the_notebook(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGNB_CACHE_DIR"}
    project = Project(tmp_path / "project", env)
    project.root.mkdir()
    project.cache = project.root / ".dagnb"  # where the kernel, started in the notebook's folder, puts it
    project.data(DATA)
    project.write()
    assert project.run() == dict.fromkeys(ALL, "done")
    project.executed()

    done = project.dagnb("check", "--plan", f"project/{NB}", cwd=tmp_path)

    assert done.stdout.splitlines() == [
        f"project/{NB}: ok (4 tasks in 8 cells)",
        f"project/{NB}: a run would execute 0 tasks and load 4 from the cache at {project.cache.resolve()}",
        *ALL_CACHED,
    ]


# -------------------------------------------------------------------- edits

# Each edit of the pipeline after a run: the plan it gets (the header's counts, then the
# task lines), and the tasks the run then executes; every other task stays cached.
EDITS = [
    pytest.param(
        {"clean": "return helper(raw) + ['EXTRA']"},
        """
        1 task, maybe 1 more, and load 2
          raw    cached
          clean  run  (code changed)
          total  run if needed  (upstream clean runs first)
          other  cached
        """,
        ["clean", "total"],  # clean's output grew, so total, which reads it, had to run too
        id="an-edited-task-runs-and-its-downstream-runs-if-needed",
    ),
    pytest.param(
        {"raw": "return list(open(path).read().split())"},
        """
        1 task, maybe 3 more, and load 0
          raw    run  (code changed)
          clean  run if needed  (upstream raw runs first)
          total  run if needed  (upstream clean runs first)
          other  run if needed  (upstream raw runs first)
        """,
        ["raw"],
        id="an-edit-that-keeps-the-output-leaves-the-downstream-cached",
    ),
    pytest.param(
        {"K": "3"},
        """
        1 task, maybe 1 more, and load 2
          raw    cached
          clean  run  (input K changed)
          total  run if needed  (upstream clean runs first)
          other  cached
        """,
        ["clean", "total"],
        id="a-changed-literal-input-reruns-the-task-reading-it",
    ),
    pytest.param(
        {"SCALE": "100"},
        """
        1 task and load 3
          raw    cached
          clean  cached
          total  run  (global SCALE changed)
          other  cached
        """,
        ["total"],
        id="a-changed-literal-global-reruns-the-task-reading-it",
    ),
    pytest.param(
        {"n": "2"},
        """
        1 task and load 3
          raw    cached
          clean  cached
          total  cached
          other  run  (code changed, input n changed)
        """,
        ["other"],  # the default is written in the code too
        id="a-changed-literal-default-reruns-its-task",
    ),
    pytest.param(
        {"helper": "return [w.upper() for w in words[:K]]"},  # other code, same result
        """
        1 task, maybe 1 more, and load 2
          raw    cached
          clean  run  (helper helper changed)
          total  run if needed  (upstream clean runs first)
          other  cached
        """,
        ["clean"],  # clean ran again but returned the same value, so total, which reads it, stayed cached
        id="an-edited-helper-reruns-the-task-calling-it",
    ),
]


@pytest.mark.kernel
@pytest.mark.parametrize(("edit", "plan", "executed"), EDITS)
def test_an_edit_is_planned_and_run_as_planned(
    ran: Project, edit: dict[str, str], plan: str, executed: list[str]
) -> None:
    ran.write(**edit)
    counts, tasks = plan_lines(plan)

    done = ran.plan()

    assert done.stdout.splitlines() == [OK, ran.header(counts), *tasks]
    assert run_as_planned(ran, done.stdout) == statuses_after(*executed)


@pytest.mark.kernel
def test_a_changed_data_file_reruns_the_task_declaring_it(ran: Project) -> None:
    ran.data("alpha beta delta\n")
    elsewhere = ran.root / "elsewhere"
    elsewhere.mkdir()

    # run from another folder: dagnb.file("data.txt") is read beside the notebook, as in its kernel
    done = ran.dagnb("check", "--plan", f"../{NB}", "--cache-dir", str(ran.cache), cwd=elsewhere)

    assert done.stdout.splitlines() == [
        f"../{NB}: ok (4 tasks in 8 cells)",
        f"../{NB}: a run would execute 1 task, maybe 3 more, and load 0 from the cache at {ran.cache.resolve()}",
        "  raw    run  (input path changed)",
        "  clean  run if needed  (upstream raw runs first)",
        "  total  run if needed  (upstream clean runs first)",
        "  other  run if needed  (upstream raw runs first)",
    ]
    # clean keeps the first K=2 words (unchanged), so total stays cached; other keeps 3 (changed)
    assert run_as_planned(ran, done.stdout) == statuses_after("raw", "clean", "other")


@pytest.mark.kernel
@pytest.mark.parametrize(
    "edit",
    [
        pytest.param({"clean": "return helper(raw) + ['EXTRA']"}, id="code"),
        pytest.param({"K": "3"}, id="global"),
        pytest.param({"data": "alpha beta delta\n"}, id="data-file"),
    ],
)
def test_undoing_an_edit_finds_the_older_key(ran: Project, edit: dict[str, str]) -> None:
    edits = {k: v for k, v in edit.items() if k != "data"}
    ran.write(**edits)
    ran.data(edit.get("data", DATA))
    assert "done" in ran.run().values()
    ran.executed()
    ran.write()
    ran.data(DATA)

    done = ran.plan()

    assert done.stdout.splitlines() == [OK, ran.header("0 tasks and load 4"), *ALL_CACHED]
    assert run_as_planned(ran, done.stdout) == dict.fromkeys(ALL, "cached")


# ------------------------------------------------------------- assumptions

K_ASSUMED = [  # every task cached, and K, computed by code the plan does not run, assumed unchanged
    "  raw    cached",
    "  clean  cached",
    "         assuming unchanged: `K`",
    "  total  cached",
    "  other  cached",
]


@pytest.mark.kernel
def test_a_value_computed_by_code_is_assumed_unchanged(ran: Project) -> None:
    ran.write(K='int("2")')

    done = ran.plan()

    assert done.stdout.splitlines() == [OK, ran.header("0 tasks and load 4"), *K_ASSUMED]
    assert run_as_planned(ran, done.stdout) == dict.fromkeys(ALL, "cached")


@pytest.mark.kernel
def test_a_computed_value_that_did_change_is_what_the_assumption_misses(ran: Project) -> None:
    # Documented limit: the plan cannot evaluate `int("3")`; it says so, and a run finds the change.
    ran.write(K='int("3")')

    done = ran.plan()

    assert done.stdout.splitlines() == [OK, ran.header("0 tasks and load 4"), *K_ASSUMED]
    assert ran.run() == statuses_after("clean", "total")
    assert sorted(ran.executed()) == ["clean", "total"]


# ------------------------------------------------------------ literal values

LITERALS = {  # name: (first value, changed value), as written in the notebook
    "count": ("3", "4"),
    "offset": ("-4", "-5"),
    "rate": ("2.5", "3.5"),
    "zero": ("-0.0", "0.0"),
    "label": ("'text'", "'other'"),
    "raw_bytes": ("b'xy'", "b'xz'"),
    "flag": ("True", "False"),
    "nothing": ("None", "0"),
    "items": ("[1, 'a', 2.0]", "[1, 'a', 2.5]"),
    "pair": ("(1, (2, 3))", "(1, (2, 4))"),
    "table": ("{'a': 1, 'b': [2]}", "{'a': 1, 'b': [3]}"),
    "members": ("{3, 1, 2}", "{1, 2, 4}"),
    "wave": ("1+2j", "1+3j"),
    "etc": ("...", "None"),
    "empty": ("set()", "{0}"),
}


def literal_cells(which: int) -> list[Any]:
    values = [new_code_cell(f"{name} = {pair[which]}") for name, pair in LITERALS.items()]
    tasks = [new_code_cell(logged_task(f"show_{name}", name, f"return repr({name})")) for name in LITERALS]
    return [*values, *tasks]


@pytest.mark.kernel
def test_literal_values_of_every_kind_are_compared_as_the_kernel_fingerprints_them(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.write(literal_cells(0))
    assert set(project.run().values()) == {"done"}
    project.executed()
    width = max(len(f"show_{name}") for name in LITERALS)

    unchanged = project.plan()

    assert unchanged.stdout.splitlines()[2:] == [f"  {f'show_{n}'.ljust(width)}  cached" for n in LITERALS]
    run_as_planned(project, unchanged.stdout)

    project.write(literal_cells(1))
    changed = project.plan()

    assert changed.stdout.splitlines()[2:] == [
        f"  {f'show_{n}'.ljust(width)}  run  (input {n} changed)" for n in LITERALS
    ]
    assert set(run_as_planned(project, changed.stdout).values()) == {"done"}


# ----------------------------------------------------------------- known bugs


def one_task_project(tmp_path: Path, *cells: str) -> Project:
    project = Project(tmp_path)
    project.write([new_code_cell(c) for c in cells])
    return project


@pytest.mark.kernel
def test_a_global_read_only_by_a_helper_is_noticed(tmp_path: Path) -> None:
    helper = "def first(values):\n    return values[:K]"
    scaled = "%%task\ndef scaled():\n    with open('log.txt', 'a') as log:\n        log.write('scaled\\n')\n    return first([1, 2, 3, 4])\n"
    project = one_task_project(tmp_path, "K = 2", helper, scaled)
    assert project.run() == {"scaled": "done"}
    project.executed()
    project.write([new_code_cell(c) for c in ("K = 3", helper, scaled)])

    done = project.plan()

    run_as_planned(project, done.stdout)


@pytest.mark.kernel
def test_a_module_whose_distribution_has_another_name_is_not_reported_changed(tmp_path: Path) -> None:
    pytest.importorskip("dateutil")
    project = one_task_project(tmp_path, "import dateutil", "%%task\ndef parser_name():\n    return dateutil.__name__\n")
    assert project.run() == {"parser_name": "done"}

    done = project.plan()

    assert done.stdout.splitlines()[2:] == ["  parser_name  cached"]
    assert project.run() == {"parser_name": "cached"}


@pytest.mark.kernel
def test_plan_imports_no_module_of_the_notebook(tmp_path: Path) -> None:
    project = one_task_project(tmp_path, "import this", "%%task\ndef zen():\n    return len(this.s)\n")
    assert project.run() == {"zen": "done"}

    done = project.plan()

    assert done.stdout.splitlines() == [
        f"{NB}: ok (1 task in 2 cells)",
        project.header("0 tasks and load 1"),
        "  zen  cached",
    ]


@pytest.mark.kernel
def test_only_the_edited_helper_is_named(tmp_path: Path) -> None:
    task = "%%task\ndef both():\n    return h1(1) + h2(2)\n"
    project = one_task_project(tmp_path, "def h1(x):\n    return x + 1", "def h2(x):\n    return x * 2", task)
    assert project.run() == {"both": "done"}
    project.write([new_code_cell(c) for c in ("def h1(x):\n    return x + 1", "def h2(x):\n    return x * 3", task)])

    done = project.plan()

    assert done.stdout.splitlines()[2:] == ["  both  run  (helper h2 changed)"]
