"""``dagnb check --plan``: what a run would execute, worked out without running anything.

A task's key covers values only a run can compute, so the plan compares,
part by part, what *can* be known from the notebook's text with what the
cache recorded for each key the task had (most recently used first):

* its own code (the cell's normalized AST), the Python version, and the
  version of each module it uses;
* the own code of each notebook helper it calls (recorded with the entry);
* a global, an external input or a default whose value is a literal in the
  notebook (``K = 10``, ``def f(n=3)``), and ``dagnb.file("path")`` inputs
  (read from disk beside the notebook);
* the fingerprint of each upstream task's value, when that task is cached.

The first key that agrees on all of these is the run's cache hit. A value
computed by code (``df = load()``) cannot be known without running it: the
plan assumes it is unchanged and says so, task by task.
"""

from __future__ import annotations

import ast
import contextlib
import os
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from dagnb.cache.folder import CacheUnavailable
from dagnb.cache.store import CacheEntry, DiskStore, Store
from dagnb.ci.findings import CheckResult, StaticTask
from dagnb.ci.notebook_file import notebook_cells, read_notebook, to_python
from dagnb.fingerprints.code import PYTHON, module_version, source_digest
from dagnb.fingerprints.values import file as file_ref
from dagnb.fingerprints.values import value_digest
from dagnb.keyparts import parse_fed, parse_part
from dagnb.plan import Action
from dagnb.scope import Scope

__all__ = ["StaticDecision", "StaticPlan", "plan_notebook", "plan_statically"]

_UNKNOWN = object()


@dataclass(frozen=True)
class StaticDecision:
    """``run`` (its key changed), ``wait`` (runs if an upstream's fingerprint changes) or ``load`` (from the cache).

    The actions are a run's (:data:`dagnb.plan.Action`), shown with the words of ``dagnb check --plan``.
    """

    task: str
    action: Action
    reasons: tuple[str, ...] = ()
    assumes: tuple[str, ...] = ()


