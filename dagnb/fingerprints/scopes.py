"""What a global name stands for, for :mod:`dagnb.fingerprints.untracked`: in a live namespace, or in a notebook's text.

:class:`RuntimeScope` looks a name up in a task's namespace
(``fn.__globals__``) and recognises modules by name and the functions of
already loaded modules by identity (``from random import random`` resolves to
``random.random``); it never imports anything. :class:`NotebookScope` reads
the same from the cells' text, for ``dagnb check``, where nothing runs.
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import linecache
import sys
import textwrap
import types
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["FunctionNode", "NotebookScope", "RuntimeScope", "function_tree", "holds_files", "stored"]

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def stored(targets: list[ast.expr]) -> set[str]:
    """The names an assignment's targets bind."""
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


@functools.lru_cache(maxsize=4096)
def function_tree(code: types.CodeType) -> FunctionNode | None:
    """The parsed source of a function (by its code object, so each source is parsed once).

    Read from ``linecache`` (where IPython keeps its cells) at the code's first
    line, as ``inspect.getsource`` does, without its search of every loaded
    module for the file, which costs milliseconds when there is no source.
    """
    linecache.checkcache(code.co_filename)
    lines = linecache.getlines(code.co_filename)
    if not lines or code.co_firstlineno > len(lines):
        return None
    try:
        source = textwrap.dedent("".join(inspect.getblock(lines[code.co_firstlineno - 1 :])))
        tree = ast.parse(source)
    except (SyntaxError, IndentationError, ValueError):
        return None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == code.co_name:
            return node
    return None


_WATCHED = (
    "builtins",
    "io",
    "os",
    "os.path",
    "random",
    "time",
    "datetime",
    "uuid",
    "secrets",
    "pathlib",
    "numpy",
    "numpy.random",
    "pandas",
    "polars",
    "torch",
    "torch.random",
    "joblib",
    "xarray",
    "pyarrow.parquet",
    "pyarrow.csv",
    "pyarrow.feather",
    "dagnb",
)


def _known_objects() -> dict[int, tuple[Any, str]]:
    """``id(obj) -> (obj, dotted name)`` for the callables (and ``os.environ``) of the loaded watched modules."""
    loaded = tuple(sys.modules.get(m) for m in _WATCHED)
    return _objects_of(loaded)


@functools.lru_cache(maxsize=8)
def _objects_of(modules: tuple[types.ModuleType | None, ...]) -> dict[int, tuple[Any, str]]:
    known: dict[int, tuple[Any, str]] = {}
    for name, module in zip(_WATCHED, modules):
        if module is None:
            continue
        for attr, value in vars(module).items():
            if not attr.startswith("_") and (callable(value) or attr in ("environ", "environb")):
                known.setdefault(id(value), (value, f"{name}.{attr}"))
    return known


class RuntimeScope:
    """Names as a notebook namespace binds them (``fn.__globals__``), resolved by identity."""

    def __init__(self, namespace: Mapping[str, Any]) -> None:
        self.namespace = namespace
        self._known = _known_objects()

    def _lookup(self, name: str) -> Any:
        if name in self.namespace:
            return self.namespace[name]
        return getattr(builtins, name, None)

    def resolve(self, name: str) -> str | None:
        obj = self._lookup(name)
        if obj is None:
            return None
        if isinstance(obj, types.ModuleType):
            return obj.__name__
        if getattr(obj, "__wrapped__", None) is builtins.open:  # IPython's own `open` wraps the builtin
            return "builtins.open"
        known = self._known.get(id(obj))
        return known[1] if known is not None and known[0] is obj else None  # held here: the id is its own

    def holds_file(self, name: str) -> bool:
        return holds_files(self.namespace.get(name))

    def helper(self, name: str) -> FunctionNode | None:
        obj = self.namespace.get(name)
        if isinstance(obj, types.FunctionType) and obj.__globals__ is self.namespace:
            return function_tree(obj.__code__)
        return None


def holds_files(value: Any) -> bool:
    """A ``dagnb.file``, or a non-empty list, tuple, set or dict (values) of them."""
    from dagnb.fingerprints.values import FileRef

    if isinstance(value, FileRef):
        return True
    items = list(value.values()) if isinstance(value, dict) else value
    if isinstance(items, (list, tuple, set, frozenset)) and len(items) > 0:
        return all(isinstance(item, FileRef) for item in items)
    return False


# ------------------------------------------------------------- in a notebook's text


class NotebookScope:
    """Names as the cells above a task bind them, read from their text (``dagnb check``; nothing runs).

    Learns, cell by cell in order: imports (``import numpy as np`` ->
    ``numpy``), notebook functions (helpers), and variables assigned a
    ``dagnb.file(...)``. Any other binding of a name hides what it was.
    """

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}
        self.helpers: dict[str, FunctionNode] = {}
        self.files: set[str] = set()
        self.shadowed: set[str] = set()

    def resolve(self, name: str) -> str | None:
        if name in self.aliases:
            return self.aliases[name]
        if name in self.shadowed or name in self.helpers or not hasattr(builtins, name):
            return None
        return f"builtins.{name}"

    def holds_file(self, name: str) -> bool:
        return name in self.files

    def helper(self, name: str) -> FunctionNode | None:
        return self.helpers.get(name)

    def makes_file(self, node: ast.AST) -> bool:
        """Whether the expression calls ``dagnb.file`` (``dagnb.file("a.csv")``, ``[file(p) for p in ps]``)."""
        return any(isinstance(n, ast.Call) and self._dotted(n.func) == "dagnb.file" for n in ast.walk(node))

    def _dotted(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Attribute):
            base = self._dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return self.resolve(node.id) if isinstance(node, ast.Name) else None

    def learn(self, tree: ast.AST) -> None:
        """Take in what a cell binds at notebook level (not inside its functions)."""
        for node in _top_level(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._imported(node)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.bind({node.name})
                self.helpers[node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.bind({node.name})
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.NamedExpr)):
                targets = stored(node.targets if isinstance(node, ast.Assign) else [node.target])
                self.bind(targets)
                if node.value is not None and self.makes_file(node.value):
                    self.files |= targets
            elif isinstance(node, (ast.For, ast.AsyncFor, ast.With, ast.AsyncWith)):
                self.bind(
                    stored(
                        [node.target]
                        if hasattr(node, "target")
                        else [i.optional_vars for i in node.items if i.optional_vars is not None]
                    )
                )

    def _imported(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if isinstance(node, ast.Import):
                root = alias.name.split(".")[0]
                name, dotted = alias.asname or root, alias.name if alias.asname else root
            elif node.module and not node.level and alias.name != "*":
                name, dotted = alias.asname or alias.name, f"{node.module}.{alias.name}"
            else:
                continue
            self.bind({name})
            self.aliases[name] = dotted

    def bind(self, names: set[str]) -> None:
        """Names bound some other way (a task's value, an assignment): they stand for nothing known."""
        for name in names:
            self.aliases.pop(name, None)
            self.helpers.pop(name, None)
            self.files.discard(name)
            self.shadowed.add(name)


def _top_level(tree: ast.AST) -> Iterator[ast.AST]:
    """Statements a cell runs at notebook level: into ``if``/``for``/``with``/``try``, not into functions."""
    for node in getattr(tree, "body", []):
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for field_name in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(node, field_name, []):
                    yield from _top_level(ast.Module(body=[child], type_ignores=[]))
