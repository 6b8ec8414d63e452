"""``TaskOptions`` is declared once: the decorator, the ``%%task`` parser and ``dagnb check`` derive from it.

The magic itself (in a real shell) is covered by ``tests/kernel/test_task_options.py``;
here, the parser it calls, the decorator and the static check, with no IPython.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import dagnb
from dagnb.ci.check import check_source
from dagnb.errors import CommandError, TaskDefinitionError, UnknownOption
from dagnb.options import TaskOptions, parse_task_line, task_line_parser

#: One value per option that a task `def f(x)` can take; `line` is how the `%%task` line writes it.
SAMPLES = {
    "volatile": (True, "--volatile"),
    "retries": (2, "--retries 2"),
    "timeout": (5.0, "--timeout 5"),
    "save": ("out/{name}.json", '--save "out/{name}.json"'),
    "when": ("x > 0", '--when "x > 0"'),
    "map": ("x", "--map x"),
}
README = Path(__file__).resolve().parents[2] / "README.md"
BODY = "def f(x):\n    return x\n"


def test_every_option_has_a_sample():
    assert [name for name, _ in TaskOptions.declared()] == list(SAMPLES)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_decorator_takes_every_option(name):
    value, _ = SAMPLES[name]
    graph = dagnb.Graph()
    graph.task(**{name: value})(_f())
    assert getattr(graph.tasks.get("f"), name) == value
    assert graph.tasks.get("f").options == TaskOptions(**{name: value})


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_task_line_takes_every_option(name):
    value, line = SAMPLES[name]
    assert parse_task_line(line).options == TaskOptions(**{name: value})
    assert line.split()[0] in task_line_parser().format_help()


@pytest.mark.parametrize("name", list(SAMPLES))
def test_check_takes_every_option(name):
    _, line = SAMPLES[name]
    result = check_source([("code", "x = [1, 2]"), ("code", f"%%task {line}\n{BODY}")])
    assert result.ok, [p.message for p in result.problems]
    assert result.tasks["f"].volatile is (name == "volatile")


def test_all_options_at_once_on_each_path():
    line = " ".join(text for _, text in SAMPLES.values())
    everything = TaskOptions(**{name: value for name, (value, _) in SAMPLES.items()})
    assert parse_task_line(line).options == everything
    graph = dagnb.Graph()
    graph.task(**everything.values())(_f())
    assert graph.tasks.get("f").options == everything
    assert check_source([("code", "x = [1, 2]"), ("code", f"%%task {line}\n{BODY}")]).ok


def test_an_unknown_keyword_of_the_decorator_is_named_with_the_options_it_takes():
    with pytest.raises(UnknownOption) as caught:
        dagnb.Graph().task(retry=2)
    assert str(caught.value) == (
        "`@task` has no option `retry`; it takes `volatile=`, `retries=`, `timeout=`, `save=`, `when=` and `map=`."
    )
    assert isinstance(caught.value, TypeError)  # as Python says of any unexpected keyword


def test_check_refuses_what_the_task_line_parser_refuses_in_the_same_words():
    for line in ("--fast", "--retries", "--retries two", "--timeout soon", "--save 'out.csv"):
        with pytest.raises(CommandError) as caught:
            parse_task_line(line)
        result = check_source([("code", "x = 1"), ("code", f"%%task {line}\n{BODY}")])
        assert [(p.message, p.line) for p in result.problems] == [(str(caught.value), 1)], line


def test_check_refuses_option_values_the_definition_refuses():
    """Before, `dagnb check` let these through and the kernel refused them."""
    for line, fix in (("--retries -1", "`retries` is -1"), ("--timeout 0", "`timeout` is 0.0"),
                      ("--map y", "`--map y` names no parameter")):
        result = check_source([("code", "x = 1"), ("code", f"%%task {line}\n{BODY}")])
        with pytest.raises(TaskDefinitionError) as caught:
            dagnb.Graph().task(**parse_task_line(line).options.values())(_f())
        assert fix in str(caught.value)
        assert [p.message for p in result.problems] == [str(caught.value)], line


def test_the_readme_shows_every_option_on_a_task_line():
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `%%task")]
    for name in SAMPLES:
        assert any(f"--{name}" in row.split("|")[1] for row in rows), name


def _f():
    def f(x):
        return x

    return f


def test_a_task_line_read_again_asks_the_same_and_a_bad_one_is_refused_each_time() -> None:
    first = parse_task_line("--retries 2 --no-run")
    assert parse_task_line("--retries 2 --no-run") == first and first.no_run and first.options.retries == 2
    assert parse_task_line("") == parse_task_line("  ") and not parse_task_line("").no_run
    for _ in range(2):
        with pytest.raises(CommandError, match="retries"):
            parse_task_line("--retries many")