@dataclass
class StaticPlan:
    notebook: str
    cache: str
    decisions: list[StaticDecision] = field(default_factory=list)

    def count(self, action: Action) -> int:
        return sum(1 for d in self.decisions if d.action == action)

    def render_text(self) -> str:
        words = {"run": "run", "wait": "run if needed", "load": "cached"}
        run, maybe, cached = self.count("run"), self.count("wait"), self.count("load")
        lines = [
            f"{self.notebook}: a run would execute {run} task{'s' if run != 1 else ''}"
            + (f", maybe {maybe} more," if maybe else "")
            + f" and load {cached} from the cache at {self.cache}"
        ]
        width = max((len(d.task) for d in self.decisions), default=0)
        for d in self.decisions:
            why = f"  ({', '.join(d.reasons)})" if d.reasons else ""
            lines.append(f"  {d.task.ljust(width)}  {words[d.action]}{why}")
            if d.assumes:
                lines.append(f"  {''.ljust(width)}  assuming unchanged: {', '.join(d.assumes)}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return f"<pre>{escape(self.render_text())}</pre>"


# ------------------------------------------------------------ the notebook


@dataclass
class _Binding:
    cell: int
    value: Any = _UNKNOWN  # a literal's value
    code: str | None = None  # a function's own code digest


class _Namespace:
    """What each top-level name is bound to, cell by cell, as far as the text tells."""

    def __init__(self, cells: list[tuple[str, str]]) -> None:
        self.bindings: dict[str, list[_Binding]] = {}
        for number, (kind, source) in enumerate(cells, 1):
            if kind == "code" and source.strip() and not source.lstrip().startswith("%%"):
                with contextlib.suppress(SyntaxError):
                    self._read(number, to_python(source))

    def _read(self, number: int, source: str) -> None:
        lines = source.splitlines(keepends=True)
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                own = "".join(lines[first - 1 : node.end_lineno])
                self._bind(node.name, _Binding(number, code=source_digest(own)))
            elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = _literal(node.value)
                for target in targets:
                    for name in _names(target):
                        self._bind(name, _Binding(number, value if isinstance(target, ast.Name) else _UNKNOWN))
            else:
                for sub in ast.walk(node):
                    if isinstance(sub, ast.Name) and not isinstance(sub.ctx, ast.Load):
                        self._bind(sub.id, _Binding(number))
                    elif isinstance(sub, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                        self._bind(sub.name, _Binding(number))

    def _bind(self, name: str, binding: _Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def before(self, name: str, cell: int) -> _Binding | None:
        found = [b for b in self.bindings.get(name, []) if b.cell < cell]
        return found[-1] if found else None


def _names(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def _literal(node: ast.AST) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNKNOWN


# ---------------------------------------------------------------- the plan


def plan_notebook(result: CheckResult, cache_dir: str) -> StaticPlan:
    """What a run of the checked notebook would execute, against the cache at ``cache_dir``."""
    return plan_statically(result, cache_dir)


def plan_statically(result: CheckResult, cache_dir: str) -> StaticPlan:
    """Plan ``result`` (a notebook that passed ``dagnb check``) against ``cache_dir``."""
    plan = StaticPlan(result.notebook, cache_dir)
    tasks = sorted(result.tasks.values(), key=lambda t: t.cell)
    if not (Path(cache_dir) / "meta.sqlite").is_file():
        plan.decisions = [StaticDecision(t.name, "run", ("nothing cached yet",)) for t in tasks]
        return plan
    cells = notebook_cells(read_notebook(result.notebook))
    namespace = _Namespace(cells)
    # a plan runs nothing, and writes nothing either; it compares with the heads of this notebook
    store = DiskStore(cache_dir, read_only=True, scope=Scope.of_notebook(result.notebook))
    fingerprints: dict[str, str | None] = {}  # a cached task's value's fingerprint; None when it runs
    try:
        with _inside(Path(result.notebook).parent):
            for task in tasks:
                decision, fingerprints[task.name] = _decide(task, result, namespace, store, fingerprints)
                plan.decisions.append(decision)
    except sqlite3.Error as exc:  # damaged pages, or a kernel's checkpoint beside our lock-free read
        raise CacheUnavailable(_unreadable(cache_dir, exc)) from None
    finally:
        store.close()
    return plan


def _unreadable(cache_dir: str, exc: sqlite3.Error) -> str:
    return (
        f"the cache metadata at {Path(cache_dir) / 'meta.sqlite'} could not be read to the end (SQLite says: "
        f"{exc}). If a kernel was writing to this cache, run the check again; if it says so again, the "
        f"metadata is damaged: `dagnb cache verify --cache-dir {cache_dir}` sets it aside (nothing is deleted)."
    )


@contextlib.contextmanager
def _inside(directory: Path) -> Iterator[None]:
    """Relative ``dagnb.file`` paths resolve beside the notebook, where its kernel runs."""
    before = os.getcwd()
    os.chdir(directory.resolve())
    try:
        yield
    finally:
        os.chdir(before)


def _decide(
    task: StaticTask, result: CheckResult, ns: _Namespace, store: Store, fingerprints: dict[str, str | None]
) -> tuple[StaticDecision, str | None]:
    if task.volatile:
        return StaticDecision(task.name, "run", ("volatile",)), None
    waiting = [u for u in result.upstream.get(task.name, []) if fingerprints.get(u) is None]
    candidates = store.entries_of(task.name)
    head = store.head(task.name)
    if head is not None:
        candidates = [head, *(e for e in candidates if e.key != head.key)]
    if not candidates:
        return StaticDecision(task.name, "run", ("new",)), None
    first_reasons: tuple[str, ...] = ()
    for entry in candidates:
        reasons, assumes = _compare(task, entry, ns, fingerprints)
        if not reasons and not waiting:
            if not entry.stored:
                return StaticDecision(task.name, "run", ("its value is no longer in the cache",), assumes), None
            return StaticDecision(task.name, "load", (), assumes), entry.fingerprint
        if entry is candidates[0]:
            first_reasons = reasons
    if first_reasons:  # explained by this notebook's head only, never by another notebook's task of that name
        return StaticDecision(task.name, "run", first_reasons if head is not None else ("new",)), None
    return StaticDecision(task.name, "wait", tuple(f"upstream {u} runs first" for u in waiting)), None


def _compare(
    task: StaticTask, entry: CacheEntry, ns: _Namespace, fingerprints: dict[str, str | None]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What differs from ``entry`` (reasons), and what could not be checked (assumptions)."""
    reasons: list[str] = []
    assumes: list[str] = []
    if entry.parts.get("code") != source_digest(task.source):
        reasons.append("code changed")
    if entry.parts.get("python", PYTHON) != PYTHON:
        reasons.append("python changed")
    for label, recorded in sorted(entry.parts.items()):
        kind, name = parse_part(label)
        if kind == "module" and _module_changed(recorded):
            reasons.append(f"{label} changed")
        elif kind == "global":
            _check_value(name, recorded, ns.before(name, task.cell), label, reasons, assumes)
        elif kind == "helper":
            _check_helper(name, entry, ns, task, reasons, assumes)
        elif kind in ("closure", "wrapped"):
            assumes.append(f"`{label}`")
    for param, fed in sorted(entry.inputs.items()):
        kind, recorded = parse_fed(fed)
        if kind == "upstream":
            if fingerprints.get(param) is not None and fingerprints[param] != recorded:
                reasons.append(f"upstream {param} changed")
        elif kind == "constant":
            _check_value(
                param, recorded, _Binding(task.cell, _default(task, param)), f"input {param}", reasons, assumes
            )
        else:
            _check_value(param, recorded, ns.before(param, task.cell), f"input {param}", reasons, assumes)
    return tuple(reasons), tuple(assumes)


def _check_value(
    name: str, recorded: str, binding: _Binding | None, label: str, reasons: list[str], assumes: list[str]
) -> None:
    if binding is None or binding.value is _UNKNOWN:
        _add(assumes, f"`{name}`")
    elif value_digest(binding.value) != recorded:
        _add(reasons, f"{label} changed")


def _check_helper(
    name: str, entry: CacheEntry, ns: _Namespace, task: StaticTask, reasons: list[str], assumes: list[str]
) -> None:
    """Each helper the task reached when it ran (and the globals they read) against the text.

    A global that is also one of the task's inputs is checked once, as the input.
    """
    recorded, cell = entry.sources, task.cell
    if name not in recorded:
        _add(assumes, f"helper `{name}`")
        return
    for label, digest in sorted(recorded.items()):  # `global NAME`, or a helper's name alone
        kind, global_name = parse_part(label)
        if kind == "global":
            if global_name not in task.params:
                _check_value(global_name, digest, ns.before(global_name, cell), label, reasons, assumes)
            continue
        binding = ns.before(label, cell)
        if binding is None or binding.code is None:
            _add(assumes, f"helper `{label}`")
        elif binding.code != digest:
            _add(reasons, f"helper {label} changed")


def _add(items: list[str], item: str) -> None:
    if item not in items:
        items.append(item)


def _default(task: StaticTask, param: str) -> Any:
    args = task.node.args
    positional = [*args.posonlyargs, *args.args]
    pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults))
    pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
    node = next((d for a, d in pairs if a.arg == param), None)
    if node is None:
        return _UNKNOWN
    if isinstance(node, ast.Call) and _is_file_call(node.func):
        path = _literal(node.args[0]) if node.args else _UNKNOWN
        content = next((_literal(k.value) for k in node.keywords if k.arg == "content"), None)
        return file_ref(path, content=content) if isinstance(path, str) else _UNKNOWN
    return _literal(node)


def _is_file_call(func: ast.AST) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "file"
        and isinstance(func.value, ast.Name)
        and func.value.id == "dagnb"
    )


def _module_changed(recorded: str) -> bool:
    """Whether the module a task uses has another version now (``numpy 2.4.6``; nothing is imported).

    A library function or class is recorded with its module first (``pandas.core.frame pandas 2.3.1``).
    """
    package, version = recorded.split()[-2:]
    if package.split(".")[0] in sys.stdlib_module_names or package == "builtins":
        return False  # the Python version, a part of its own, covers the standard library
    return module_version(package) != f"{package} {version}"
