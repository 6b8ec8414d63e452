"""``dagnb check``: validate a notebook's tasks without executing any of its code.

The notebook is read as JSON and every code cell parsed (IPython syntax is
first turned into Python by IPython's own input transformer, which runs
nothing). From the ``%%task`` cells and the names the other cells bind, in
cell order, the check finds what a top-to-bottom run in a new kernel would
trip on: syntax errors, cells that are not one function, ``%%task`` lines
the kernel refuses (read by the kernel's own parser, :mod:`dagnb.options`),
option values that do not fit the task, duplicate task names,
self-dependencies and cycles, parameters that resolve to nothing (with
close matches), and tasks used above the cell that defines them.
It also notes, without failing, tasks that read what their key does not
cover (the global random generator, the clock, the environment, files that
are not ``dagnb.file`` inputs; see :mod:`dagnb.fingerprints.untracked`), resolving names
through the import lines of the cells above.

Positions are 1-based over all cells (markdown included), as a notebook
shows them, and lines are 1-based within the cell's code.

Limits (static analysis): names bound by ``from m import *`` or inside an
unknown cell magic are unknown, so an unresolved parameter is not reported
after such a cell; names bound conditionally count as bound.
"""

from __future__ import annotations

import ast
import symtable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from dagnb.ci.notebook_file import notebook_cells, notebook_language, read_notebook, to_python
from dagnb.errors import (
    CommandError,
    CycleError,
    TaskDefinitionError,
    UnresolvedParameter,
    UntrackedWarning,
    UsedBeforeDefinition,
    close_matches,
)
from dagnb.fingerprints.scopes import NotebookScope
from dagnb.fingerprints.untracked import find_untracked
from dagnb.graph import parse_task_cell
from dagnb.options import TaskOptions, parse_task_line

__all__ = ["CheckResult", "Problem", "StaticTask", "check_notebook", "check_source", "notebook_language"]

_TRANSPARENT_MAGICS = {"time", "capture", "prun"}  # cell magics that run their body in the notebook namespace


@dataclass(frozen=True)
class Problem:
    """One finding, at a cell (and line) of a notebook."""

    cell: int
    message: str
    line: int | None = None
    task: str | None = None

    def render(self, notebook: str) -> str:
        where = notebook + (f": cell {self.cell}" if self.cell else "") + (f", line {self.line}" if self.line else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class StaticTask:
    """A task as written: its cell, parameters and which of them have defaults."""

    name: str
    cell: int
    params: tuple[str, ...]
    defaults: frozenset[str]
    source: str = field(repr=False)
    node: ast.FunctionDef | ast.AsyncFunctionDef = field(repr=False, compare=False)
    volatile: bool = False
    reads: frozenset[str] = frozenset()  # global names its body reads (another task's, when hidden)


@dataclass
class _Cell:
    number: int
    kind: str  # "task", "code", "opaque"
    binds: set[str] = field(default_factory=set)
    reads: dict[str, int] = field(default_factory=dict)  # name -> line
    wildcard: bool = False
    tree: ast.AST | None = None  # what the cell runs at notebook level (a task cell: its imports)


@dataclass
class CheckResult:
    """The tasks found, their upstream edges, and the problems."""

    notebook: str
    cells: int = 0
    tasks: dict[str, StaticTask] = field(default_factory=dict)
    upstream: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)  # told, but no problem: what a task's key does not cover
    outputs: dict[str, str] = field(default_factory=dict)  # file a task writes with --save -> the task

    @property
    def ok(self) -> bool:
        return not self.problems

    def render_text(self) -> str:
        found = sorted([*self.problems, *self.notes], key=lambda p: (p.cell, p.line or 0))
        lines = [p.render(self.notebook) for p in found]
        if self.ok:
            tasks = f"{len(self.tasks)} task" + ("" if len(self.tasks) == 1 else "s")
            cells = f"{self.cells} cell" + ("" if self.cells == 1 else "s")
            saved = f"; writes {', '.join(sorted(self.outputs))}" if self.outputs else ""
            return "\n".join([*lines, f"{self.notebook}: ok ({tasks} in {cells}{saved})"])
        lines.append(f"{self.notebook}: {len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}")
        return "\n".join(lines)


