"""The real notebook flow: nbformat notebooks executed by nbclient in a real ipykernel.

Each test builds a small notebook in ``tmp_path`` (first cell
``%load_ext dagnb``, then ``%%task`` cells) and executes it headless, the
way ``jupyter execute`` or CI does. Each task body appends its name to a
log file (a string default parameter), so executions are counted for real.
The disk cache lives in a per-test ``DAGNB_CACHE_DIR``, which kernels
inherit from this process's environment; executing the notebook again
starts a *new* kernel, so a second execution is a kernel restart, and it
runs under another ``PYTHONHASHSEED``.

Task statuses are read from the ``dagnb`` output metadata of each task
cell's status line.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook

import dagnb

pytestmark = pytest.mark.kernel

DAGNB_DIR = os.path.dirname(os.path.abspath(dagnb.__file__))
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ------------------------------------------------------------------ helpers


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cold cache for kernels started by this test; returns ``tmp_path``."""
    monkeypatch.setenv("DAGNB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONHASHSEED", "1")
    return tmp_path


def task_cell(name: str, params: str, body: str, log: Path) -> str:
    """A ``%%task`` cell whose function logs its name, then runs ``body`` (one or more lines)."""
    sep = ", " if params else ""
    lines = "".join(f"    {line}\n" for line in body.splitlines())
    return (
        f"%%task\ndef {name}({params}{sep}log={str(log)!r}):\n"
        f"    with open(log, 'a') as fh:\n"
        f"        fh.write('{name}\\n')\n"
        f"{lines}"
    )


