"""``dagnb check``, cell by cell: what each code cell defines, binds and reads, read without running it.

IPython syntax is first turned into Python by IPython's own input
transformer (:func:`dagnb.ci.notebook_file.to_python`), which runs nothing. A
``%%task`` line is read by the kernel's own parser (:mod:`dagnb.options`) and
its function by the kernel's (:func:`dagnb.graph.parse_task_cell`), so the
check refuses what the kernel refuses, with the same words. Problems found in
one cell alone (syntax, a cell that is not one function, options that do not
fit the task, a duplicate name, two tasks saving to one file) are added to the
result here; the rest needs the cells in order (:mod:`dagnb.ci.check`).

Limits (static analysis): names bound by ``from m import *`` or inside an
unknown cell magic are unknown (the cell is marked so); names bound
conditionally count as bound.
"""

from __future__ import annotations

import ast
import symtable
from dataclasses import dataclass, field
from typing import Any

from dagnb.ci.findings import CheckResult, Problem, StaticTask
from dagnb.ci.notebook_file import to_python
from dagnb.errors import CommandError, TaskDefinitionError
from dagnb.graph import parse_task_cell
from dagnb.options import TaskOptions, parse_task_line

__all__ = ["Cell", "parse_cell"]

_TRANSPARENT_MAGICS = {"time", "capture", "prun"}  # cell magics that run their body in the notebook namespace


@dataclass
class Cell:
    """One code cell as the check sees it: its kind, the names it binds and reads."""

    number: int
    kind: str  # "task", "code", "opaque"
    binds: set[str] = field(default_factory=set)
    reads: dict[str, int] = field(default_factory=dict)  # name -> line
    wildcard: bool = False
    tree: ast.AST | None = None  # what the cell runs at notebook level (a task cell: its imports)


def parse_cell(number: int, source: str, result: CheckResult) -> Cell:
    """Cell ``number`` read alone; a task it defines and the problems found in it go into ``result``."""
    first, _, body = source.lstrip().partition("\n")
    if first.startswith("%%task"):
        return _parse_task(number, first, body, result)
    bound: set[str] = set()
    offset = 0
    if first.startswith("%%"):
        words = first[2:].split()
        if not words or words[0] not in _TRANSPARENT_MAGICS:
            return Cell(number, "opaque")
        if words[0] == "capture" and words[1:] and not words[-1].startswith("-"):
            bound.add(words[-1])  # `%%capture out` binds `out`
        source, offset = body, 1  # lines count from the magic line
    try:
        tree = ast.parse(to_python(source))
    except SyntaxError as exc:
        line = exc.lineno + offset if exc.lineno else None
        result.problems.append(Problem(number, f"The cell has a syntax error: {exc.msg}.", line))
        return Cell(number, "code")
    cell = Cell(number, "code", binds=bound, tree=tree)
    _collect(tree, cell)
    cell.reads = {name: line + offset for name, line in cell.reads.items()}
    return cell


