"""What a task reads that its key does not cover: the global random generator, the clock,
the environment, and files that are not ``dagnb.file`` inputs.

A task's key covers its code, its inputs and the globals it reads. A task
that calls ``np.random.rand()``, ``time.time()`` or ``os.getenv("MODE")``, or
opens ``"data.csv"`` by a plain path, gives a result that the key does not
determine: it is cached as if it did, and a later change is never noticed.
This module finds those calls *statically*, in the AST of the task's own
function and of the notebook helpers it calls, so that the user is told once
when the task is defined (and by ``dagnb check``), with the fix.

Invariants:

* IPython-free, and no library is imported: a name is resolved to a dotted
  name (``np`` -> ``numpy``, ``rand`` -> ``numpy.random.rand``) by a
  :class:`Scope` the caller gives (see :mod:`dagnb.fingerprints.scopes`): in a session,
  the task's namespace, objects compared with the already loaded modules by
  identity; in ``dagnb check``, the notebook's import lines.
* No false alarm on purpose. What is unclear is not reported: a path that
  comes from another call, from an upstream task or from a helper's
  parameter (unless a call passes it a plain path); an ``open`` mode not
  written as a literal. A seeded generator
  (``np.random.default_rng(seed)``, ``random.Random(seed)``) or a seed call
  (``np.random.seed(0)``) anywhere in the task or its helpers is deterministic.
* Reading counts, writing does not: ``open(path, "w")`` and
  ``os.environ["X"] = ...`` are outputs, not inputs. Parameter defaults are
  evaluated when the task is defined and fingerprinted, so they are not read.
* Each function's source is parsed at most once per code object.

The table of calls that read the untracked is :mod:`.untracked_rules`; what
a function's text binds, imports and writes, :mod:`.untracked_syntax`. This
module walks a task's function and the helpers it calls.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dagnb.fingerprints.scopes import FunctionNode, RuntimeScope, function_tree
from dagnb.fingerprints.untracked_rules import (
    _ENVIRON,
    _ENVIRON_WRITES,
    _OPENERS,
    _PATH_BUILDERS,
    _PATH_CLASSES,
    _SEEDS,
    _WHAT,
    _literal,
    _mode,
    _path_argument,
    _reads,
    _reads_file,
    _rule,
    _seeded,
    _short,
)
from dagnb.fingerprints.untracked_syntax import _parameters, _syntax, _tainted

__all__ = ["Scope", "Untracked", "find_untracked", "task_findings"]


@dataclass(frozen=True)
class Untracked:
    """One call (or read) whose result the task's key does not cover."""

    kind: str  # "random", "clock", "environment" or "file"
    what: str  # how a message names it: "the global random generator"
    code: str  # as written, shortened: "np.random.rand(3)"
    line: int  # in the coordinates of the tree it was found in
    helper: str | None = None  # the notebook helper it is in; None: the task's own code
    path: str | None = None  # a file opened by a literal path
    family: str | None = field(default=None, compare=False)  # a global generator a seed call makes deterministic


class Scope(Protocol):
    """How the analysis learns what a global name is."""

    def resolve(self, name: str) -> str | None:
        """The dotted name a global stands for (``numpy``, ``random.random``), else ``None``."""

    def holds_file(self, name: str) -> bool:
        """Whether the global holds a ``dagnb.file`` (or a container of them)."""

    def helper(self, name: str) -> FunctionNode | None:
        """The tree of the notebook function of that name, else ``None``."""


# ------------------------------------------------------------------- the analysis


def find_untracked(node: FunctionNode, scope: Scope, tracked: Iterable[str] = ()) -> list[Untracked]:
    """What ``node`` (a task's function) and the helpers it calls read without the key covering it.

    ``tracked`` names the task's parameters that carry tracked paths (a
    ``dagnb.file`` default, an upstream task, a notebook variable holding a
    ``dagnb.file``). A helper's parameter counts as tracked unless a call
    passes it a plain path (``load("data.csv")``): the path is judged where
    it is made.
    """
    found: list[Untracked] = []
    seeded: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[FunctionNode, str | None, frozenset[str]]] = [(node, None, frozenset(tracked))]
    while pending:
        function, helper, trusted = pending.pop()
        walker = _Walker(function, scope, trusted, helper)
        found.extend(walker.found)
        seeded |= walker.seeded
        for name, call in walker.called:
            tree = scope.helper(name)
            if tree is None:
                continue
            trusted_there = frozenset(_parameters(tree)) - walker.plain_paths(tree, call)
            if (name, trusted_there) not in visited and len(visited) < 64:  # a bound on deep helper chains
                visited.add((name, trusted_there))
                pending.append((tree, name, trusted_there))
    return _distinct(f for f in found if f.family not in seeded)


def _distinct(found: Iterable[Untracked]) -> list[Untracked]:
    """One finding per (what, code, helper), the first by line; own code first, then helpers."""
    first: dict[tuple[str, str, str | None], Untracked] = {}
    for item in sorted(found, key=lambda f: (f.helper is not None, f.helper or "", f.line)):
        first.setdefault((item.what, item.code, item.helper), item)
    return list(first.values())


