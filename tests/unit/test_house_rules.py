"""The house's size rules: modules under 400 lines, classes under 300 (see docs/architecture.md).

A module or class past its budget is where a newcomer gets lost and a second
concern moves in unnoticed: split it by concern before adding to it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "dagnb"
MODULE_LINES = 400
CLASS_LINES = 300


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _oversized(source: str) -> list[tuple[str, int]]:
    """Every class in ``source`` longer than the budget, with its length."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > CLASS_LINES:
                found.append((node.name, length))
    return found


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_modules_and_classes_stay_within_their_budget(module: Path) -> None:
    source = module.read_text(encoding="utf-8")
    lines = source.count("\n")
    assert lines <= MODULE_LINES, f"{module.name} has {lines} lines (budget {MODULE_LINES}): split it by concern"
    assert _oversized(source) == [], f"classes over {CLASS_LINES} lines in {module.name}: split them by concern"


def test_the_budget_check_sees_a_long_class() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(CLASS_LINES))
    assert _oversized(f"class Big:\n{body}\n") == [("Big", CLASS_LINES + 1)]
    assert _oversized("class Small:\n    pass\n") == []
