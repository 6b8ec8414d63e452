"""Every error's exact message: what is wrong, what was found, how to fix it."""

from __future__ import annotations

import pytest

from dagnb.errors import (
    CycleError,
    DagnbError,
    DuplicateTask,
    TaskDefinitionError,
    TaskFailed,
    Unfingerprintable,
    UnknownTask,
    UnresolvedParameter,
    close_matches,
)

MESSAGES = [
    (
        "unresolved, with candidates",
        UnresolvedParameter("model", "featurs", ["features", "feature"]),
        "Task `model` has a parameter `featurs` that is neither a task, a default, nor a notebook variable. "
        "Did you mean `features`, `feature`? Define it in a cell above, give it a default, or add a "
        "`%%task def featurs(...)`.",
    ),
    (
        "unresolved, without candidates",
        UnresolvedParameter("model", "zzz"),
        "Task `model` has a parameter `zzz` that is neither a task, a default, nor a notebook variable. "
        "Define it in a cell above, give it a default, or add a `%%task def zzz(...)`.",
    ),
    (
        "cycle of one (self-dependency)",
        CycleError(["total"]),
        "Task `total` depends on itself: its parameter `total` names the task. "
        "Rename the parameter, or rename the function.",
    ),
    (
        "cycle of two",
        CycleError(["a", "b"]),
        "Tasks form a cycle: a -> b -> a. A task cannot depend on its own output; rename a parameter to break the loop.",
    ),
    (
        "cycle of three",
        CycleError(["a", "b", "c"]),
        "Tasks form a cycle: a -> b -> c -> a. A task cannot depend on its own output; "
        "rename a parameter to break the loop.",
    ),
    (
        "duplicate task",
        DuplicateTask("clean"),
        "Task `clean` is already defined in another cell. Rename one of the two functions, "
        "or run `%dag drop clean` to remove the other definition first.",
    ),
    (
        "unknown task, with candidates",
        UnknownTask("claen", ["clean"]),
        "There is no task `claen`. Did you mean `clean`? `%dag plan` lists the tasks defined so far.",
    ),
    (
        "unknown task, without candidates",
        UnknownTask("zzz"),
        "There is no task `zzz`. `%dag plan` lists the tasks defined so far.",
    ),
    (
        "task failed",
        TaskFailed("clean", KeyError("sepal_length")),
        "Task `clean` raised KeyError: 'sepal_length'. Fix the task (or its inputs) and run it again; "
        "the values of other tasks are kept.",
    ),
    (
        "task failed, its error a sentence already",
        TaskFailed("fit", RuntimeError("Could not pickle the task to send it to the workers.")),
        "Task `fit` raised RuntimeError: Could not pickle the task to send it to the workers. Fix the task (or its "
        "inputs) and run it again; the values of other tasks are kept.",
    ),
    (
        "task definition, with a task",
        TaskDefinitionError("it takes `*parts`.", "List each input.", task="combine"),
        "Task `combine`: it takes `*parts`. List each input.",
    ),
    (
        "task definition, without a task",
        TaskDefinitionError("The cell is empty.", "Write a `def`."),
        "The cell is empty. Write a `def`.",
    ),
    (
        "unfingerprintable",
        Unfingerprintable("_thread.lock", "cannot pickle '_thread.lock' object"),
        "A value of type `_thread.lock` cannot be fingerprinted (cannot pickle '_thread.lock' object). "
        "Register a fingerprint with `dagnb.register_fingerprint(lock, fn)`.",
    ),
]


@pytest.mark.parametrize(("error", "message"), [m[1:] for m in MESSAGES], ids=[m[0] for m in MESSAGES])
def test_message(error: DagnbError, message: str) -> None:
    assert isinstance(error, DagnbError)
    assert str(error) == message
    assert not str(error).startswith("Error"), "no 'Error:' prefix"


def test_errors_keep_their_fields() -> None:
    e = UnresolvedParameter("model", "featurs", ("features",))
    assert (e.task, e.param, e.candidates) == ("model", "featurs", ["features"])
    cycle = CycleError(["a", "b"])
    assert (cycle.task, cycle.cycle) == ("a", ["a", "b"])
    cause = ValueError("boom")
    failed = TaskFailed("t", cause)
    assert (failed.task, failed.error) == ("t", cause)
    assert Unfingerprintable("pkg.mod.Thing", "why").type_name == "pkg.mod.Thing"


def test_close_matches_are_best_first_and_unique() -> None:
    assert close_matches("featurs", ["features", "feature", "features", "target"]) == ["features", "feature"]
    assert close_matches("zzz", ["features"]) == []