def make_notebook(*sources: str) -> nbformat.NotebookNode:
    """A notebook whose first cell loads dagnb, then one code cell per source."""
    nb = new_notebook()
    nb.cells = [new_code_cell("%load_ext dagnb"), *(new_code_cell(s) for s in sources)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def client_for(nb: nbformat.NotebookNode, cwd: Path, allow_errors: bool = False) -> NotebookClient:
    return NotebookClient(
        nb, kernel_name="python3", timeout=120, allow_errors=allow_errors,
        resources={"metadata": {"path": str(cwd)}},
    )


def execute(nb: nbformat.NotebookNode, cwd: Path, allow_errors: bool = False) -> nbformat.NotebookNode:
    """Execute every cell in a new kernel (nbclient works on ``nb`` in place); return ``nb``."""
    client_for(nb, cwd, allow_errors).execute()
    return nb


def log_lines(tmp_path: Path) -> list[str]:
    path = tmp_path / "log.txt"
    return path.read_text().split() if path.exists() else []


def text_of(cell: Any) -> str:
    """A cell's streams and ``text/plain`` outputs, in order, ANSI codes stripped."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("display_data", "execute_result"):
            parts.append(out["data"].get("text/plain", "") + "\n")
        elif out["output_type"] == "error":
            parts.append("\n".join(out["traceback"]) + "\n")
    return ANSI.sub("", "".join(parts))


def stdout_of(cell: Any) -> str:
    return "".join(o["text"] for o in cell["outputs"] if o["output_type"] == "stream" and o["name"] == "stdout")


def status_outputs(nb: nbformat.NotebookNode) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """``(task, its dagnb metadata, the output)`` for each task cell's status line."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("dagnb")
            if out["output_type"] == "display_data" and meta and meta.get("task"):
                yield meta["task"], meta, out
                break


def statuses(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{task: status}`` from each task cell's own status line."""
    return {task: meta["statuses"][task] for task, meta, _ in status_outputs(nb)}


def status_lines(nb: nbformat.NotebookNode) -> dict[str, str]:
    """``{task: status line text}`` for each task cell."""
    return {task: out["data"]["text/plain"] for task, _, out in status_outputs(nb)}


def pipeline(log: Path, clean_body: str = "return sorted(raw | words)") -> nbformat.NotebookNode:
    """words (plain cell) · raw -> clean -> model, raw -> summary · a final cell that prints values."""
    return make_notebook(
        'words = {"delta", "alpha", "charlie"}',
        task_cell("raw", "n=4", 'return {f"item{i}" for i in range(n)}', log),
        task_cell("clean", "raw, words", clean_body, log),
        task_cell("model", "clean", "return len(clean) * 10 + len(clean[0])", log),
        task_cell("summary", "raw", "return len(raw)", log),
        "print(model, summary, clean)",
    )


ALL = {"raw", "clean", "model", "summary"}


# ------------------------------------------------------------------ restart: everything cached


def test_second_execution_in_a_new_kernel_runs_nothing(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = env / "log.txt"
    first = execute(pipeline(log), env)
    assert sorted(log_lines(env)) == sorted(ALL)
    assert statuses(first) == dict.fromkeys(ALL, "done")
    assert all(": ran (new)" in line for line in status_lines(first).values()), status_lines(first)
    printed = stdout_of(first.cells[-1])
    assert printed == "75 4 ['alpha', 'charlie', 'delta', 'item0', 'item1', 'item2', 'item3']\n"

    monkeypatch.setenv("PYTHONHASHSEED", "2")  # set order differs in the new kernel
    second = execute(pipeline(log), env)
    assert sorted(log_lines(env)) == sorted(ALL), "the restarted kernel executed tasks again"
    assert statuses(second) == dict.fromkeys(ALL, "cached")
    assert status_lines(second) == {t: f"{t}: cached" for t in ALL}
    assert stdout_of(second.cells[-1]) == printed


# ------------------------------------------------------------------ edits


EDITS = [  # clean's new body, the status line of each task that ran again, what the last cell prints
    pytest.param(
        "return sorted(raw | words)[:-1]",
        # model's cell comes later in this fresh kernel, so clean lists nothing as stale yet
        {"clean": "clean: ran (code changed)", "model": "model: ran (upstream clean changed)"},
        "65 4 ['alpha', 'charlie', 'delta', 'item0', 'item1', 'item2']\n",
        id="editing-a-task-cell-reruns-that-task-and-its-downstream",
    ),
    pytest.param(
        "return sorted(words | raw)",  # same list
        {"clean": "clean: ran (code changed)"},
        "75 4 ['alpha', 'charlie', 'delta', 'item0', 'item1', 'item2', 'item3']\n",
        id="an-edit-that-keeps-the-output-leaves-the-downstream-cached",
    ),
]


@pytest.mark.parametrize(("clean_body", "ran", "printed"), EDITS)
def test_an_edited_task_cell_reruns_only_what_its_new_output_changes(
    env: Path, monkeypatch: pytest.MonkeyPatch, clean_body: str, ran: dict[str, str], printed: str
) -> None:
    log = env / "log.txt"
    execute(pipeline(log), env)
    before = len(log_lines(env))

    monkeypatch.setenv("PYTHONHASHSEED", "3")
    edited = execute(pipeline(log, clean_body=clean_body), env)
    assert sorted(log_lines(env)[before:]) == sorted(ran)
    assert statuses(edited) == {t: "done" if t in ran else "cached" for t in ALL}
    assert {t: status_lines(edited)[t] for t in ran} == ran
    assert stdout_of(edited.cells[-1]) == printed


# ------------------------------------------------------------------ printed output is replayed


def test_what_a_task_prints_is_replayed_when_it_is_cached(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = env / "log.txt"
    source = task_cell("greet", "who='world'", 'print(f"hello, {who}!")\nprint("second line")\nreturn who', log)
    first = execute(make_notebook(source), env)
    assert stdout_of(first.cells[1]) == "hello, world!\nsecond line\n"

    monkeypatch.setenv("PYTHONHASHSEED", "5")
    second = execute(make_notebook(source), env)
    assert log_lines(env) == ["greet"]
    assert statuses(second) == {"greet": "cached"}
    assert stdout_of(second.cells[1]) == "hello, world!\nsecond line\n"


# ------------------------------------------------------------------ errors


def failing_notebook(log: Path) -> nbformat.NotebookNode:
    return make_notebook(
        task_cell("raw", "", "return [1, 2, 3]", log),
        task_cell("boom", "raw", "total = sum(raw)\nraise ValueError(f'bad input {total}')", log),
        "print('raw is', raw)",
    )


def test_a_failing_task_raises_task_failed_with_only_the_users_frames(env: Path) -> None:
    nb = failing_notebook(env / "log.txt")
    with pytest.raises(CellExecutionError) as caught:
        execute(nb, env)
    text = ANSI.sub("", str(caught.value))
    assert "TaskFailed" in text and "`boom`" in text, text
    assert "ValueError" in text and "bad input 6" in text, text
    assert "raise ValueError" in text, "the user's own line is shown"
    assert DAGNB_DIR not in text, f"dagnb's own frames leak into the traceback:\n{text}"
    (error,) = [o for o in nb.cells[2].outputs if o["output_type"] == "error"]
    assert error["ename"] == "TaskFailed"
    traceback = ANSI.sub("", "\n".join(error["traceback"]))
    assert DAGNB_DIR not in traceback and "api.py" not in traceback and "executor.py" not in traceback


def test_after_a_failing_task_upstream_values_survive(env: Path) -> None:
    nb = execute(failing_notebook(env / "log.txt"), env, allow_errors=True)
    assert [o["ename"] for o in nb.cells[2].outputs if o["output_type"] == "error"] == ["TaskFailed"]
    assert stdout_of(nb.cells[3]) == "raw is [1, 2, 3]\n"
    assert log_lines(env) == ["raw", "boom"]


def test_an_unresolved_parameter_is_an_error_output_naming_task_and_parameter(env: Path) -> None:
    log = env / "log.txt"
    source = task_cell("needs", "raw, missing_thing", "return raw", log)
    nb = make_notebook(task_cell("raw", "", "return 1", log), source, "print('after')")

    with pytest.raises(CellExecutionError) as caught:
        execute(nb, env)
    text = ANSI.sub("", str(caught.value))
    assert "UnresolvedParameter" in text and "`needs`" in text and "`missing_thing`" in text, text

    nb = execute(make_notebook(task_cell("raw", "", "return 1", log), source, "print('after')"), env, allow_errors=True)
    # One paragraph, no traceback, but a real `error` output: nbval (even --nbval-lax) fails the cell
    [error] = [o for o in nb.cells[2].outputs if o["output_type"] == "error"]
    assert (error["ename"], error["evalue"].split(" has ")[0]) == ("UnresolvedParameter", "Task `needs`")
    shown = text_of(nb.cells[2])
    assert shown.startswith("UnresolvedParameter: Task `needs` has a parameter `missing_thing`"), shown
    assert "Traceback" not in shown and DAGNB_DIR not in shown
    assert stdout_of(nb.cells[3]) == "after\n"
    assert log_lines(env) == ["raw"]  # `needs` never ran; the second kernel loaded raw from cache


# ------------------------------------------------------------------ renaming a function in its cell


def run_cells_one_by_one(
    nb: nbformat.NotebookNode, cwd: Path, steps: list[tuple[int, str | None]], send_cell_ids: bool = False
) -> list[str]:
    """Run ``(cell index, new source or None)`` steps in ONE kernel; return each step's text.

    With ``send_cell_ids`` the execute requests carry ``metadata.cellId`` (as
    JupyterLab sends it); nbclient 0.11 itself sends none.
    """
    client = client_for(nb, cwd)
    texts = []
    with client.setup_kernel():
        if send_cell_ids:
            _send_cell_ids(client)
        for index, source in steps:
            cell = nb.cells[index]
            if source is not None:
                cell.source = source
            client.execute_cell(cell, index)
            texts.append(text_of(cell))
    return texts


def _send_cell_ids(client: NotebookClient) -> None:
    """Make the kernel client attach the executing cell's id, like JupyterLab does."""
    current: dict[str, str] = {}
    kc = client.kc
    assert kc is not None

    def on_cell_execute(cell: Any, cell_index: int, **_: Any) -> None:
        current["id"] = cell.id

    def execute_with_cell_id(code: str, store_history: bool = True, stop_on_error: bool = True, **_: Any) -> str:
        content = {"code": code, "silent": False, "store_history": store_history, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": stop_on_error}
        msg = kc.session.msg("execute_request", content, metadata={"cellId": current["id"]})
        kc.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    client.on_cell_execute = on_cell_execute
    kc.execute = execute_with_cell_id  # type: ignore[method-assign]


SEEN_IDS = (
    "_seen = []\n"
    "get_ipython().events.register('pre_run_cell', lambda info: _seen.append(info.cell_id))"
)


def renaming_steps(log: Path) -> tuple[nbformat.NotebookNode, list[tuple[int, str | None]]]:
    nb = make_notebook(SEEN_IDS, task_cell("first", "", "return 1", log), "%dag plan", "print(_seen[-1])")
    steps = [
        (0, None),  # %load_ext dagnb
        (1, None),  # record the cell id the kernel sees for each cell
        (2, None),  # %%task def first
        (3, None),  # %dag plan
        (2, task_cell("second", "", "return 2", log)),  # the same cell, function renamed
        (3, None),  # %dag plan
        (4, None),  # print the cell id the kernel saw for this very cell
    ]
    return nb, steps


def test_nbclient_sends_no_cell_id_so_a_renamed_task_is_kept_until_dropped(env: Path) -> None:
    """Without a cell id the kernel cannot tell a rename from a new task: both stay."""
    nb, steps = renaming_steps(env / "log.txt")
    steps += [(3, "%dag drop first"), (3, "%dag plan")]
    texts = run_cells_one_by_one(nb, env, steps)
    assert texts[6] == "None\n", "nbclient now sends cell ids: update this test (and the report)"
    assert "first" in texts[3] and "second" not in texts[3]
    assert "second: ran (new)" in texts[4] and "replaces" not in texts[4]
    plan = texts[5]
    assert "first" in plan and "second" in plan, plan
    assert "dropped task `first`" in texts[7]
    assert "first" not in texts[8] and "second" in texts[8], texts[8]


def test_with_cell_ids_a_renamed_task_replaces_the_old_one(env: Path) -> None:
    """What JupyterLab does: execute requests carry ``metadata.cellId``."""
    nb, steps = renaming_steps(env / "log.txt")
    texts = run_cells_one_by_one(nb, env, steps, send_cell_ids=True)
    assert texts[6] == f"{nb.cells[4].id}\n", texts[6]
    assert "second: ran (new) · replaces `first`" in texts[4], texts[4]
    plan = texts[5]
    assert "second" in plan and "first" not in plan, plan


# ------------------------------------------------------------------ helpers edited, then a restart


def test_restart_after_editing_a_helpers_default_runs_nothing(env: Path) -> None:
    """Edit a notebook helper's default and rerun the task; a restarted kernel then runs nothing."""
    log = env / "log.txt"
    nb = make_notebook(
        "def scale(v, k=1):\n    return v * k",
        task_cell("scaled", "n=3", "return scale(n)", log),
        "print(scaled)",
    )
    texts = run_cells_one_by_one(
        nb, env, [(0, None), (1, None), (2, None), (1, "def scale(v, k=2):\n    return v * k"), (2, None), (3, None)]
    )
    assert texts[4] == "scaled: ran (helper scale changed)\n", texts[4]
    assert texts[5] == "6\n"
    assert log_lines(env) == ["scaled", "scaled"]

    restarted = execute(nb, env)  # the saved notebook: the helper now says k=2
    assert statuses(restarted) == {"scaled": "cached"}, "the restarted kernel computed another key"
    assert stdout_of(restarted.cells[3]) == "6\n"
    assert log_lines(env) == ["scaled", "scaled"]


# ------------------------------------------------------------------ widgets

WIDGET = "application/vnd.jupyter.widget-view+json"


def _widget_state(nb: nbformat.NotebookNode, model_id: str) -> dict[str, Any]:
    return nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"][model_id]["state"]


def _descendant_html(nb: nbformat.NotebookNode, model_id: str) -> str:
    """Every HTML value in the widget tree under ``model_id``, as saved by nbclient."""
    state = _widget_state(nb, model_id)
    found = [state.get("value", "")] if isinstance(state.get("value"), str) else []
    for child in state.get("children", []):
        found.append(_descendant_html(nb, child.removeprefix("IPY_MODEL_")))
    return "".join(found)


def test_the_dag_view_is_a_widget_with_fallbacks_and_follows_a_later_run(env: Path) -> None:
    log = env / "log.txt"
    nb = execute(make_notebook(
        task_cell("a", "", "return 1", log),
        task_cell("b", "a", "return a + 1", log).replace("%%task", "%%task --no-run"),
        "%dag",
        "%dag run",
        task_cell("c", "b", "return b * 2", log),
        "%%task --no-run\ndef d(c):\n    return c",
    ), env)
    view = nb.cells[3].outputs[0]
    assert view["output_type"] == "execute_result"
    assert view["data"]["text/plain"].startswith("dag: 2 tasks: 1 pending, 1 done")
    assert view["data"]["text/html"].startswith('<div class="dagnb-static">')
    assert 'data-task="b" data-status="pending"' in view["data"]["text/html"]
    assert view["metadata"]["dagnb"]["statuses"] == {"a": "done", "b": "pending"}
    # The widget's saved state is its last state: the run in the next cell reached it live.
    saved = _descendant_html(nb, view["data"][WIDGET]["model_id"])
    assert 'data-task="b" data-status="done"' in saved
    assert 'data-task="c" data-status="done"' in saved and 'data-task="d" data-status="pending"' in saved

    run_cell = nb.cells[4].outputs
    # A run over before its progress bar was due (half a second) left no bar, not even a hidden one.
    assert [WIDGET in o.get("data", {}) for o in run_cell] == [False]
    assert run_cell[0]["data"]["text/plain"].startswith("run: 1 ran, 1 cached")
    # A task cell that runs only itself shows no progress bar.
    assert [WIDGET in o.get("data", {}) for o in nb.cells[5].outputs] == [False]
    assert log_lines(env) == ["a", "b", "c"]


# ------------------------------------------------------------------ parallel


def test_a_processes_run_in_a_real_kernel_sends_notebook_functions_to_workers(env: Path) -> None:
    log = env / "log.txt"
    nb = execute(make_notebook(
        "def helper(x):\n    return x + 1",
        task_cell("a", "", "print('a prints')\nreturn helper(1)", log).replace("%%task", "%%task --no-run"),
        task_cell("b", "", "return 10", log).replace("%%task", "%%task --no-run"),
        task_cell("c", "a, b", "return a + b", log).replace("%%task", "%%task --no-run"),
        "%dag run --backend processes --jobs 2",
        "c",
    ), env)
    run_cell = nb.cells[5]
    assert "a prints" in stdout_of(run_cell), "a worker's print is shown in the cell that ran it"
    assert text_of(nb.cells[6]).strip() == "12"
    assert sorted(log_lines(env)) == ["a", "b", "c"]
    meta = next(o["metadata"]["dagnb"] for o in run_cell.outputs if o.get("metadata", {}).get("dagnb"))
    assert meta["statuses"] == {"a": "done", "b": "done", "c": "done"}


def test_task_options_retries_and_timeout_in_a_real_kernel(env: Path) -> None:
    counter = env / "attempts.txt"
    flaky = (
        f"%%task --retries 2\ndef flaky(path={str(counter)!r}):\n"
        "    import os\n"
        "    n = int(open(path).read()) + 1 if os.path.exists(path) else 1\n"
        "    open(path, 'w').write(str(n))\n"
        "    if n < 3:\n"
        "        raise RuntimeError(f'attempt {n}')\n"
        "    return n"
    )
    slow = "%%task --timeout 0.5\ndef slow():\n    import time\n    time.sleep(5)\n    return 1"
    nb = execute(make_notebook(flaky, "flaky", slow, "print('after')"), env, allow_errors=True)
    assert text_of(nb.cells[2]).strip() == "3"
    assert counter.read_text() == "3"
    [error] = [o for o in nb.cells[3].outputs if o["output_type"] == "error"]
    assert error["ename"] == "TaskFailed"
    assert error["evalue"].startswith("Task `slow` did not finish within its timeout of 0.5 s.")
    assert stdout_of(nb.cells[4]) == "after\n"


def test_an_async_task_cell_in_a_real_kernel(env: Path) -> None:
    nb = execute(make_notebook(
        "import asyncio",
        "%%task\nasync def fetched():\n    await asyncio.sleep(0.1)\n    return 41",
        "fetched + 1",
    ), env)
    assert text_of(nb.cells[2]).strip() == "fetched: ran (new)"
    assert text_of(nb.cells[3]).strip() == "42"


def test_an_untracked_read_is_said_in_the_cell_that_defines_the_task_once(env: Path) -> None:
    log = env / "log.txt"
    stamp = task_cell("stamp", "", "import time\nreturn time.time()", log)  # `time.time()` is line 6 of the cell
    nb = execute(make_notebook(stamp, stamp), env)

    def stderr_of(cell: Any) -> str:
        return "".join(o["text"] for o in cell.outputs if o["output_type"] == "stream" and o["name"] == "stderr")

    said = stderr_of(nb.cells[1])
    assert said.count("UntrackedWarning") == 1, said
    assert "UntrackedWarning: Task `stamp` reads what its key does not cover: the clock (`time.time()` line 6)." in said
    # it points at the user's line (line 5 of the function's code: the `%%task` line is not compiled), not at dagnb
    assert said.startswith(f"{said.split(':')[0]}:5: UntrackedWarning") and said.endswith("\n  return time.time()\n")
    assert "dagnb" not in said.split(":")[0]
    assert stderr_of(nb.cells[2]) == ""
    assert statuses(nb) == {"stamp": "cached"}
    assert log_lines(env) == ["stamp"]
