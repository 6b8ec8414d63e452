"""What a function's text says, whatever its global names stand for: found in one pass, once per tree.

For the analysis in :mod:`.untracked`: the names a function binds, what it
imports inside, the parameters of the functions nested in it, which local
name takes its value from which names (``p = os.path.join(root, "a.csv")``),
and the calls that write a file by a literal mode.

Invariants:

* Only the body counts, never the signature or the decorators: defaults are
  evaluated, and fingerprinted, when the task is defined.
* A name declared ``global`` or ``nonlocal`` is not local; an import inside
  the function binds a dotted name, not a local.
* Each tree is read once (``functools.lru_cache`` on :func:`_syntax`); the
  taint of tracked paths (:func:`_tainted`) runs to a fixed point.

Imports :mod:`.untracked_rules` and :mod:`.scopes` only.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from dagnb.fingerprints.scopes import FunctionNode
from dagnb.fingerprints.scopes import stored as _stored
from dagnb.fingerprints.untracked_rules import _mode, _reads


def _parameters(node: FunctionNode | ast.Lambda) -> list[str]:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return names + [a.arg for a in (args.vararg, args.kwarg) if a is not None]


@dataclass(frozen=True)
class _Syntax:
    """What a function's text says, whatever its global names stand for: found in one pass, once per tree.

    ``inner`` are the parameters of nested functions and lambdas: they hold
    whatever their caller passes, so they count as tracked, like a helper's.
    """

    imports: dict[str, str]  # names imported inside the function -> dotted name
    locals: frozenset[str]  # every name the function binds (imports aside)
    inner: frozenset[str]
    flows: tuple[tuple[frozenset[str], frozenset[str]], ...]  # (names bound, names the value reads)
    writes: tuple[tuple[ast.Call, str], ...]  # calls with a literal writing mode, and their path as written


@functools.lru_cache(maxsize=1024)
def _syntax(function: FunctionNode) -> _Syntax:
    imports: dict[str, str] = {}
    local, inner, declared_global = set(_parameters(function)), set(), set()
    flows: list[tuple[frozenset[str], frozenset[str]]] = []
    writes: list[tuple[ast.Call, str]] = []
    for node in _inside(function):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            local.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            local.add(node.name)
        elif isinstance(node, ast.arg):
            inner.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.update(_imported(node))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            declared_global.update(node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            local.add(node.name)
        elif isinstance(node, ast.Call) and node.args and not _reads(_mode(node, 1)) and _literal_mode(node):
            writes.append((node, ast.unparse(node.args[0])))
        flow = _flow(node)
        if flow is not None:
            flows.append((frozenset(_stored(flow[0])), frozenset(_loaded(flow[1]))))
    local |= inner
    return _Syntax(
        imports, frozenset(local - declared_global - set(imports)), frozenset(inner), tuple(flows), tuple(writes)
    )


def _imported(node: ast.Import | ast.ImportFrom) -> dict[str, str]:
    """``import numpy.random as npr`` binds the submodule; ``import os.path`` binds ``os``."""
    if isinstance(node, ast.Import):
        return {a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0] for a in node.names}
    if not node.module or node.level:
        return {}
    return {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names if a.name != "*"}


def _literal_mode(call: ast.Call) -> bool:
    return isinstance(_mode(call, 1), str)


def _flow(node: ast.AST) -> tuple[list[ast.expr], ast.AST] | None:
    """``(targets, value)`` of a binding whose targets take their value from ``value``."""
    if isinstance(node, ast.Assign):
        return node.targets, node.value
    if isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.NamedExpr)) and node.value is not None:
        return [node.target], node.value
    if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
        return [node.target], node.iter
    if isinstance(node, ast.withitem) and node.optional_vars is not None:
        return [node.optional_vars], node.context_expr
    return None


def _inside(function: FunctionNode) -> Iterator[ast.AST]:
    """Every node of the function's body (not its own signature or decorators)."""
    for statement in function.body:
        yield from ast.walk(statement)


def _tainted(
    flows: Iterable[tuple[frozenset[str], frozenset[str]]], seeds: Iterable[str], global_file: Callable[[str], bool]
) -> set[str]:
    """Local names whose value is computed from a tracked path (``p = os.path.join(root, "a.csv")``)."""
    tracked = set(seeds)
    changed = True
    while changed:
        changed = False
        for targets, reads in flows:
            if targets - tracked and any(n in tracked or global_file(n) for n in reads):
                tracked |= targets
                changed = True
    return tracked


def _loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
