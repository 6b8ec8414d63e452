"""``%%task`` and ``%dag`` in a real IPython shell.

Executions are counted through a log file that each task body appends to;
outputs are read with IPython's own ``capture_output``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import pytest
from IPython.testing import globalipapp
from IPython.utils.capture import capture_output

import dagnb
from dagnb import session
from dagnb.errors import DagnbError, TaskFailed
from dagnb.notebook import magics


@pytest.fixture()
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A shell with dagnb freshly loaded, a cold cache and a log file at ``LOG``."""
    globalipapp.start_ipython()  # once per process; later calls return None
    shell = globalipapp.get_ipython()
    monkeypatch.setenv("DAGNB_CACHE_DIR", str(tmp_path / "cache"))
    magics.unload(shell)
    shell.extension_manager.loaded.discard("dagnb")
    session.set_current(None)
    shell.reset(new_session=False)
    shell.user_ns["LOG"] = str(tmp_path / "log.txt")
    result = shell.run_cell("%load_ext dagnb")
    assert result.success
    yield shell
    magics.unload(shell)
    shell.extension_manager.loaded.discard("dagnb")
    session.set_current(None)


def run(ip: Any, source: str, cell_id: str | None = None) -> tuple[Any, Any]:
    """Run a cell; return (ExecutionResult, captured outputs)."""
    with capture_output() as out:
        result = ip.run_cell(source, cell_id=cell_id)
    return result, out


def ok(ip: Any, source: str, cell_id: str | None = None) -> str:
    """Run a cell that must succeed; return its displayed text and stdout."""
    result, out = run(ip, source, cell_id)
    assert result.error_in_exec is None and result.error_before_exec is None, result
    if result.result is not None:  # a returned object: its text, not the Out[] echo
        bundle = result.result._repr_mimebundle_()
        return (bundle[0] if isinstance(bundle, tuple) else bundle)["text/plain"]  # views add metadata
    shown = [o.data.get("text/plain", "") for o in out.outputs]
    return "\n".join(part.strip() for part in [out.stdout, *shown] if part.strip())


def fails(ip: Any, source: str, kind: type[BaseException] = DagnbError) -> str:
    """Run a cell that must fail with ``kind``; return the error message."""
    result, _ = run(ip, source)
    error = result.error_in_exec or result.error_before_exec
    assert isinstance(error, kind), f"expected {kind.__name__}, got {error!r}"
    return str(error)


def executions(ip: Any) -> list[str]:
    path = Path(ip.user_ns["LOG"])
    return path.read_text().split() if path.exists() else []


def task(name: str, params: str = "", body: str = "return 1") -> str:
    """A ``%%task`` cell whose function logs its name, then runs ``body``."""
    return (
        f"%%task\ndef {name}({params}):\n"
        f"    open(LOG, 'a').write('{name}\\n')\n"
        f"    {body}\n"
    )


def chain(ip: Any) -> None:
    """raw -> clean -> model"""
    ok(ip, task("raw", body="return [1, 2, 3]"))
    ok(ip, task("clean", "raw", body="return [x * 2 for x in raw]"))
    ok(ip, task("model", "clean", body="return sum(clean)"))