def check_notebook(path: Path) -> CheckResult:
    """Check the notebook at ``path`` (read as JSON; nothing is executed)."""
    try:
        nb = read_notebook(path)
    except ValueError as exc:  # not JSON, not a notebook's JSON, not UTF-8
        result = CheckResult(str(path))
        message = (
            f"The file cannot be read as a notebook ({exc}). Is it an .ipynb file, without merge conflict markers?"
        )
        result.problems.append(Problem(0, message))
        return result
    language = notebook_language(nb)
    if language and language.lower() != "python":
        result = CheckResult(str(path))
        result.problems.append(
            Problem(
                0,
                f"The notebook is written for {language}; dagnb checks Python notebooks "
                f"only, whose tasks are Python functions.",
            )
        )
        return result
    return check_source(notebook_cells(nb), str(path))


def check_source(cells: list[tuple[str, str]], notebook: str = "<notebook>") -> CheckResult:
    """Check ``(cell_type, source)`` pairs in order."""
    result = CheckResult(notebook, cells=len(cells))
    parsed: list[_Cell] = []
    for number, (kind, source) in enumerate(cells, 1):
        if kind == "code" and source.strip():
            parsed.append(_parse_cell(number, source, result))
    _resolve(parsed, result)
    _find_cycles(result)
    return result


# ------------------------------------------------------------------ parsing


def _parse_cell(number: int, source: str, result: CheckResult) -> _Cell:
    first, _, body = source.lstrip().partition("\n")
    if first.startswith("%%task"):
        return _parse_task(number, first, body, result)
    bound: set[str] = set()
    offset = 0
    if first.startswith("%%"):
        words = first[2:].split()
        if not words or words[0] not in _TRANSPARENT_MAGICS:
            return _Cell(number, "opaque")
        if words[0] == "capture" and words[1:] and not words[-1].startswith("-"):
            bound.add(words[-1])  # `%%capture out` binds `out`
        source, offset = body, 1  # lines count from the magic line
    try:
        tree = ast.parse(to_python(source))
    except SyntaxError as exc:
        line = exc.lineno + offset if exc.lineno else None
        result.problems.append(Problem(number, f"The cell has a syntax error: {exc.msg}.", line))
        return _Cell(number, "code")
    cell = _Cell(number, "code", binds=bound, tree=tree)
    _collect(tree, cell)
    cell.reads = {name: line + offset for name, line in cell.reads.items()}
    return cell


def _parse_task(number: int, first: str, body: str, result: CheckResult) -> _Cell:
    cell = _Cell(number, "task")
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
    other = result.outputs.get(path)
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
    result.outputs[path] = task


def _syntax_line(body: str) -> int | None:
    try:
        ast.parse(body)
    except SyntaxError as exc:
        return exc.lineno
    return None


class _Names(ast.NodeVisitor):
    """Names a cell binds and reads at notebook level (nested scopes bind their own)."""

    def __init__(self, cell: _Cell) -> None:
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


def _collect(tree: ast.AST, cell: _Cell) -> None:
    _Names(cell).visit(tree)


# --------------------------------------------------------------- resolving


def _resolve(cells: list[_Cell], result: CheckResult) -> None:
    """Walk the cells in order, as a new kernel runs them, resolving each task's parameters."""
    tasks = result.tasks
    bound: set[str] = set()
    unknown_names = False  # after `import *` or an opaque cell magic
    scope = NotebookScope()  # what the names above stand for: imports, helpers, dagnb.file variables
    for cell in cells:
        if cell.tree is not None:
            scope.learn(cell.tree)
        if cell.kind == "task":
            name = next((t for t in cell.binds if t in tasks and tasks[t].cell == cell.number), None)
            if name is not None:
                _resolve_task(tasks[name], bound | cell.binds, unknown_names, result)
                _note_untracked(tasks[name], scope, result)
                scope.bind({name})
        elif cell.kind == "code":
            for read, line in cell.reads.items():
                if read in tasks and tasks[read].cell > cell.number and read not in bound:
                    problem = UsedBeforeDefinition(read, f"Cell {cell.number}", tasks[read].cell)
                    result.problems.append(Problem(cell.number, str(problem), line, read))
        unknown_names = unknown_names or cell.wildcard or cell.kind == "opaque"
        bound |= cell.binds


