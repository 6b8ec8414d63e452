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
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from dagnb.fingerprints.scopes import FunctionNode, RuntimeScope, function_tree
from dagnb.fingerprints.scopes import stored as _stored

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


# ------------------------------------------------------------------------ the table

# Functions that draw from a process-wide generator; a seed call (right) makes them deterministic.
_GLOBAL_GENERATORS: dict[str, frozenset[str] | None] = {
    "random": frozenset(
        {
            "random",
            "randint",
            "randrange",
            "randbytes",
            "getrandbits",
            "choice",
            "choices",
            "shuffle",
            "sample",
            "uniform",
            "triangular",
            "gauss",
            "normalvariate",
            "lognormvariate",
            "expovariate",
            "vonmisesvariate",
            "gammavariate",
            "betavariate",
            "paretovariate",
            "weibullvariate",
            "binomialvariate",
        }
    ),
    "numpy.random": None,  # every function, but the generator classes and the state calls below
    "torch": frozenset(
        {
            "rand",
            "randn",
            "randint",
            "randperm",
            "rand_like",
            "randn_like",
            "randint_like",
            "normal",
            "bernoulli",
            "multinomial",
            "poisson",
        }
    ),
}
_SEEDS = {
    "random.seed": "random",
    "numpy.random.seed": "numpy.random",
    "torch.manual_seed": "torch",
    "torch.random.manual_seed": "torch",
}
_NUMPY_NOT_DRAWS = frozenset(
    {"Generator", "BitGenerator", "seed", "get_state", "set_state", "get_bit_generator", "set_bit_generator"}
)
# Generators that are deterministic when given a seed, and draw from the OS without one.
_SEEDABLE = frozenset(
    {
        "random.Random",
        "numpy.random.default_rng",
        "numpy.random.RandomState",
        "numpy.random.SeedSequence",
        "numpy.random.PCG64",
        "numpy.random.PCG64DXSM",
        "numpy.random.MT19937",
        "numpy.random.Philox",
        "numpy.random.SFC64",
    }
)
_NEVER_SEEDED = frozenset({"random.SystemRandom", "os.urandom", "os.getrandom", "uuid.uuid1", "uuid.uuid4"})

_CLOCK = frozenset(
    {
        "time.time",
        "time.time_ns",
        "datetime.datetime.now",
        "datetime.datetime.utcnow",
        "datetime.datetime.today",
        "datetime.date.today",
        "pandas.Timestamp.now",
        "pandas.Timestamp.today",
        "pandas.Timestamp.utcnow",
    }
)
_CLOCK_WITHOUT_TIME = {
    "time.localtime": 0,
    "time.gmtime": 0,
    "time.ctime": 0,
    "time.asctime": 0,
    "time.strftime": 1,
}  # the current time when given at most this many arguments
_CLOCK_BY_WORD = frozenset({"pandas.Timestamp", "pandas.to_datetime", "numpy.datetime64"})  # ("now"), ("today")

_ENVIRON = frozenset({"os.environ", "os.environb"})
_ENVIRON_CALLS = frozenset({"os.getenv", "os.getenvb"})
_ENVIRON_WRITES = frozenset({"update", "clear", "__setitem__", "__delitem__"})

_OPENERS = frozenset({"builtins.open", "io.open"})
_READERS = frozenset(
    {
        "numpy.load",
        "numpy.loadtxt",
        "numpy.genfromtxt",
        "numpy.fromfile",
        "joblib.load",
        "torch.load",
        "xarray.open_dataset",
        "xarray.open_dataarray",
        "xarray.open_mfdataset",
        "xarray.open_zarr",
        "xarray.load_dataset",
        "xarray.load_dataarray",
        "pyarrow.parquet.read_table",
        "pyarrow.csv.read_csv",
        "pyarrow.feather.read_table",
        "pyarrow.feather.read_feather",
    }
)
_READER_PREFIXES = ("pandas.read_", "polars.read_", "polars.scan_")
_NOT_FILE_READERS = ("pandas.read_sql", "pandas.read_gbq", "pandas.read_clipboard", "polars.read_database")
_PATH_KEYWORDS = frozenset(
    {
        "file",
        "path",
        "fname",
        "filename",
        "filepath_or_buffer",
        "path_or_buf",
        "io",
        "source",
        "filename_or_obj",
        "store",
        "f",
    }
)
_PATH_CLASSES = frozenset({"pathlib.Path", "pathlib.PurePath", "pathlib.PosixPath", "pathlib.WindowsPath"})
_PATH_BUILDERS = _PATH_CLASSES | {"os.path.join", "os.path.expanduser", "os.path.abspath", "os.fspath", "builtins.str"}