def test_load_ext_registers_magics_and_prints_nothing(ip: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "task" in ip.magics_manager.magics["cell"]
    assert "dag" in ip.magics_manager.magics["line"]
    magics.unload(ip)
    ip.extension_manager.loaded.discard("dagnb")
    monkeypatch.setenv("DAGNB_NOTEBOOK", str(tmp_path / "analysis.ipynb"))  # the notebook is known
    assert ok(ip, "%load_ext dagnb") == ""
    assert dagnb.current().scope.describe() == "notebook `analysis.ipynb`"
    assert ok(ip, "%dag history") == "history of the notebook `analysis.ipynb`: no runs recorded yet"


def test_plain_ipython_keeps_the_folders_history_and_says_so_once(ip: Any) -> None:
    magics.unload(ip)
    ip.extension_manager.loaded.discard("dagnb")
    assert ok(ip, "%load_ext dagnb") == (
        f"dagnb does not know which notebook this kernel runs (plain IPython, a script, or a runner that does not "
        f"pass the notebook's path), so it keeps task heads, run history and explanations for the folder "
        f"`{Path.cwd().name}`, shared by every session there that does not know its notebook either. Cached values "
        f"are shared by content all the same. Set `DAGNB_NOTEBOOK` to the notebook's path to keep them apart.")
    assert ok(ip, task("raw", body="return [1, 2, 3]")) == "raw: ran (new)", "said once"
    assert ok(ip, "%dag history").splitlines()[0] == f"history of the folder `{Path.cwd().name}` (newest first):"


def test_task_cell_binds_value_and_says_it_ran(ip: Any) -> None:
    assert ok(ip, task("raw", body="return [1, 2, 3]")) == "raw: ran (new)"
    assert ip.user_ns["raw"] == [1, 2, 3]
    assert executions(ip) == ["raw"]


def test_rerunning_an_unchanged_cell_is_a_cache_hit(ip: Any) -> None:
    ok(ip, task("raw", body="return [1, 2, 3]"))
    assert ok(ip, task("raw", body="return [1, 2, 3]")) == "raw: cached"
    assert executions(ip) == ["raw"]


def test_formatting_and_comment_edits_do_not_rerun(ip: Any) -> None:
    ok(ip, task("raw", body="return [1, 2, 3]"))
    edited = task("raw", body="return [1,2,3]  # same list").replace("def raw", "\ndef raw")
    assert ok(ip, edited) == "raw: cached"
    assert executions(ip) == ["raw"]


def test_code_edit_reruns_and_lists_downstream_as_stale(ip: Any) -> None:
    chain(ip)
    text = ok(ip, task("clean", "raw", body="return [x * 3 for x in raw]"))
    assert text == "clean: ran (code changed) · 1 downstream now stale: model"
    assert executions(ip) == ["raw", "clean", "model", "clean"]
    assert ip.user_ns["model"] == 12  # lazy: still the old value


def test_edit_with_identical_output_leaves_downstream_fresh(ip: Any) -> None:
    chain(ip)
    text = ok(ip, task("clean", "raw", body="return [x + x for x in raw]"))
    assert text == "clean: ran (code changed)"
    assert "stale" not in ok(ip, "%dag plan model")


def test_auto_mode_reruns_downstream_at_once(ip: Any) -> None:
    chain(ip)
    assert ok(ip, "%dag mode auto") == "mode: auto"
    text = ok(ip, task("clean", "raw", body="return [x * 3 for x in raw]"))
    assert text == "clean: ran (code changed) · downstream ran: model"
    assert ip.user_ns["model"] == 18


def test_no_run_only_defines(ip: Any) -> None:
    text = ok(ip, "%%task --no-run\ndef raw():\n    open(LOG, 'a').write('raw\\n')\n    return 1\n")
    assert text == "raw: defined (not run) · stale: raw"
    assert executions(ip) == []
    assert "raw" not in ip.user_ns


def test_upstream_runs_first_when_stale(ip: Any) -> None:
    ok(ip, "%%task --no-run\n" + task("raw", body="return 5").split("\n", 1)[1])
    assert ok(ip, task("double", "raw", body="return raw * 2")) == "double: ran (new) · upstream ran: raw"
    assert ip.user_ns["double"] == 10


def test_helper_and_global_edits_make_the_task_stale(ip: Any) -> None:
    ok(ip, "K = 2\ndef scale(x):\n    return x * K")
    ok(ip, task("scaled", body="return scale(10)"))
    ok(ip, "K = 3")
    assert ok(ip, "%dag why scaled") == "scaled is stale: helper scale changed."
    ok(ip, "K = 2")
    assert ok(ip, "%dag why scaled") == "scaled is up to date: its key is unchanged."
    ok(ip, "def scale(x):\n    return x * K + 0")
    assert ok(ip, "%dag why scaled") == "scaled is stale: helper scale changed."


def test_external_input_changes_are_named(ip: Any) -> None:
    ok(ip, "threshold = 1")
    ok(ip, task("above", "threshold", body="return threshold + 1"))
    ok(ip, "threshold = 2")
    assert ok(ip, "%dag why above") == "above is stale: input threshold changed."


def test_prints_are_replayed_on_a_cache_hit(ip: Any) -> None:
    cell = "%%task\ndef noisy():\n    print('hello from noisy')\n    return 1\n"
    assert ok(ip, cell) == "hello from noisy\nnoisy: ran (new)"
    assert ok(ip, cell) == "hello from noisy\nnoisy: cached"


def test_displays_are_replayed_on_a_cache_hit(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ip.display_formatter, "active_types", ["text/plain", "text/html"])  # as in a kernel
    cell = "%%task\ndef shown():\n    from IPython.display import display, HTML\n    display(HTML('<b>hi</b>'))\n    return 1\n"
    _, first = run(ip, cell)
    _, second = run(ip, cell)
    for out in (first, second):
        assert out.outputs[0].data["text/html"] == "<b>hi</b>"
        assert out.outputs[-1].data["text/plain"].startswith("shown:")


def test_restart_loads_from_disk_and_runs_nothing(ip: Any) -> None:
    chain(ip)
    magics.unload(ip)
    ip.extension_manager.loaded.discard("dagnb")
    session.set_current(None)
    for name in ("raw", "clean", "model"):
        del ip.user_ns[name]
    ok(ip, "%load_ext dagnb")
    chain(ip)
    assert executions(ip) == ["raw", "clean", "model"]
    assert ip.user_ns["model"] == 12


def test_dag_run_returns_a_report_and_keeps_last_run(ip: Any) -> None:
    chain(ip)
    ok(ip, task("clean", "raw", body="return [x * 3 for x in raw]"))
    result, _ = run(ip, "%dag run")
    report = result.result
    assert report.executed == ["model"] and report.cached == ["raw", "clean"]
    assert dagnb.current().last_run.executed == ["model"]
    assert ip.user_ns["model"] == 18


def test_dag_run_force_and_targets(ip: Any) -> None:
    chain(ip)
    result, _ = run(ip, "%dag run clean --force raw")
    assert result.result.executed == ["raw"] and result.result.cached == ["clean"]
    assert executions(ip)[-1] == "raw"


def test_dag_plan_lists_what_would_run(ip: Any) -> None:
    chain(ip)
    ok(ip, task("raw", body="return [1, 2, 4]").replace("%%task", "%%task --no-run"))
    assert ok(ip, "%dag plan") == (
        "plan: 3 to run, 0 cached\n"
        "  raw    run  (code changed)\n"
        "  clean  run if needed  (upstream raw reruns first)\n"
        "  model  run if needed  (upstream clean reruns first)"
    )


def test_dag_drop_removes_task_and_variable(ip: Any) -> None:
    chain(ip)
    assert "dropped task `model`" in ok(ip, "%dag drop model")
    assert "model" not in ip.user_ns
    assert "no task `model`" in fails(ip, "%dag why model")


def test_dag_cache_info_and_clear(ip: Any, tmp_path: Path) -> None:
    chain(ip)
    assert "3 keys, 3 values" in ok(ip, "%dag cache info")
    assert ok(ip, "%dag cache clear raw") == "removed 1 cache entries of `raw`"
    assert "2 keys" in ok(ip, "%dag cache")
    assert "cache directory:" in ok(ip, f"%dag cache --dir {tmp_path / 'other'}")
    assert "0 keys" in ok(ip, "%dag cache info")


def test_renaming_a_function_in_its_cell_replaces_the_task(ip: Any) -> None:
    ok(ip, task("first", body="return 1"), cell_id="cell-a")
    text = ok(ip, task("second", body="return 1"), cell_id="cell-a")
    assert text == "second: ran (new) · replaces `first`"
    assert "first" not in ip.user_ns
    assert "first" not in ok(ip, "%dag plan")


def test_same_name_in_two_cells_is_an_error(ip: Any) -> None:
    ok(ip, task("raw"), cell_id="cell-a")
    _, _ = run(ip, task("raw"), cell_id="cell-b")
    result, _ = run(ip, task("raw"), cell_id="cell-b")
    assert str(result.error_in_exec) == (
        "Task `raw` is already defined in another cell. Rename one of the two functions, "
        "or run `%dag drop raw` to remove the other definition first."
    )


# ------------------------------------------------------------------ errors


def test_unresolved_parameter_names_task_param_and_close_match(ip: Any) -> None:
    ok(ip, "features = [1, 2]")
    assert fails(ip, task("model", "featurs")) == (
        "Task `model` has a parameter `featurs` that is neither a task, a default, nor a notebook "
        "variable. Did you mean `features`? Define it in a cell above, give it a default, or add a "
        "`%%task def featurs(...)`."
    )


def test_syntax_error_keeps_the_last_good_definition_and_value(ip: Any) -> None:
    chain(ip)
    assert fails(ip, "%%task\ndef clean(raw:\n    return 1\n") == (
        "The `%%task` cell has a syntax error at line 2: '(' was never closed. "
        "Fix the code; the previous definition of the task is kept until then."
    )
    assert ip.user_ns["clean"] == [2, 4, 6]
    assert "0 to run" in ok(ip, "%dag plan")


def test_bad_redefinition_keeps_the_last_good_definition(ip: Any) -> None:
    chain(ip)
    fails(ip, task("clean", "raww"))
    assert ok(ip, "%dag why clean") == "clean is up to date: its key is unchanged."


def test_cell_without_a_function_is_refused(ip: Any) -> None:
    assert fails(ip, "%%task\nx = 1\n") == (
        "A `%%task` cell holds exactly one function definition (imports may precede it); found: "
        "an assignment (line 2). Put other code in an ordinary cell, and one `def` per `%%task` cell."
    )


def test_cell_imports_become_notebook_globals(ip: Any) -> None:
    ok(ip, "%%task\nimport math\ndef root():\n    return math.sqrt(16)\n")
    assert ip.user_ns["root"] == 4.0 and ip.user_ns["math"].__name__ == "math"


def test_self_dependency_and_cycles_are_refused(ip: Any) -> None:
    assert "depends on itself" in fails(ip, task("loop", "loop"))
    ok(ip, task("a", body="return 1"))
    ok(ip, task("b", "a", body="return a"))
    assert fails(ip, task("a", "b", body="return b")) == (
        "Tasks form a cycle: a -> b -> a. A task cannot depend on its own output; "
        "rename a parameter to break the loop."
    )
    assert ip.user_ns["b"] == 1


def test_failing_task_shows_user_traceback_only(ip: Any) -> None:
    ok(ip, task("raw", body="return [1, 2]"))
    result, _ = run(ip, task("broken", "raw", body="return raw[5]"))
    error = result.error_in_exec
    assert isinstance(error, dagnb.TaskFailed)
    assert str(error) == (
        "Task `broken` raised IndexError: list index out of range. Fix the task (or its inputs) "
        "and run it again; the values of other tasks are kept."
    )
    rendered = "\n".join(error._render_traceback_())
    assert "raw[5]" in rendered and "IndexError" in rendered
    assert "dagnb/" not in rendered and "api.py" not in rendered
    assert ip.user_ns["raw"] == [1, 2]
    assert dagnb.current().last_run.failed == ["broken"]


def test_dag_errors_are_usage_errors(ip: Any) -> None:
    chain(ip)
    assert fails(ip, "%dag why modle") == (
        "There is no task `modle`. Did you mean `model`? `%dag plan` lists the tasks defined so far."
    )
    assert fails(ip, "%dag frobnicate").startswith("%dag: argument COMMAND: invalid choice: 'frobnicate'")
    assert fails(ip, "%dag run --bogus") == (
        "%dag: unrecognized arguments: --bogus. `%dag --help` lists the options."
    )
    assert "no task `nope`" in fails(ip, "%dag run nope")
    assert "no task `nope`" in fails(ip, "%dag cache clear nope")


def test_help_prints_and_does_not_exit(ip: Any) -> None:
    text = ok(ip, "%dag --help")
    for command in ("run", "plan", "why", "drop", "cache", "mode"):
        assert f"    {command}" in text
    assert "--force TASK" in ok(ip, "%dag run --help")
    assert "--no-run" in ok(ip, "%%task --help\ndef f():\n    pass\n")


@pytest.mark.parametrize("line", ["%%task --help", "%%task -h", "%%task --no-run --help\n"])
def test_task_help_alone_in_a_cell_shows_the_help(ip: Any, line: str) -> None:
    """Every `%%task` option error says to run `%%task --help`: alone in a cell, it must work."""
    text = ok(ip, line)
    assert text.startswith("usage: %%task [-h] [--no-run]") and "--volatile" in text, text
    message = fails(ip, "%%task --bogus\ndef f():\n    pass\n")
    assert message == (
        "`%%task` has no option `--bogus`; it takes `--no-run`, `--volatile`, `--retries N`, `--timeout SECONDS`, "
        "`--save PATH`, `--when EXPR` and `--map PARAM`. `%%task --help` says what each does."
    )


def test_a_failed_dag_run_shows_its_report_once(ip: Any) -> None:
    ok(ip, "%%task --no-run\ndef a():\n    return 1\n")
    ok(ip, "%%task --no-run\ndef b(a):\n    return a / 0\n")
    result, out = run(ip, "%dag run")
    assert isinstance(result.error_in_exec, TaskFailed)
    reports = [o.data["text/plain"] for o in out.outputs if o.data.get("text/plain", "").startswith("run:")]
    assert reports == ["run: 1 ran, 0 cached, 1 failed\n  a: ran (new)\n  b: failed (new)"]



# ------------------------------------------------------------------- views
# A terminal shell has no kernel, so views are text (the widgets' fallbacks).


def test_dag_shows_each_task_with_its_status_upstream_and_why(ip: Any) -> None:
    chain(ip)
    ok(ip, "%%task --no-run\ndef report(model, clean):\n    return model\n")
    ok(ip, task("clean", "raw", body="return [x * 3 for x in raw]"))
    assert ok(ip, "%dag") == (
        "dag: 4 tasks: 1 pending, 1 stale, 2 done\n"
        "  raw     done\n"
        "  clean   done       <- raw\n"
        "  model   stale      <- clean  (upstream clean changed)\n"
        "  report  pending    <- model, clean  (upstream model reruns first)"
    )
    ok(ip, "%dag run")
    assert ok(ip, "%dag show").splitlines()[0] == "dag: 4 tasks: 4 done"


def test_dag_marks_an_edited_task_stale_and_a_failed_one_failed(ip: Any) -> None:
    chain(ip)
    ip.run_cell(task("model", "clean", body="raise ValueError('no')"))
    ok(ip, task("raw", body="return [1, 2]"))
    lines = ok(ip, "%dag").splitlines()
    assert lines[1:] == [
        "  raw    done",
        "  clean  stale      <- raw  (upstream raw changed)",
        "  model  failed     <- clean",
    ]


def test_trace_and_costs_before_and_after_a_run(ip: Any) -> None:
    assert ok(ip, "%dag trace") == "trace: no run yet (%dag run records one)"
    assert ok(ip, "%dag costs") == "costs: no tasks yet"
    chain(ip)
    ok(ip, "%dag run --force clean")
    trace = re.sub(r"\[\d+\] ", "[n] ", ok(ip, "%dag trace"))
    assert trace == (
        "trace: 4 runs since the kernel started: 4 ran, 2 already in memory (timings are in the live view)\n"
        "  run 1 · [n] %%task raw: raw ran\n"
        "  run 2 · [n] %%task clean: clean ran\n"  # a cell asks for its own task: upstream in memory is not a run
        "  run 3 · [n] %%task model: model ran\n"
        "  run 4 · [n] %dag run --force clean: clean ran; raw, model already in memory"
    ), "every cell's run, not only the last one's; what earlier cells ran is not called cached"
    assert re.sub(r"\[\d+\] ", "", ok(ip, "%dag trace --run 2")) == (
        "trace of run 2 · %%task clean: 1 ran (timings are in the live view)\n"
        "  clean  ran"
    )
    assert fails(ip, "%dag trace --run 9") == (
        "There is no run 9 in this session's trace: it has runs 1 to 4 (since the kernel started). "
        "`%dag trace` shows them all."
    )
    assert ok(ip, "%dag costs").splitlines()[1:] == [
        "  raw    done       cached value, 0 hits",
        "  clean  done       cached value, 0 hits",
        "  model  done       cached value, 0 hits",
    ]


def test_static_show_is_html_with_every_number_maskable(ip: Any) -> None:
    chain(ip)
    result, _ = run(ip, "%dag show --static")
    bundle, metadata = result.result._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"} and metadata == {"dagnb": {"view": "static"}}
    html = bundle["text/html"]
    for part in ('<svg class="dagnb-graph"', "dagnb-costs", 'class="dagnb-gantt"', "critical path"):
        assert part in html
    rules = dict(SANITIZE.findall((ROOT / "extension" / "nbval" / "sanitize.cfg").read_text()))
    masked = re.sub(r"<style>.*?</style>", "", html)
    for name in ("dagnb-numbers", "dagnb-gantt"):
        masked = re.sub(rules[name], "", masked)
    assert not re.search(r"\d+(\.\d+)? ?(s|ms|µs|B|KiB|MiB)\b", re.sub(r"<[^>]*>", " ", masked))


SANITIZE = re.compile(r"^\[([\w-]+)\]\n(?:#.*\n)*regex: (.*)$", re.M)
ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_view_commands(ip: Any) -> None:
    text = ok(ip, "%dag --help")
    for command in ("show", "trace", "costs"):
        assert f"    {command}" in text
    assert "--static" in ok(ip, "%dag show --help")


def test_cache_prune_keeps_what_the_session_holds(ip: Any) -> None:
    chain(ip)
    ok(ip, task("model", "clean", body="return max(clean)"))  # the old value of `model` is no longer held
    assert ok(ip, "%dag cache prune --max-size 0").startswith("evicted 1 values (")
    assert ok(ip, "%dag run").splitlines()[0] == "run: 0 ran, 3 cached"
    assert fails(ip, "%dag cache prune") == "`%dag cache prune` needs `--max-size SIZE`, for example `--max-size 2GB`."


def test_check_mutation_names_the_task_that_changed_its_input(ip: Any) -> None:
    ok(ip, task("raw", body="return [3, None, 1]"))
    assert ok(ip, "%dag config --check-mutation") == "check mutation: on"
    message = fails(ip, task("clean", "raw", body="return raw.remove(None) or sorted(raw)"), TaskFailed)
    assert message.startswith("Task `clean` changed its input `raw` in place (for example `raw.dropna(inplace=True)`")
    assert ip.user_ns["raw"] == [3, None, 1], "the damaged value was put back from the disk cache"
    assert ok(ip, "%dag config --no-check-mutation") == "check mutation: off"


def test_cache_verify_reports_an_intact_cache(ip: Any) -> None:
    chain(ip)
    assert ok(ip, "%dag cache verify") == "verified 3 entries and 3 values: all intact and signed with your secret"


def test_history_lists_runs_diffs_them_and_restores_a_past_run(ip: Any) -> None:
    chain(ip)  # three runs, one per task cell
    ok(ip, task("clean", "raw", body="return [x * 3 for x in raw]"))  # run 4: clean changes, model is now stale
    ok(ip, "%dag run")  # run 5: model reruns
    text = ok(ip, "%dag history 2")
    assert [line.split()[:2] for line in text.splitlines()[1:]] == [["run", "5"], ["run", "4"]]
    assert ok(ip, "%dag history --diff 3 5") == (
        "from run 3 to run 5: 2 tasks changed\n"
        "  clean  key changed, value changed\n"
        "  model  key changed, value changed"
    )
    assert ip.user_ns["model"] == 18
    assert ok(ip, "%dag run --as-of 3") == "values of run 3:\n  raw    restored\n  clean  restored\n  model  restored"
    assert (ip.user_ns["clean"], ip.user_ns["model"]) == ([2, 4, 6], 12)
    assert executions(ip) == ["raw", "clean", "model", "clean", "model"], "restoring runs nothing"
    assert fails(ip, "%dag run --as-of 99").startswith(
        f"There is no run 99 in the history of the folder `{Path.cwd().name}`.")


def test_when_skips_a_task_whose_condition_is_false(ip: Any) -> None:
    ok(ip, task("raw", body="return [1, 2, 3]"))
    text = ok(ip, '%%task --when "len(raw) > 5"\ndef big(raw):\n    return raw\n')
    assert text == "big: skipped (condition `len(raw) > 5` is false)"
    assert "big" not in ip.user_ns
    assert fails(ip, '%%task --when "len(rw) > 5"\ndef big(raw):\n    return raw\n').startswith(
        "Task `big`: `--when len(rw) > 5` uses `rw`, which is not one of its parameters (`raw`). Did you mean `raw`?"
    )


def async_task(name: str, params: str = "", seconds: float = 0.2) -> str:
    """An async ``%%task --no-run`` cell that logs its name, thread and event loop, prints, waits, returns 1."""
    return (
        f"%%task --no-run\nasync def {name}({params}):\n"
        "    import asyncio, threading\n"
        f"    open(LOG, 'a').write(f'{name}:{{threading.current_thread().name}}:{{id(asyncio.get_running_loop())}}\\n')\n"
        f"    print('{name} starts')\n"
        f"    await asyncio.sleep({seconds})\n"
        f"    print('{name} ends')\n"
        "    return 1\n"
    )


def async_runs(ip: Any) -> dict[str, tuple[str, int]]:
    """For each async task that ran: (its thread's name, the id of its event loop)."""
    found = {}
    for line in filter(lambda line: ":" in line, executions(ip)):
        name, thread, loop = line.split(":")
        found[name] = (thread, int(loop))
    return found


def ipython_loop(ip: Any) -> int:
    ok(ip, "from IPython.core.async_helpers import get_asyncio_loop as _get_loop\n_loop_id = id(_get_loop())")
    return int(ip.user_ns["_loop_id"])


def test_async_tasks_run_together_on_ipythons_event_loop(ip: Any) -> None:
    ok(ip, async_task("first_wait"))
    ok(ip, async_task("second_wait"))
    ok(ip, task("both", "first_wait, second_wait", body="return first_wait + second_wait").replace(
        "%%task", "%%task --no-run"))
    assert ok(ip, "%dag run").splitlines()[0] == "run: 3 ran, 0 cached"
    main = ("MainThread", ipython_loop(ip))
    assert async_runs(ip) == {"first_wait": main, "second_wait": main}
    spans = {s.task: s for s in dagnb.current().trace.spans}
    first, second = spans["first_wait"], spans["second_wait"]
    assert max(first.start, second.start) < min(first.end, second.end), "the two awaits overlapped"
    assert ip.user_ns["both"] == 2


def test_an_async_task_cell_replays_its_prints_when_cached(ip: Any) -> None:
    cell = async_task("fetched").replace("--no-run", "")
    assert ok(ip, cell) == "fetched starts\nfetched ends\nfetched: ran (new)"
    assert ok(ip, cell) == "fetched starts\nfetched ends\nfetched: cached"
    assert len(executions(ip)) == 1


def test_with_autoawait_off_async_tasks_run_on_dagnbs_own_loop(ip: Any) -> None:
    ok(ip, "%autoawait off")
    try:
        ok(ip, async_task("fetched"))
        assert "await" not in ip.transform_cell("%dag run"), "no top-level await when autoawait is off"
        ok(ip, "%dag run")
    finally:
        ok(ip, "%autoawait on")
    [(thread, loop)] = async_runs(ip).values()
    assert thread == "dagnb-async" and loop != ipython_loop(ip)


def test_only_cells_that_run_async_tasks_are_awaited(ip: Any) -> None:
    ok(ip, task("raw"))
    assert ip.transform_cell("%dag run") == "get_ipython().run_line_magic('dag', 'run')\n", "a sync graph: unchanged"
    assert ip.transform_cell("%%task\nasync def f():\n    return 1\n").startswith("await ")
    ok(ip, async_task("fetched"))
    assert ip.transform_cell("%dag run").startswith("await ")
    assert ip.transform_cell("%dag plan") == "get_ipython().run_line_magic('dag', 'plan')\n"


def test_an_async_task_that_raises_in_an_awaited_cell_shows_its_own_frames(ip: Any) -> None:
    ok(ip, "import asyncio")
    message = fails(ip, "%%task\nasync def boom():\n    await asyncio.sleep(0)\n    raise ValueError('no reply')\n",
                    TaskFailed)
    assert message.startswith("Task `boom` raised ValueError: no reply.")
    result, _ = run(ip, "%%task\nasync def boom():\n    await asyncio.sleep(0)\n    raise ValueError('no reply')\n")
    rendered = "\n".join(result.error_in_exec._render_traceback_())
    assert "raise ValueError('no reply')" in rendered
    assert "dagnb/" not in rendered and "api.py" not in rendered


def test_a_helper_that_calls_open_needs_no_fingerprint_of_ipythons_open(ip: Any) -> None:
    """IPython binds its own ``open`` in the notebook namespace; it is a library function, not a value."""
    ok(ip, "def note(text):\n    with open(LOG, 'a') as fh:\n        fh.write(text + '\\n')")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ok(ip, "%%task\ndef noted():\n    note('noted')\n    return 1\n") == "noted: ran (new)"
    assert executions(ip) == ["noted"]


def test_an_untracked_read_is_said_once_when_the_task_is_defined(ip: Any) -> None:
    ok(ip, "import random")
    cell = task("roll", body="return random.random()")  # line 4 of the cell: `%%task`, def, log, body
    with warnings.catch_warnings(record=True) as first:
        warnings.simplefilter("always", dagnb.errors.UntrackedWarning)
        assert ok(ip, cell) == "roll: ran (new)"
    told = [w for w in first if issubclass(w.category, dagnb.errors.UntrackedWarning)]
    assert [str(w.message) for w in told] == [
        "Task `roll` reads what its key does not cover: the global random generator (`random.random()` line 4). "
        "dagnb cannot see it change, so a cached value is reused as if the task were deterministic. To fix it: "
        "take a seed as a parameter (`def roll(seed=0)`, then `np.random.default_rng(seed)` or "
        "`random.Random(seed)`); or mark the task volatile (`%%task --volatile`, `@task(volatile=True)`) "
        "to rerun it every time."
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error", dagnb.errors.UntrackedWarning)  # the same cell again: a cache hit, nothing said
        assert ok(ip, cell) == "roll: cached"
        assert ok(ip, cell.replace("%%task", "%%task --volatile")) == "roll: ran (volatile)"
        seeded = task("roll", "seed=0", "return random.Random(seed).random()")
        assert ok(ip, seeded).startswith("roll: ran (code changed")
    assert executions(ip) == ["roll", "roll", "roll"]


def test_a_task_cell_keeps_its_docstrings_and_its_digest_ignores_them(ip: Any) -> None:
    """The cell is parsed once: compiled from that tree (docstrings kept), then fingerprinted (docstrings out)."""
    cell = '%%task\ndef documented():\n    """What it makes."""\n    def inner():\n        """Nested."""\n        return 2\n    return inner()\n'
    assert ok(ip, cell) == "documented: ran (new)"
    assert ip.user_ns["documented"] == 2
    graph = session.current()
    spec = graph.tasks.specs["documented"]
    assert spec.func.__doc__ == "What it makes."
    assert spec.func.__code__.co_consts[1].co_consts[0] == "Nested.", "the nested function keeps its own"
    bare = cell.replace('    """What it makes."""\n', "").replace('        """Nested."""\n', "")
    assert ok(ip, bare) == "documented: cached", "docstrings are not part of the code's digest"