def _resolve_task(task: StaticTask, bound: set[str], unknown_names: bool, result: CheckResult) -> None:
    ups: list[str] = []
    line = task.node.lineno + 1  # the `%%task` line comes first
    for param in task.params:
        other = result.tasks.get(param)
        if param == task.name:
            continue  # a self-dependency: reported with the cycles
        if other is not None and other.cell <= task.cell:
            ups.append(param)
        elif param in task.defaults:
            continue
        elif other is not None:
            problem = UsedBeforeDefinition(param, f"Task `{task.name}` (parameter `{param}`)", other.cell)
            result.problems.append(Problem(task.cell, str(problem), line, task.name))
        elif param not in bound and not unknown_names:
            names = [*result.tasks, *(n for n in bound if not n.startswith("_"))]
            candidates = close_matches(param, [n for n in names if n != task.name])  # never itself: a cycle
            message = str(UnresolvedParameter(task.name, param, candidates))
            result.problems.append(Problem(task.cell, message, line, task.name))
    for read in sorted(task.reads - set(task.params)):  # another task's variable read as a global
        other = result.tasks.get(read)
        if other is None:
            continue
        if other.cell <= task.cell:
            ups.append(read)
        else:
            problem = UsedBeforeDefinition(read, f"Task `{task.name}` (which reads `{read}`)", other.cell)
            result.problems.append(Problem(task.cell, str(problem), line, task.name))
    result.upstream[task.name] = ups


def _note_untracked(task: StaticTask, scope: NotebookScope, result: CheckResult) -> None:
    """A note (not a problem) when the task reads what its key does not cover: see :mod:`dagnb.fingerprints.untracked`."""
    if task.volatile:
        return
    defaults = _default_nodes(task.node)
    tracked = [
        p
        for p in task.params
        if p in result.upstream.get(task.name, ())
        or (scope.makes_file(defaults[p]) if p in defaults else scope.holds_file(p))
    ]
    try:
        findings = find_untracked(task.node, scope, tracked)
    except Exception:  # noqa: BLE001 - a note that cannot be made is not a problem of the notebook
        return
    if findings:
        own = [f.line for f in findings if f.helper is None]
        message = f"note: {UntrackedWarning(task.name, findings, line_offset=1)}"
        result.notes.append(Problem(task.cell, message, (own[0] if own else task.node.lineno) + 1, task.name))


def _default_nodes(node: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.expr]:
    args = node.args
    positional = [*args.posonlyargs, *args.args]
    found = {a.arg: d for a, d in zip(positional[len(positional) - len(args.defaults) :], args.defaults)}
    found.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
    return found


def _find_cycles(result: CheckResult) -> None:
    """Cycles of the finished graph, reported where a kernel would refuse them (the last cell)."""
    tasks = result.tasks
    dag = nx.DiGraph()
    dag.add_nodes_from(tasks)
    for task in tasks.values():
        reads = [*task.params, *sorted(task.reads - set(task.params))]
        dag.add_edges_from((p, task.name) for p in reads if p in tasks and p != task.name)
        if task.name in task.params and task.name not in task.defaults:
            result.problems.append(Problem(task.cell, str(CycleError([task.name])), task.node.lineno + 1, task.name))
    for component in nx.strongly_connected_components(dag):
        if len(component) < 2:
            continue
        loop = [u for u, _ in nx.find_cycle(dag.subgraph(component))]  # in flow order: each feeds the next
        start = loop.index(min(loop))
        loop = loop[start:] + loop[:start]
        last = max(loop, key=lambda t: tasks[t].cell)
        hidden = [
            (reader, read) for read, reader in zip(loop, [*loop[1:], loop[0]]) if read not in tasks[reader].params
        ]
        problem = CycleError(loop, hidden)
        result.problems.append(Problem(tasks[last].cell, str(problem), tasks[last].node.lineno + 1, last))
