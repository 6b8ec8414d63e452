"""What the notebook glue asks of the engine, asked without IPython.

The ``%%task`` cell and the ``%dag`` subcommands only parse, call one engine
method and show its answer (``docs/architecture.md``). Each decision they
hand on is tested here, on a real :class:`dagnb.Graph` over a disk cache;
``tests/kernel/test_magics.py`` asserts the same texts through a shell.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from notebook_cells import DIAMOND, diamond, runs

from dagnb.errors import CommandError, UnknownTask
from dagnb.report import RunReport


def test_another_cache_directory_forgets_which_tasks_ran_before_in_the_old_one(tmp_path: Path) -> None:
    diamond(tmp_path).run()
    again = diamond(tmp_path)  # a new session on the same cache: nothing in memory
    again.task(DIAMOND[0].replace("return 2", "return 3"))
    assert again.graph.overview().statuses == {"a": "stale", "b": "stale", "c": "stale", "d": "stale"}

    store = again.graph.use_cache_dir(str(tmp_path / "other"))

    assert store is again.graph.store and store.location == str(tmp_path / "other")
    assert again.graph.scope == again.graph.store.scope  # the scope stays
    assert again.graph.overview().statuses == {"a": "pending", "b": "pending", "c": "pending", "d": "pending"}
    _, ran = again.run()
    assert ran == ["a", "b", "c", "d"]


def test_clearing_the_cache_of_a_task_that_does_not_exist_names_the_close_ones(tmp_path: Path) -> None:
    nb = diamond(tmp_path)
    nb.run()
    with pytest.raises(UnknownTask) as missing:
        nb.graph.clear_cache("aa")
    assert str(missing.value) == (
        "There is no task `aa`. Did you mean `a`? `%dag plan` lists the tasks defined so far."
    )
    assert nb.graph.store.head("a") is not None  # nothing was cleared

    assert nb.graph.clear_cache("a") == 1
    assert nb.graph.store.head("a") is None and nb.graph.store.head("b") is not None
    assert nb.graph.clear_cache() == 3


def test_a_run_the_trace_does_not_have_is_refused_naming_the_runs_it_has(tmp_path: Path) -> None:
    nb = diamond(tmp_path)
    message = (
        "There is no run 3 in this session's trace: it has {} (since the kernel started). `%dag trace` shows them all."
    )
    for known in ("no run yet", "run 1", "runs 1 to 2"):
        with pytest.raises(CommandError) as missing:
            nb.graph.timeline.trace_of(3)
        assert str(missing.value) == message.format(known)
        nb.run("a", force=["a"])
    assert nb.graph.timeline.trace_of(3).run_id == 3


def test_restoring_a_run_says_per_task_what_it_got_in_one_table(tmp_path: Path) -> None:
    nb = diamond(tmp_path)
    nb.run()
    first = nb.graph.last_history_id
    nb.task(DIAMOND[0].replace("return 2", "return 3"))
    nb.run()
    nb.graph.drop("c")

    restored = nb.graph.restore(first)

    assert restored == {"a": "restored", "b": "restored", "c": "no longer a task", "d": "restored"}
    assert nb.graph["d"] == 23
    assert restored.render_text() == (
        f"values of run {first}:\n"
        "  a  restored\n"
        "  b  restored\n"
        "  d  restored\n"
        "  c  no longer a task"  # tasks still defined first, in run order
    )
    assert restored._repr_mimebundle_()["text/plain"] == restored.render_text()


def test_the_status_a_task_shows_now_and_why_it_would_run(tmp_path: Path) -> None:
    nb = diamond(tmp_path)
    assert nb.graph.status_now("a") == ("pending", "new")
    assert nb.graph.status_now("d") == ("pending", "upstream b reruns first, upstream c reruns first")
    nb.run()
    assert nb.graph.status_now("d") == ("done", "")
    nb.task(DIAMOND[0].replace("return 2", "return 3"))
    assert nb.graph.status_now("a") == ("stale", "code changed")
    assert nb.graph.status_now("b") == ("stale", "upstream a reruns first")
    assert runs(nb.log) == ["a", "b", "c", "d"]  # saying so runs nothing


@pytest.mark.parametrize(
    ("mode", "ran", "stale"), [("lazy", ["a"], ["b", "c", "d"]), ("auto", ["a", "b", "c", "d"], [])]
)
def test_a_definition_runs_its_task_and_in_auto_mode_its_downstream_tasks(
    tmp_path: Path, mode: str, ran: list[str], stale: list[str]
) -> None:
    nb = diamond(tmp_path)
    nb.run()
    nb.graph.mode = mode
    nb.task(DIAMOND[0].replace("return 2", "return 3"))

    report = asyncio.run(nb.graph.run_defined("a"))

    assert runs(nb.log)[4:] == ran
    assert report.stale == stale
    assert report.statuses == dict.fromkeys(ran, "done")


def test_a_definition_runs_the_way_the_caller_runs_tasks(tmp_path: Path) -> None:
    nb = diamond(tmp_path)
    nb.graph.mode = "auto"
    asked: list[list[str]] = []

    async def run_now(targets: list[str], **options: Any) -> RunReport:
        asked.append(targets)
        return nb.graph.run(targets, **options)

    asyncio.run(nb.graph.run_defined("b", run_now))
    assert asked == [["b"], ["d"]]
    assert runs(nb.log) == ["a", "b", "c", "d"]  # b's upstream first; d's other upstream for d
