"""``dagnb check``: every problem it reports, exactly, and that it never runs notebook code.

Each test writes a notebook with nbformat into ``tmp_path`` and runs the
real command line (``python -m dagnb check``) there, with a per-test
``DAGNB_CACHE_DIR``. Notebooks start with a markdown cell, so the cell
positions in the messages count every cell, as Jupyter shows them; line
numbers are within the cell, the ``%%task`` line being line 1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

NB = "nb.ipynb"


# ------------------------------------------------------------------ helpers


def markdown(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text)


def write_notebook(path: Path, *cells: str | nbformat.NotebookNode) -> Path:
    """A notebook of these cells: a string is a code cell, a NotebookNode is used as is."""
    nb = new_notebook()
    nb.cells = [c if isinstance(c, nbformat.NotebookNode) else new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def dagnb(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m dagnb ARGS`` in ``tmp_path`` with this test's cache directory."""
    env = {**os.environ, "DAGNB_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "dagnb", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def stdout_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return done.stdout.splitlines()


def task(name: str, params: str = "", body: str = "return 1") -> str:
    return f"%%task\ndef {name}({params}):\n    {body}\n"


def created(tmp_path: Path, names: list[str]) -> list[str]:
    return [n for n in names if (tmp_path / n).exists()]


# ------------------------------------------------- problems, as check words them


def not_one_def(found: str) -> str:
    """A ``%%task`` cell (cell 2) holding ``found`` rather than one function definition."""
    return (f"{NB}: cell 2: A `%%task` cell holds exactly one function definition (imports may precede it); "
            f"found: {found}. Put other code in an ordinary cell, and one `def` per `%%task` cell.")


def defined_twice(where: str, task: str, first: int) -> str:
    """Task ``task`` defined again at ``where`` after cell ``first``."""
    return (f"{NB}: {where}: Task `{task}` is defined in cell {first} and again here. Run top to bottom, the "
            "second definition replaces the first (and Jupyter, which sends cell ids, refuses it). Rename one of "
            "the two functions, or delete one of the cells.")


def depends_on_itself(where: str, task: str, notebook: str = NB) -> str:
    """Task ``task`` with a parameter of its own name."""
    return (f"{notebook}: {where}: Task `{task}` depends on itself: its parameter `{task}` names the task. "
            "Rename the parameter, or rename the function.")


def used_before(where: str, user: str, task: str, cell: int) -> str:
    """``user`` (a task's parameter, or a cell) reads task ``task`` above cell ``cell``, which defines it."""
    return (f"{NB}: {where}: {user} uses task `{task}` before cell {cell} defines it; run top to bottom in a "
            f"new kernel, the name does not exist yet. Move the `%%task def {task}` cell above, or this code "
            "below it.")


def cycle(where: str, loop: str) -> str:
    """Tasks whose parameters form ``loop`` (``a -> b -> a``)."""
    return (f"{NB}: {where}: Tasks form a cycle: {loop}. A task cannot depend on its own output; "
            "rename a parameter to break the loop.")


def unresolved(where: str, task: str, param: str, hint: str = "") -> str:
    """Task ``task`` with a parameter ``param`` nothing binds; ``hint`` is the close match offered, if any."""
    return (f"{NB}: {where}: Task `{task}` has a parameter `{param}` that is neither a task, a default, nor a "
            f"notebook variable. {hint}Define it in a cell above, give it a default, or add a "
            f"`%%task def {param}(...)`.")


# ------------------------------------------------------- one notebook per error kind


BROKEN = [
    pytest.param(
        [markdown("# Syntax"), "%%task\ndef load():\n    return (1\n"],
        [(f"{NB}: cell 2, line 3: The `%%task` cell has a syntax error at line 3: '(' was never closed. "
         "Fix the code.")],
        id="syntax-error-in-task-cell",
    ),
    pytest.param(
        [markdown("# Syntax"), "import math\nratio = (math.pi\n", task("load")],
        [f"{NB}: cell 2, line 2: The cell has a syntax error: '(' was never closed."],
        id="syntax-error-in-code-cell",
    ),
    pytest.param(
        [markdown("# Two"), "%%task\ndef load():\n    return 1\n\ndef clean(load):\n    return load\n"],
        [not_one_def("a function definition (line 2), a function definition (line 5)")],
        id="task-cell-with-two-defs",
    ),
    pytest.param(
        [markdown("# Extra"), "%%task\nimport os\nLIMIT = 3\ndef load():\n    return os.sep * LIMIT\n"],
        [not_one_def("an assignment (line 3), a function definition (line 4)")],
        id="task-cell-with-extra-statement",
    ),
    pytest.param(
        [markdown("# Option"), "%%task --fast\ndef load():\n    return 1\n"],
        [f"{NB}: cell 2, line 1: `%%task` has no option `--fast`; it takes `--no-run`, `--volatile`, `--retries N`, `--timeout SECONDS`, `--save PATH`, `--when EXPR` and `--map PARAM`. `%%task --help` says what each does."],
        id="unknown-task-option",
    ),
    pytest.param(
        [markdown("# Twice"), task("load"), markdown("again"), task("load", body="return 2")],
        [defined_twice("cell 4, line 2", "load", 2)],
        id="duplicate-task-name",
    ),
    pytest.param(
        [markdown("# Self"), "seed = 1", task("load", "load", "return load")],
        [depends_on_itself("cell 3, line 2", "load")],
        id="self-dependency",
    ),
    pytest.param(
        # a reads b, b reads a: the first cell uses b too early, the last one closes the loop
        [markdown("# Loop"), task("a", "b"), task("b", "a")],
        [used_before("cell 2, line 2", "Task `a` (parameter `b`)", "b", 3),
         cycle("cell 3, line 2", "a -> b -> a")],
        id="two-task-cycle",
    ),
    pytest.param(
        # a reads b, b reads c, c reads a: in flow order (each feeds the next) a -> c -> b -> a
        [markdown("# Loop"), task("a", "b"), task("b", "c"), markdown("last"), task("c", "a")],
        [used_before("cell 2, line 2", "Task `a` (parameter `b`)", "b", 3),
         used_before("cell 3, line 2", "Task `b` (parameter `c`)", "c", 5),
         cycle("cell 5, line 2", "a -> c -> b -> a")],
        id="three-task-cycle",
    ),
    pytest.param(
        [markdown("# Typo"), "features = ['a', 'b']\nlabels = [0, 1]", task("model", "featurs, labels")],
        [unresolved("cell 3, line 2", "model", "featurs", hint="Did you mean `features`? ")],
        id="unresolved-parameter-with-close-match",
    ),
    pytest.param(
        [markdown("# Unknown"), "features = ['a', 'b']", task("model", "features, weights")],
        [unresolved("cell 3, line 2", "model", "weights")],
        id="unresolved-parameter-without-close-match",
    ),
    pytest.param(
        [markdown("# Order"), task("report", "model", "return str(model)"), task("model", "", "return 42")],
        [used_before("cell 2, line 2", "Task `report` (parameter `model`)", "model", 3)],
        id="task-parameter-names-a-later-task",
    ),
    pytest.param(
        [markdown("# Order"), "import json\nprint(json.dumps(total))", markdown("tasks"), task("total", "", "return 2")],
        [used_before("cell 2, line 2", "Cell 2", "total", 4)],
        id="code-cell-reads-a-task-above-its-cell",
    ),
]


@pytest.mark.parametrize(("cells", "problems"), BROKEN)
def test_each_problem_is_reported_at_its_cell_and_line(
    tmp_path: Path, cells: list[str | nbformat.NotebookNode], problems: list[str]
) -> None:
    write_notebook(tmp_path / NB, *cells)

    done = dagnb(tmp_path, "check", NB)

    count = f"{len(problems)} problem" + ("s" if len(problems) > 1 else "")
    assert stdout_lines(done) == [*problems, f"{NB}: {count}"]
    assert done.stderr == ""
    assert done.returncode == 1


def test_problems_of_every_kind_in_one_notebook_are_listed_in_cell_order(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / NB,
        markdown("# Many"),
        task("report", "model, weights", "return model"),
        "x = (",
        task("model", "", "return 1"),
        task("model", "", "return 2"),
    )

    done = dagnb(tmp_path, "check", NB)

    assert stdout_lines(done) == [
        used_before("cell 2, line 2", "Task `report` (parameter `model`)", "model", 4),
        unresolved("cell 2, line 2", "report", "weights"),
        f"{NB}: cell 3, line 1: The cell has a syntax error: '(' was never closed.",
        defined_twice("cell 5, line 2", "model", 4),
        f"{NB}: 4 problems",
    ]
    assert done.returncode == 1


# ------------------------------------------------------------ clean notebooks


CLEAN_CELLS = [
    markdown("# A clean pipeline"),
    "import dagnb\nimport math",
    "K = 2\nwords = ['delta', 'alpha']",
    "def helper(values):\n    return sorted(values)[:K]",
    task("raw", 'path=dagnb.file("data.txt")', "return open(path).read().split()"),
    markdown("Cleaning"),
    task("clean", "raw, words", "return helper(raw + words)"),
    "%%task --no-run\ndef total(clean, n=3):\n    return math.floor(len(clean) * n)\n",
    "print(clean, total)",
]


def test_a_clean_notebook_is_ok(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, *CLEAN_CELLS)

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (3 tasks in 9 cells)\n"
    assert done.stderr == ""
    assert done.returncode == 0


def test_one_task_is_counted_in_the_singular(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# One"), task("only"), "print(only)")

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (1 task in 3 cells)\n"
    assert done.returncode == 0


def test_one_cell_is_counted_in_the_singular(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, task("only"))

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (1 task in 1 cell)\n"


def test_a_notebook_with_no_tasks_is_ok(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Notes"), "x = 1", "")

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (0 tasks in 3 cells)\n"
    assert done.returncode == 0


def test_a_parameter_with_a_default_needs_no_variable(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Defaults"), task("load", "n=3, *, scale=1.5", "return n * scale"))

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (1 task in 2 cells)\n"
    assert done.returncode == 0


# ------------------------------------------------------- several notebooks, paths


def test_several_notebooks_each_get_their_report_and_the_worst_exit_code(tmp_path: Path) -> None:
    write_notebook(tmp_path / "good.ipynb", *CLEAN_CELLS)
    write_notebook(tmp_path / "bad.ipynb", markdown("# Bad"), task("a", "a"))
    write_notebook(tmp_path / "also_good.ipynb", markdown("# B"), task("b"))

    done = dagnb(tmp_path, "check", "good.ipynb", "bad.ipynb", "also_good.ipynb")

    assert stdout_lines(done) == [
        "good.ipynb: ok (3 tasks in 9 cells)",
        depends_on_itself("cell 2, line 2", "a", notebook="bad.ipynb"),
        "bad.ipynb: 1 problem",
        "also_good.ipynb: ok (1 task in 2 cells)",
    ]
    assert done.returncode == 1


def test_a_missing_notebook_is_a_usage_error_and_the_others_are_still_checked(tmp_path: Path) -> None:
    write_notebook(tmp_path / "bad.ipynb", markdown("# Bad"), task("a", "a"))
    write_notebook(tmp_path / "good.ipynb", *CLEAN_CELLS)

    done = dagnb(tmp_path, "check", "bad.ipynb", "missing.ipynb", "good.ipynb")

    assert stdout_lines(done) == [
        depends_on_itself("cell 2, line 2", "a", notebook="bad.ipynb"),
        "bad.ipynb: 1 problem",
        "good.ipynb: ok (3 tasks in 9 cells)",
    ]
    assert done.stderr == "dagnb: no notebook at missing.ipynb\n"
    assert done.returncode == 2


def test_a_missing_notebook_alone(tmp_path: Path) -> None:
    done = dagnb(tmp_path, "check", "nowhere/nb.ipynb")

    assert done.stdout == ""
    assert done.stderr == "dagnb: no notebook at nowhere/nb.ipynb\n"
    assert done.returncode == 2


def test_a_directory_is_not_a_notebook(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()

    done = dagnb(tmp_path, "check", "folder")

    assert done.stderr == "dagnb: no notebook at folder\n"
    assert done.returncode == 2


def test_positions_are_reported_with_the_path_as_given(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write_notebook(tmp_path / "sub" / "nb.ipynb", markdown("# Self"), task("a", "a"))

    done = dagnb(tmp_path, "check", "sub/nb.ipynb")

    assert stdout_lines(done)[-1] == "sub/nb.ipynb: 1 problem"
    assert stdout_lines(done)[0].startswith("sub/nb.ipynb: cell 2, line 2: Task `a` depends on itself")


# ---------------------------------------------------------- nothing is executed


SENTINELS = ["S_cell", "S_body", "S_default", "S_decorator", "S_bash", "S_bang", "S_writefile",
             "S_time", "S_class", "S_import", "S_task_import"]

RISKY_CELLS = [
    markdown("# Every cell here would create a file if it ran"),
    "open('S_cell', 'w').write('x')",
    "class Setup:\n    open('S_class', 'w').write('x')",
    "%%bash\ntouch S_bash\n",
    "!touch S_bang",
    "%%writefile S_writefile\nprint('hello')\n",
    "%%time\nopen('S_time', 'w').write('x')\nK = 3\n",
    # a module beside the notebook that would create a file when imported
    "import importer_side_effect",
    "%%task\ndef body(K):\n    open('S_body', 'w').write('x')\n    return K\n",
    "%%task\ndef default(x=open('S_default', 'w')):\n    return 1\n",
    "%%task\n@(lambda f: (open('S_decorator', 'w').close(), f)[1])\ndef decorated(body):\n    return body\n",
    "%%task\nimport task_side_effect\ndef imports(body):\n    return body\n",
]


def write_risky_notebook(tmp_path: Path) -> None:
    (tmp_path / "importer_side_effect.py").write_text("open('S_import', 'w').write('x')\n")
    (tmp_path / "task_side_effect.py").write_text("open('S_task_import', 'w').write('x')\n")
    write_notebook(tmp_path / NB, *RISKY_CELLS)


def test_check_executes_no_cell_task_default_decorator_magic_or_import(tmp_path: Path) -> None:
    write_risky_notebook(tmp_path)

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (4 tasks in 12 cells)\n"
    assert done.returncode == 0
    assert created(tmp_path, SENTINELS) == []


def test_check_of_a_broken_notebook_executes_nothing_either(tmp_path: Path) -> None:
    write_risky_notebook(tmp_path)
    nb = nbformat.read(tmp_path / NB, as_version=4)
    nb.cells.append(new_code_cell("%%task\ndef body():\n    return 2\n"))  # a duplicate
    nbformat.write(nb, tmp_path / NB)

    done = dagnb(tmp_path, "check", NB)

    assert done.returncode == 1
    assert created(tmp_path, SENTINELS) == []


def test_check_plan_with_no_cache_executes_nothing(tmp_path: Path) -> None:
    write_risky_notebook(tmp_path)

    done = dagnb(tmp_path, "check", "--plan", NB)

    assert done.returncode == 0
    assert created(tmp_path, SENTINELS) == []


@pytest.mark.kernel
def test_check_plan_against_a_filled_cache_executes_nothing(tmp_path: Path) -> None:
    # Fill the cache with harmless tasks of the same names, then plan the risky notebook.
    (tmp_path / "safe").mkdir()
    write_notebook(
        tmp_path / "safe" / NB,
        "K = 3",
        "%%task\ndef body(K):\n    return K\n",
        "%%task\ndef default(x=1):\n    return 1\n",
        "%%task\ndef decorated(body):\n    return body\n",
        "%%task\ndef imports(body):\n    return body\n",
    )
    ran = dagnb(tmp_path, "run", "safe/nb.ipynb")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    write_risky_notebook(tmp_path)

    done = dagnb(tmp_path, "check", "--plan", NB)

    cache = tmp_path / "cache"
    # the tasks of the same names are another notebook's (safe/nb.ipynb): they never explain this one's
    assert stdout_lines(done) == [
        f"{NB}: ok (4 tasks in 12 cells)",
        f"{NB}: a run would execute 4 tasks and load 0 from the cache at {cache}",
        "  body       run  (new)",
        "  default    run  (new)",
        "  decorated  run  (new)",
        "  imports    run  (new)",
    ]
    assert done.returncode == 0
    assert created(tmp_path, SENTINELS) == []


# ------------------------------------------------------------- IPython syntax


def test_ipython_syntax_is_read_and_names_it_binds_count(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / NB,
        markdown("# IPython"),
        "%matplotlib inline\n%load_ext autoreload\n!ls\nfiles = !ls\nlen?\n",
        "%%time\nthreshold = 0.5\nfor i in range(2):\n    pass\n",
        "%%capture\nprint('quiet')\n",
        "%%task\ndef choose(files, threshold, i):\n    return [f for f in files if len(f) > threshold + i]\n",
        "choose??",
    )

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (1 task in 6 cells)\n"
    assert done.returncode == 0


def test_a_name_bound_only_after_the_task_is_still_unresolved(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / NB,
        markdown("# IPython"),
        task("choose", "threshold"),
        "%%time\nthreshold = 0.5\n",
    )

    done = dagnb(tmp_path, "check", NB)

    assert stdout_lines(done) == [
        unresolved("cell 2, line 2", "choose", "threshold"),
        f"{NB}: 1 problem",
    ]
    assert done.returncode == 1


UNRESOLVED_MISSING = unresolved("cell 3, line 2", "use", "missing")


@pytest.mark.parametrize(
    ("above", "reported"),
    [
        pytest.param("from os.path import join", [UNRESOLVED_MISSING, f"{NB}: 1 problem"], id="plain-import"),
        pytest.param("from os.path import *", [f"{NB}: ok (1 task in 3 cells)"], id="star-import"),
        pytest.param("%%bash\necho hi\n", [f"{NB}: ok (1 task in 3 cells)"], id="unknown-cell-magic"),
    ],
)
def test_names_from_a_star_import_or_an_unknown_cell_magic_are_not_reported(
    tmp_path: Path, above: str, reported: list[str]
) -> None:
    # Documented limit: after `from m import *` (or an opaque cell magic) the names bound are
    # unknown, so an unresolved parameter is not reported below it.
    write_notebook(tmp_path / NB, markdown("# Limits"), above, task("use", "missing"))

    done = dagnb(tmp_path, "check", NB)

    assert stdout_lines(done) == reported
    assert done.returncode == (1 if len(reported) > 1 else 0)


def test_a_star_import_below_the_task_does_not_hide_the_problem(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Limits"), "x = 1", task("use", "missing"), "from os.path import *")

    done = dagnb(tmp_path, "check", NB)

    assert stdout_lines(done) == [UNRESOLVED_MISSING, f"{NB}: 1 problem"]
    assert done.returncode == 1


def test_a_star_import_does_not_hide_other_problems(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Limits"), "from os.path import *", task("use", "use"))

    done = dagnb(tmp_path, "check", NB)

    assert stdout_lines(done) == [
        depends_on_itself("cell 3, line 2", "use"),
        f"{NB}: 1 problem",
    ]


# ----------------------------------------------------------------- known bugs


def test_line_numbers_in_a_time_cell_count_the_magic_line(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Time"), "%%time\nx = 1\ny = (\n")

    done = dagnb(tmp_path, "check", NB)

    assert stdout_lines(done) == [
        f"{NB}: cell 2, line 3: The cell has a syntax error: '(' was never closed.",
        f"{NB}: 1 problem",
    ]


def test_a_bare_cell_magic_marker_does_not_crash(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Odd"), "%%\nx = 1\n", task("load"))

    done = dagnb(tmp_path, "check", NB)

    assert done.stderr == ""
    assert done.returncode in (0, 1)
    assert stdout_lines(done)[-1].startswith(f"{NB}: ")


def test_a_close_match_never_suggests_the_task_itself(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Typo"), task("model", "modl"))

    done = dagnb(tmp_path, "check", NB)

    assert stdout_lines(done) == [
        unresolved("cell 2, line 2", "model", "modl"),
        f"{NB}: 1 problem",
    ]


def test_a_task_that_reads_an_earlier_tasks_variable_depends_on_it(tmp_path: Path) -> None:
    """``double`` reads ``base`` as a global, with no parameter: an edge, as in the kernel."""
    write_notebook(tmp_path / NB, markdown("# t"), task("base", "", "return 7"), task("double", "", "return base * 2"))
    done = dagnb(tmp_path, "check", NB)
    assert (done.returncode, stdout_lines(done)) == (0, [f"{NB}: ok (2 tasks in 3 cells)"])


def test_a_task_that_reads_a_later_tasks_variable_is_reported(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# t"), task("double", "", "return base * 2"), task("base", "", "return 7"))
    done = dagnb(tmp_path, "check", NB)
    assert stdout_lines(done)[0] == used_before("cell 2, line 2", "Task `double` (which reads `base`)", "base", 3)


def test_a_cycle_through_a_variable_read_as_a_global_names_the_read(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# t"), task("a", "b", "return b"), task("b", "", "return a + 1"))
    done = dagnb(tmp_path, "check", NB)
    assert stdout_lines(done)[1] == (
        f"{NB}: cell 3, line 2: Tasks form a cycle: a -> b -> a (`b` reads the variable `a` of task `a`). A task "
        "cannot depend on its own output; rename a parameter, or stop reading that variable, to break the loop."
    ), "after the parameter `b` used above its cell"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("*rows", "Task `a`: it takes `*rows`, and a task's inputs must be named. List each input as its own parameter."),
        ("x=1, **options", ("Task `a`: it takes `**options`, and a task's inputs must be named. "
                           "List each input as its own parameter.")),
    ],
    ids=["var-positional", "var-keyword"],
)
def test_a_task_with_star_parameters_is_reported(tmp_path: Path, params: str, message: str) -> None:
    write_notebook(tmp_path / NB, markdown("# Stars"), task("a", params))

    done = dagnb(tmp_path, "check", NB)

    assert done.returncode == 1
    assert any(line in (f"{NB}: cell 2: {message}", f"{NB}: cell 2, line 2: {message}") for line in stdout_lines(done))


def test_the_name_a_capture_cell_binds_counts(tmp_path: Path) -> None:
    write_notebook(tmp_path / NB, markdown("# Capture"), "%%capture captured\nprint(1)\n",
                   task("shown", "captured", "return captured.stdout"))

    done = dagnb(tmp_path, "check", NB)

    assert done.stdout == f"{NB}: ok (1 task in 3 cells)\n"
    assert done.returncode == 0


def test_a_file_that_is_not_a_notebook_is_named_and_the_others_still_checked(tmp_path: Path) -> None:
    (tmp_path / "conflict.ipynb").write_text("<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> branch\n")
    write_notebook(tmp_path / "good.ipynb", markdown("# B"), task("b"))

    done = dagnb(tmp_path, "check", "conflict.ipynb", "good.ipynb")

    assert "conflict.ipynb" in done.stderr + done.stdout
    assert "good.ipynb: ok (1 task in 2 cells)" in stdout_lines(done)
    assert done.returncode != 0


def test_a_task_reading_what_its_key_does_not_cover_is_a_note_that_does_not_fail(tmp_path: Path) -> None:
    write_notebook(
        tmp_path / NB, markdown("# Notes"),
        "import numpy as np\nimport dagnb\ndef load(p):\n    return open(p).read()",
        task("sample", "seed=0", "return np.random.default_rng(seed).random()"),  # seeded: nothing to say
        task("noisy", "", "return np.random.rand(3)"),
        task("raw", "path=dagnb.file('data.csv')", "return load(path)"),  # a dagnb.file: nothing to say
        task("notes", "", "return load('notes.txt')"),
        "%%task --volatile\ndef fresh():\n    return np.random.rand(3)",  # volatile: nothing to say
    )

    done = dagnb(tmp_path, "check", NB)

    fix = ("dagnb cannot see it change, so a cached value is reused as if the task were deterministic. To fix it: "
           "{fix}; or mark the task volatile (`%%task --volatile`, `@task(volatile=True)`) to rerun it every time.")
    assert done.stdout.splitlines() == [
        f"{NB}: cell 4, line 3: note: Task `noisy` reads what its key does not cover: the global random generator "
        "(`np.random.rand(3)` line 3). " + fix.format(fix="take a seed as a parameter (`def noisy(seed=0)`, then "
                                                          "`np.random.default_rng(seed)` or `random.Random(seed)`)"),
        f"{NB}: cell 6, line 2: note: Task `notes` reads what its key does not cover: a file that is not a "
        "`dagnb.file` input (`open(p)` in helper `load`). "
        + fix.format(fix='declare the file as a parameter (`path=dagnb.file("data.csv")`)'),
        f"{NB}: ok (5 tasks in 7 cells)",
    ]
    assert done.returncode == 0
