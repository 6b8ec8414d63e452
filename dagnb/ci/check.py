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

Each cell is read alone by :mod:`dagnb.ci.check_cells`; this module walks
the cells in order (parameters, tasks used above their cell, cycles, notes)
and fills a :class:`dagnb.ci.findings.CheckResult`.

Positions are 1-based over all cells (markdown included), as a notebook
shows them, and lines are 1-based within the cell's code.

Limits (static analysis): names bound by ``from m import *`` or inside an
unknown cell magic are unknown, so an unresolved parameter is not reported
after such a cell; names bound conditionally count as bound.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

from dagnb.ci.check_cells import Cell, parse_cell
from dagnb.ci.findings import CheckResult, Problem, StaticTask
from dagnb.ci.notebook_file import notebook_cells, notebook_language, read_notebook
from dagnb.errors import CycleError, UnresolvedParameter, UntrackedWarning, UsedBeforeDefinition, close_matches
from dagnb.fingerprints.scopes import NotebookScope
from dagnb.fingerprints.untracked import find_untracked

__all__ = ["CheckResult", "Problem", "StaticTask", "check_notebook", "check_source", "notebook_language"]


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
    parsed: list[Cell] = []
    for number, (kind, source) in enumerate(cells, 1):
        if kind == "code" and source.strip():
            parsed.append(parse_cell(number, source, result))
    _resolve(parsed, result)
    _find_cycles(result)
    return result


# --------------------------------------------------------------- resolving


def _resolve(cells: list[Cell], result: CheckResult) -> None:
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
