"""``--when EXPR``: run a task only when an expression over its inputs is true.

The expression is checked when the task is defined: it must parse, and
every name in it must be one of the task's parameters or a harmless
builtin, so a typo fails at once rather than after an hour of upstream
work. It is evaluated just before the task would run, on the values of its
inputs, with no other builtins available.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from typing import Any

from dagnb.errors import TaskDefinitionError, TaskFailedCondition, close_matches

__all__ = ["SAFE_BUILTINS", "check_condition", "condition_holds"]

SAFE_BUILTINS: dict[str, Any] = {
    name: __builtins__[name] if isinstance(__builtins__, dict) else getattr(__builtins__, name)
    for name in (
        "len",
        "any",
        "all",
        "min",
        "max",
        "abs",
        "sum",
        "bool",
        "int",
        "float",
        "str",
        "round",
        "isinstance",
        "list",
        "tuple",
        "set",
        "dict",
        "sorted",
    )
}


def check_condition(task: str, params: Sequence[str], expr: str) -> None:
    """Refuse an expression that does not parse or names something the task does not receive."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as exc:
        raise TaskDefinitionError(
            f"`--when {expr}` is not a Python expression ({exc.msg}).",
            "Write a condition such as `len(rows) > 0`.",
            task,
        ) from None
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = {n for comp in ast.walk(tree) if isinstance(comp, ast.comprehension) for n in _targets(comp.target)}
    unknown = sorted(names - set(params) - set(SAFE_BUILTINS) - bound - {"True", "False", "None"})
    if unknown:
        hints = close_matches(unknown[0], params)
        suggestion = f" Did you mean `{hints[0]}`?" if hints else ""
        raise TaskDefinitionError(
            f"`--when {expr}` uses `{unknown[0]}`, which is not one of its parameters "
            f"({', '.join(f'`{p}`' for p in params) or 'none'}).{suggestion}",
            "A condition may use the task's inputs and simple builtins (len, any, all, min, max, ...).",
            task,
        )


def _targets(node: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]


def condition_holds(task: str, expr: str, values: Mapping[str, Any]) -> bool:
    """Evaluate ``expr`` on the task's input ``values``; a condition that raises fails the task."""
    try:
        return bool(eval(compile(expr, f"<--when of {task}>", "eval"), {"__builtins__": SAFE_BUILTINS}, dict(values)))  # noqa: S307
    except Exception as exc:
        raise TaskFailedCondition(task, expr, exc) from exc
