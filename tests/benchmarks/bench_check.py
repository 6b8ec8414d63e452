"""``dagnb check`` speed: fast enough for a pre-commit hook.

The goal is a 200-cell notebook checked "in well under a second" from the
command line. The notebook is generated: 100 ``%%task`` cells forming a
seeded random DAG (each task reads up to two earlier tasks, a parameter
variable and a helper), 60 ordinary cells (imports, assignments, helper
functions) and 40 markdown cells, interleaved so that every name is bound
above its first use.

Rows:

* ``check_notebook`` in-process (the notebook is read and parsed, nothing
  runs), best of N after a warm-up call that pays the IPython import;
* the whole command, ``python -m dagnb check NB``, as a subprocess: wall
  time including interpreter start-up and imports. This is the goal row;
  a bare ``python -c pass`` start-up is shown beside it, and the imports
  the command needs, timed alone, in the next row;
* ``dagnb check --plan NB`` as a subprocess, against a cache filled by
  running the notebook once with ``dagnb run`` (a real kernel), and
  ``plan_notebook`` in-process over the same cache. The fill takes a few
  seconds and is shown as an information row.

Every timed call is verified (the check is ok with 100 tasks; the plan loads
all 100 from the cache), so a broken notebook cannot produce a fast number.
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Row, Sizes, best_of_call, ms, user_environment

from dagnb.ci.check import check_notebook
from dagnb.ci.static_plan import plan_notebook

GOAL_CLI_S = 1.0
TASKS, CODE, MARKDOWN = 100, 60, 40
PATTERN = "tcmtctmttc"  # per 10 cells: 5 task, 3 code, 2 markdown cells
IMPORTS = "import dagnb.ci.cli, dagnb.ci.check; from IPython.core.inputtransformer2 import TransformerManager"


# ----------------------------------------------------------------- the notebook


def notebook_cells(seed: int = 0) -> list[tuple[str, str]]:
    """``(cell_type, source)`` for the 200 cells, every name bound above its first use."""
    rng = random.Random(seed)
    cells: list[tuple[str, str]] = []
    tasks = code = markdown = 0
    params: list[str] = []
    helpers: list[str] = []
    for position in range(TASKS + CODE + MARKDOWN):
        kind = PATTERN[position % len(PATTERN)]
        if kind == "m":
            cells.append(("markdown", f"## Step {markdown}\n\nWhat the next cells compute, in prose."))
            markdown += 1
        elif kind == "c":
            cells.append(("code", _code_cell(code, params, helpers)))
            code += 1
        else:
            cells.append(("code", _task_cell(tasks, rng, params, helpers)))
            tasks += 1
    assert (tasks, code, markdown) == (TASKS, CODE, MARKDOWN)
    return cells


def _code_cell(index: int, params: list[str], helpers: list[str]) -> str:
    kind = index % 3
    if kind == 0:
        return "import math\nimport json\nfrom collections import Counter"
    if kind == 1:
        params.append(f"p{index}")
        return f"# settings\np{index} = {index % 7 + 1}\nlabel_{index} = 'run {index}'"
    helpers.append(f"h{index}")
    return (
        f"def h{index}(value):\n"
        f'    """Scale ``value`` and keep it small."""\n'
        f"    return int(math.fabs(value) * {index % 5 + 1}) % 1009\n"
    )


def _task_cell(index: int, rng: random.Random, params: list[str], helpers: list[str]) -> str:
    upstream = sorted(rng.sample(range(index), min(index, 2)))
    names = [f"t{j}" for j in upstream]
    inputs = [*names, *([rng.choice(params)] if params else [])]
    signature = ", ".join([*inputs, f"n={index}"])
    total = " + ".join([*inputs, "n"])
    helper = rng.choice(helpers) if helpers else "abs"
    return f"%%task\ndef t{index}({signature}):\n    total = {total}\n    return {helper}(total)\n"


def write_notebook(path: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    nb = new_notebook()
    nb.cells = [new_code_cell(s) if kind == "code" else new_markdown_cell(s) for kind, s in notebook_cells()]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


# ---------------------------------------------------------------- measurements


def _checked(path: Path) -> None:
    result = check_notebook(path)
    if not result.ok or len(result.tasks) != TASKS:
        raise RuntimeError(f"the generated notebook does not check clean:\n{result.render_text()}")


def _command(args: list[str], cwd: Path, env: dict[str, str], expect: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or expect not in done.stdout:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed


def best_command(args: list[str], cwd: Path, env: dict[str, str], expect: str, repeat: int) -> float:
    return min(_command(args, cwd, env, expect) for _ in range(repeat))


def fill_cache(path: Path, env: dict[str, str]) -> float:
    """Run the notebook once with ``dagnb run``; return the wall time."""
    return _command(["-m", "dagnb", "run", path.name], path.parent, env, f"{TASKS} tasks, {TASKS} ran, 0 cached")


def time_plan_in_process(path: Path, cache: str, repeat: int) -> float:
    result = check_notebook(path)

    def plan() -> Any:
        planned = plan_notebook(result, cache)
        if planned.count("load") != TASKS:
            raise RuntimeError(f"the plan does not load every task from the cache:\n{planned.render_text()}")
        return planned

    return best_of_call(plan, repeat)


# ------------------------------------------------------------------------ rows


def rows(sizes: Sizes) -> list[Row]:
    cells = TASKS + CODE + MARKDOWN
    shape = f"{cells}-cell notebook ({TASKS} tasks, {CODE} code, {MARKDOWN} markdown)"
    cli_repeat = sizes.slow_repeat + 2
    with tempfile.TemporaryDirectory(prefix="dagnb-bench-check-") as directory:
        path = write_notebook(Path(directory) / "pipeline.ipynb")
        cache = str(Path(directory) / "cache")
        env = user_environment(DAGNB_CACHE_DIR=cache)

        _checked(path)  # warm-up: the first call imports IPython's input transformer
        in_process = best_of_call(lambda: _checked(path), sizes.repeat)
        cli = best_command(["-m", "dagnb", "check", path.name], path.parent, env,
                           f"ok ({TASKS} tasks in {cells} cells)", cli_repeat)
        startup = best_command(["-c", "pass"], path.parent, env, "", cli_repeat)
        imports = best_command(["-c", IMPORTS], path.parent, env, "", cli_repeat)

        fill = fill_cache(path, env)
        plan_cli = best_command(["-m", "dagnb", "check", "--plan", path.name], path.parent, env,
                                f"execute 0 tasks and load {TASKS} from the cache", cli_repeat)
        plan_in_process = time_plan_in_process(path, cache, sizes.repeat)

    return [
        Row(f"`check_notebook` in-process, {shape} (info)", ms(in_process), "—", None, "—", None),
        Row(f"`python -m dagnb check` wall time, {shape}, interpreter start-up included",
            ms(cli), f"`python -c pass`: {ms(startup)}", None,
            f"< {GOAL_CLI_S:.0f} s", cli < GOAL_CLI_S),
        Row("of which imports: `dagnb.ci.check` and IPython's input transformer, in a new interpreter (info)",
            ms(imports), "—", None, "—", None),
        Row("filling the cache: `dagnb run` of that notebook in a kernel (info)", ms(fill), "—", None, "—", None),
        Row(f"`python -m dagnb check --plan` wall time, {TASKS} tasks all cached (info)",
            ms(plan_cli), "—", None, "—", None),
        Row(f"`plan_notebook` in-process, {TASKS} tasks all cached (info)", ms(plan_in_process), "—", None, "—", None),
    ]


if __name__ == "__main__":
    from _common import render_table

    print(render_table(rows(Sizes.choose("--quick" in sys.argv))))
