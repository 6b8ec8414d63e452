"""The ``%%task`` line in a real IPython shell takes every option of ``TaskOptions``, and refuses
what ``dagnb check`` refuses in the same words (both read the line with one parser)."""

from __future__ import annotations

from typing import Any

import pytest

import dagnb
from dagnb.ci.check import check_source
from dagnb.errors import TaskDefinitionError
from tests.kernel.test_magics import executions, fails, ip, ok  # noqa: F401 - `ip` is a fixture
from tests.unit.test_options import SAMPLES

__all__ = ["ip"]

BODY = "def f(x):\n    with open(LOG, 'a') as log:\n        log.write('f ')\n    return x\n"


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_magic_takes_every_option(ip: Any, name: str) -> None:
    value, line = SAMPLES[name]
    ok(ip, "x = [1, 2]")
    ok(ip, f"%%task --no-run {line}\n{BODY}")
    assert getattr(dagnb.current().tasks.get("f"), name) == value
    assert executions(ip) == []  # --no-run, whatever else the line says


@pytest.mark.parametrize("line", ["--fast", "--retries", "--retries two", "--no-run --timeout soon", "--save 'out.csv"])
def test_check_refuses_a_task_line_with_the_message_of_the_magic(ip: Any, line: str) -> None:
    ok(ip, "x = 1")
    said = fails(ip, f"%%task {line}\n{BODY}")
    problems = check_source([("code", "x = 1"), ("code", f"%%task {line}\n{BODY}")]).problems
    assert [p.message for p in problems] == [said]
    assert "f" not in dagnb.current().tasks and executions(ip) == []


def test_an_unknown_option_is_named_with_every_option_the_line_takes(ip: Any) -> None:
    assert fails(ip, f"%%task --fast\n{BODY}") == (
        "`%%task` has no option `--fast`; it takes `--no-run`, `--volatile`, `--retries N`, `--timeout SECONDS`, "
        "`--save PATH`, `--when EXPR` and `--map PARAM`. `%%task --help` says what each does."
    )


def test_check_refuses_an_option_value_with_the_message_of_the_magic(ip: Any) -> None:
    ok(ip, "x = 1")
    said = fails(ip, f"%%task --map y\n{BODY}", TaskDefinitionError)
    assert said.startswith("Task `f`: `--map y` names no parameter of the task"), said
    problems = check_source([("code", "x = 1"), ("code", f"%%task --map y\n{BODY}")]).problems
    assert [p.message for p in problems] == [said]