class _Walker(ast.NodeVisitor):
    """One function's body: the untracked reads in it, the seeds it sets, the notebook functions it calls."""

    def __init__(self, function: FunctionNode, scope: Scope, trusted: frozenset[str], helper: str | None) -> None:
        self.scope, self.helper = scope, helper
        syntax = _syntax(function)
        self.imports, self.locals = syntax.imports, syntax.locals
        self.tracked = _tainted(syntax.flows, trusted | syntax.inner, self._global_file)
        self.written = {path for call, path in syntax.writes if self.dotted(call.func) in _OPENERS}
        self.found: list[Untracked] = []
        self.seeded: set[str] = set()
        self.called: list[tuple[str, ast.Call]] = []
        for statement in function.body:  # not the defaults: they are evaluated, and fingerprinted, at definition
            self.visit(statement)

    def _global_file(self, name: str) -> bool:
        return name not in self.locals and self.scope.holds_file(name)

    def dotted(self, node: ast.AST) -> str | None:
        """``np.random.rand`` -> ``numpy.random.rand``, through imports in the function or the scope."""
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        if not isinstance(node, ast.Name):
            return None
        if node.id in self.imports:
            return self.imports[node.id]
        return None if node.id in self.locals else self.scope.resolve(node.id)

    def add(self, kind: str, what: str, node: ast.expr, family: str | None = None, path: str | None = None) -> None:
        self.found.append(Untracked(kind, what, _short(node), node.lineno, self.helper, path, family))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and self._method(func, node):
            return
        dotted = self.dotted(func)
        if dotted is not None:
            self._call(dotted, node)
        elif isinstance(func, ast.Name) and func.id not in self.locals:
            self.called.append((func.id, node))  # perhaps a notebook helper: the scope decides
        self.generic_visit(node)

    def _call(self, dotted: str, node: ast.Call) -> None:
        if dotted in _SEEDS:
            if _seeded(node):
                self.seeded.add(_SEEDS[dotted])
            return
        rule = _rule(dotted, node)
        if rule is not None:
            self.add(rule[0], rule[1], node, rule[2])
        elif _reads_file(dotted) and (dotted not in _OPENERS or _reads(_mode(node, 1))):
            self._file(_path_argument(node), node)

    def _method(self, func: ast.Attribute, node: ast.Call) -> bool:
        """``os.environ.get(...)``, ``Path("x").read_text()``; True when the receiver needs no visit."""
        receiver = self.dotted(func.value)
        if receiver in _ENVIRON:
            if func.attr not in _ENVIRON_WRITES:
                self.add("environment", _WHAT["environment"], node)
            for arg in [*node.args, *(k.value for k in node.keywords)]:
                self.visit(arg)
            return True
        inner = func.value
        if isinstance(inner, ast.Call) and self.dotted(inner.func) in _PATH_CLASSES:
            if func.attr in ("read_text", "read_bytes") or (func.attr == "open" and _reads(_mode(node, 0))):
                self._file(inner.args[0] if inner.args else None, node)
        return False

    def _file(self, path: ast.AST | None, node: ast.Call) -> None:
        if path is None or ast.unparse(path) in self.written or not self._untracked_path(path):
            return
        literal = _literal(path)
        self.add("file", _WHAT["file"], node, path=literal if isinstance(literal, str) else None)

    def _untracked_path(self, path: ast.AST) -> bool:
        """A path made only of literals and names that hold no tracked path; anything unclear is not."""
        if isinstance(path, ast.Constant):
            return isinstance(path.value, str)
        if isinstance(path, ast.Call):
            builder = self.dotted(path.func)
            if builder not in _PATH_BUILDERS:
                return False  # a buffer (io.StringIO), or a path some other code makes
            return all(self._untracked_path(a) for a in [*path.args, *(k.value for k in path.keywords)])
        names = [n.id for n in ast.walk(path) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
        calls = [n for n in ast.walk(path) if isinstance(n, ast.Call)]
        if any(not self._untracked_path(c) for c in calls):
            return False
        return not any(n in self.tracked or self._global_file(n) for n in names)

    def plain_paths(self, helper: FunctionNode, call: ast.Call) -> set[str]:
        """The helper's parameters that ``call`` passes an untracked path (a literal, a plain variable)."""
        if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
            return set()
        positional = [a.arg for a in (*helper.args.posonlyargs, *helper.args.args)]
        given = [*zip(positional, call.args), *((k.arg, k.value) for k in call.keywords)]
        return {param for param, arg in given if param is not None and self._untracked_path(arg)}

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self.dotted(node.value) in _ENVIRON:
            if isinstance(node.ctx, ast.Load):
                self.add("environment", _WHAT["environment"], node)
            self.visit(node.slice)
            return
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if self.dotted(node) in _ENVIRON:
            self.add("environment", _WHAT["environment"], node)
            return
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load) and self.dotted(node) in _ENVIRON:  # `from os import environ`
            self.add("environment", _WHAT["environment"], node)


def task_findings(
    func: Callable[..., Any],
    tracked_params: Iterable[str],
    node: FunctionNode | None = None,
) -> list[Untracked]:
    """:func:`find_untracked` for a live task function; ``node`` is its tree when the caller parsed it."""
    tree = node if node is not None else function_tree(func.__code__)
    namespace = getattr(func, "__globals__", None)
    if tree is None or namespace is None:
        return []
    return find_untracked(tree, RuntimeScope(namespace), tracked_params)