def _parse_task(number: int, first: str, body: str, result: CheckResult) -> Cell:
    cell = Cell(number, "task")
    try:
        options: TaskOptions | None = parse_task_line(first[len("%%task") :]).options  # the kernel's own parser
    except CommandError as exc:
        result.problems.append(Problem(number, str(exc), 1))
        options = None  # the rest of the cell is still checked, its options aside
    try:
        node = parse_task_cell(body, line_offset=1)
    except TaskDefinitionError as exc:
        line = _syntax_line(body)
        fix = "Fix the code." if "syntax error" in exc.problem else exc.fix  # the kernel's fix speaks of a session
        result.problems.append(Problem(number, f"{exc.problem} {fix}", line + 1 if line else None))
        return cell
    name = node.name
    if name in result.tasks:
        first_cell = result.tasks[name].cell
        message = (
            f"Task `{name}` is defined in cell {first_cell} and again here. Run top to bottom, the second "
            f"definition replaces the first (and Jupyter, which sends cell ids, refuses it). Rename one of "
            f"the two functions, or delete one of the cells."
        )
        result.problems.append(Problem(number, message, node.lineno + 1, name))
        return cell
    args = node.args
    for star, arg in (("*", args.vararg), ("**", args.kwarg)):
        if arg is not None:
            problem = TaskDefinitionError(
                f"it takes `{star}{arg.arg}`, and a task's inputs must be named.",
                "List each input as its own parameter.",
                name,
            )
            result.problems.append(Problem(number, str(problem), arg.lineno + 1, name))
    params = tuple(a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs])
    positional = [*args.posonlyargs, *args.args]
    with_defaults = {a.arg for a in positional[len(positional) - len(args.defaults) :]} if args.defaults else set()
    with_defaults |= {a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None}
    result.tasks[name] = StaticTask(
        name,
        number,
        params,
        frozenset(with_defaults),
        body,
        node,
        options is not None and options.volatile,
        _global_reads(body, name),
    )
    if options is not None:
        try:
            options.check(name, params)  # what the kernel refuses at definition
        except TaskDefinitionError as exc:
            result.problems.append(Problem(number, str(exc), 1, name))
        else:
            _check_save(name, number, options.save, result)
    tree = ast.Module(body=[n for n in ast.parse(body).body if n is not node], type_ignores=[])
    _collect(tree, cell)  # imports in a task cell become notebook variables
    cell.tree = tree
    cell.binds.add(name)
    return cell


def _global_reads(body: str, name: str) -> frozenset[str]:
    """The global names the function ``name`` (and the functions nested in it) reads, as Python scopes them."""
    try:
        module = symtable.symtable(body, "<task>", "exec")
    except SyntaxError:
        return frozenset()
    found: set[str] = set()
    tables = [t for t in module.get_children() if t.get_name() == name]
    while tables:
        table = tables.pop()
        found.update(s.get_name() for s in table.get_symbols() if s.is_global() and s.is_referenced())
        tables.extend(table.get_children())
    return frozenset(found - {name})


def _check_save(task: str, cell: int, pattern: str | None, result: CheckResult) -> None:
    """No two tasks may write the same file (that ``--save`` names a known format, :meth:`TaskOptions.check` saw)."""
    if pattern is None:
        return
    from dagnb.run.save import saved_path

    path = str(saved_path(task, pattern))
    other = result.saved_files.get(path)
    if other is not None:
        result.problems.append(
            Problem(
                cell,
                f"Task `{task}` saves to `{path}`, which task `{other}` (cell {result.tasks[other].cell}) also "
                f"writes: each run would overwrite the other's file. Give one of them another `--save` path.",
                1,
                task,
            )
        )
        return
    result.saved_files[path] = task


def _syntax_line(body: str) -> int | None:
    try:
        ast.parse(body)
    except SyntaxError as exc:
        return exc.lineno
    return None


class _Names(ast.NodeVisitor):
    """Names a cell binds and reads at notebook level (nested scopes bind their own)."""

    def __init__(self, cell: Cell) -> None:
        self.cell = cell

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if node.id not in self.cell.binds:
                self.cell.reads.setdefault(node.id, node.lineno)
        else:
            self.cell.binds.add(node.id)

    def _scope(self, node: Any) -> None:
        if hasattr(node, "name"):
            self.cell.binds.add(node.name)
        for deco in getattr(node, "decorator_list", []):
            self.visit(deco)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scope

    def visit_Lambda(self, node: ast.Lambda) -> None:
        pass

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.cell.binds.add(alias.asname or alias.name.split(".")[0])

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.cell.wildcard = True
            else:
                self.cell.binds.add(alias.asname or alias.name)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.cell.binds.add(node.name)
        self.generic_visit(node)


def _collect(tree: ast.AST, cell: Cell) -> None:
    _Names(cell).visit(tree)