_WHAT = {
    "global": "the global random generator",
    "unseeded": "a random generator without a seed",
    "never": "a random source that takes no seed",
    "clock": "the clock",
    "environment": "the environment",
    "file": "a file that is not a `dagnb.file` input",
}
_CODE_WIDTH = 40


def _rule(dotted: str, call: ast.Call) -> tuple[str, str, str | None] | None:
    """``(kind, what, family)`` when calling ``dotted`` like ``call`` reads something untracked."""
    module, _, name = dotted.rpartition(".")
    draws = _GLOBAL_GENERATORS.get(module, frozenset())
    if (name in draws) if draws is not None else (name not in _NUMPY_NOT_DRAWS and dotted not in _SEEDABLE):
        return "random", _WHAT["global"], module
    if dotted in _SEEDABLE and not _seeded(call):
        return "random", _WHAT["unseeded"], None
    if dotted in _NEVER_SEEDED or module == "secrets":
        return "random", _WHAT["never"], None
    if dotted in _CLOCK or len(call.args) + len(call.keywords) <= _CLOCK_WITHOUT_TIME.get(dotted, -1):
        return "clock", _WHAT["clock"], None
    if dotted in _CLOCK_BY_WORD and call.args and _literal(call.args[0]) in ("now", "today"):
        return "clock", _WHAT["clock"], None
    if dotted in _ENVIRON_CALLS:
        return "environment", _WHAT["environment"], None
    return None


def _seeded(call: ast.Call) -> bool:
    given = [*call.args, *(k.value for k in call.keywords if k.arg in ("seed", "x", "entropy", "a"))]
    return bool(given) and not (isinstance(given[0], ast.Constant) and given[0].value is None)


def _reads_file(dotted: str) -> bool:
    if dotted in _OPENERS or dotted in _READERS:
        return True
    return dotted.startswith(_READER_PREFIXES) and not dotted.startswith(_NOT_FILE_READERS)


def _literal(node: ast.AST | None) -> Any:
    return node.value if isinstance(node, ast.Constant) else None


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    if len(text) <= _CODE_WIDTH or not isinstance(node, ast.Call):
        return text if len(text) <= _CODE_WIDTH else text[: _CODE_WIDTH - 3] + "..."
    return ast.unparse(node.func) + "(...)"


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


def _parameters(node: FunctionNode | ast.Lambda) -> list[str]:
    args = node.args
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    return names + [a.arg for a in (args.vararg, args.kwarg) if a is not None]


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

    def add(self, kind: str, what: str, node: ast.AST, family: str | None = None, path: str | None = None) -> None:
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
        return {param for param, arg in given if self._untracked_path(arg)}

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


def _mode(call: ast.Call, position: int) -> Any:
    """The ``mode`` argument of an ``open`` call: ``"r"`` when absent, ``None`` when not a literal."""
    for keyword in call.keywords:
        if keyword.arg == "mode":
            return _literal(keyword.value)
    if len(call.args) > position:
        return _literal(call.args[position])
    return "r"


def _reads(mode: Any) -> bool:
    return isinstance(mode, str) and "r" in mode


def _path_argument(call: ast.Call) -> ast.AST | None:
    if call.args:
        return None if isinstance(call.args[0], ast.Starred) else call.args[0]
    return next((k.value for k in call.keywords if k.arg in _PATH_KEYWORDS), None)


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


def task_findings(
    func: Callable[..., Any],
    tracked_params: Iterable[str],
    node: FunctionNode | None = None,
) -> list[Untracked]:
    """:func:`find_untracked` for a live task function; ``node`` is its tree when the caller parsed it."""
    tree = node if node is not None else function_tree(func.__code__)  # type: ignore[attr-defined]
    namespace = getattr(func, "__globals__", None)
    if tree is None or namespace is None:
        return []
    return find_untracked(tree, RuntimeScope(namespace), tracked_params)
