"""What a task is: its function, its parameters and where it was defined, with its options.

A task is a function; its name is the task's name and the name of the value
it produces, its parameters name its inputs (an :class:`Input` says how
each is fed, :mod:`dagnb.graph` resolves them). A :class:`TaskSpec` is
built from a plain function (:func:`spec_from_function`) or from a
``%%task`` cell, whose source is checked first (:func:`parse_task_cell`).

Invariants:

* A spec is immutable; the fingerprint of its own code is taken once, at
  definition, from the AST-normalized source.
* Only a plain function with named parameters becomes a task: anything
  else is refused with a message that names it and says how to define it.
"""

from __future__ import annotations

import ast
import inspect
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

from dagnb.errors import TaskDefinitionError
from dagnb.fingerprints.code import (
    CodeFingerprint,
    fixed_code_fingerprint,
    function_digest,
    global_reads,
    source_digest,
)
from dagnb.options import TaskOptions

__all__ = ["Input", "InputKind", "TaskSpec", "parse_task_cell", "parse_task_module", "spec_from_function"]

InputKind = Literal["upstream", "constant", "external"]
_NO_DEFAULT = inspect.Parameter.empty


@dataclass(frozen=True)
class TaskSpec(TaskOptions):
    """One task: a function, its parameters and where it was defined, with its options.

    The options (``volatile``, ``retries``, ``timeout``, ``save``, ``when``,
    ``map``) are the fields of :class:`~dagnb.options.TaskOptions`, declared
    there once and given by keyword. ``code_digest`` is the AST-normalized
    fingerprint of the function's own source, computed once at definition;
    so are ``is_async`` and ``fixed_code``
    (:func:`~dagnb.fingerprints.code.fixed_code_fingerprint`), which every run
    asks for.
    """

    name: str
    func: Callable[..., Any] = field(repr=False, compare=False)
    params: tuple[str, ...]
    defaults: Mapping[str, Any] = field(repr=False, compare=False)
    code_digest: str
    cell_id: str | None = None

    is_async: bool = field(init=False, repr=False, compare=False)  # an `async def` function
    fixed_code: CodeFingerprint | None = field(init=False, repr=False, compare=False)  # None: found at each run

    def __post_init__(self) -> None:
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.func))
        fixed = fixed_code_fingerprint(self.func, self.code_digest, frozenset(self.params))
        object.__setattr__(self, "fixed_code", fixed)

    @property
    def options(self) -> TaskOptions:
        """The task's options alone."""
        return TaskOptions(**TaskOptions.values(self))

    def global_names(self, specs: Mapping[str, TaskSpec]) -> frozenset[str]:
        """The global names its code, or a notebook helper it calls, reads (its parameters aside); the
        helpers' names are not followed where they are tasks of ``specs``."""
        if self.fixed_code is not None:  # it reads no global
            return frozenset()
        return global_reads(self.func, self.params, specs)

    def upstream_in(self, specs: Mapping[str, TaskSpec]) -> list[str]:
        """The tasks among ``specs`` this task reads: parameters first, then the tasks whose variable
        its code, or a notebook helper it calls, reads as a global (hidden)."""
        found = [p for p in self.params if p in specs and p != self.name]
        reads = self.global_names(specs)
        if reads:
            params = set(self.params)
            found += sorted(g for g in reads if g in specs and g not in params and g != self.name)
        return found


@dataclass(frozen=True)
class Input:
    """How one parameter of a task is fed."""

    param: str
    kind: InputKind
    value: Any = field(default=None, repr=False, compare=False)


def spec_from_function(
    func: Callable[..., Any],
    *,
    source: str | None = None,
    cell_id: str | None = None,
    options: TaskOptions | None = None,
    parsed: ast.Module | None = None,
    **keywords: Any,
) -> TaskSpec:
    """Build a :class:`TaskSpec` from a plain function, with ``options`` or the same as keywords (``retries=2``).

    ``parsed`` is ``source`` already parsed (:func:`parse_task_module`), so it
    is not parsed again; its docstrings are removed in place.

    Raises:
        TaskDefinitionError: the function cannot be a task, or an option's value does not fit it.
        UnknownOption: a keyword that is no option.
    """
    if options is None:
        options = TaskOptions.from_keywords(keywords)
    elif keywords:
        options = TaskOptions.from_keywords({**options.values(), **keywords})
    if not isinstance(func, types.FunctionType):  # a callable object, a builtin, a partial: no code of its own
        name = getattr(func, "__name__", None) or type(func).__name__
        raise TaskDefinitionError(
            f"it is a `{type(func).__qualname__}`, not a function, so it has no code of its own to fingerprint.",
            f"Define it with `def {name}(...)`, calling the object inside if needed.",
            name,
        )
    name = func.__name__
    params, defaults = _parameters(func, name)
    digest = source_digest(source, parsed) if source is not None else function_digest(func)
    options.check(name, params)
    return TaskSpec(name, func, tuple(params), defaults, digest, cell_id, **options.values())


def _parameters(func: types.FunctionType, name: str) -> tuple[list[str], dict[str, Any]]:
    """The names of ``func``'s parameters, and the defaults of those that have one.

    A plain function's are read from its code, as ``inspect.signature`` reads
    them (which costs more than the rest of a definition's bookkeeping); a
    function that says otherwise (``__wrapped__``, ``__signature__``) goes
    through ``inspect.signature``, which follows it.
    """
    if "__wrapped__" in func.__dict__ or "__signature__" in func.__dict__:
        return _parameters_of_signature(func, name)
    code = func.__code__
    count = code.co_argcount + code.co_kwonlyargcount
    names = list(code.co_varnames[:count])
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
        star = "*" if code.co_flags & inspect.CO_VARARGS else "**"
        _unnamed(star, code.co_varnames[count], name)
    positional = names[: code.co_argcount]
    defaults = dict(zip(positional[len(positional) - len(func.__defaults__ or ()) :], func.__defaults__ or ()))
    defaults.update(func.__kwdefaults__ or {})
    return names, defaults


def _parameters_of_signature(func: Callable[..., Any], name: str) -> tuple[list[str], dict[str, Any]]:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise TaskDefinitionError(f"its signature cannot be read ({exc}).", "Define it with `def`.", name) from None
    params, defaults = [], {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            _unnamed("*" if param.kind is param.VAR_POSITIONAL else "**", param.name, name)
        params.append(param.name)
        if param.default is not _NO_DEFAULT:
            defaults[param.name] = param.default
    return params, defaults


def _unnamed(star: str, param: str, name: str) -> NoReturn:
    raise TaskDefinitionError(
        f"it takes `{star}{param}`, and a task's inputs must be named.", "List each input as its own parameter.", name
    )


def parse_task_cell(source: str, line_offset: int = 0) -> ast.FunctionDef | ast.AsyncFunctionDef:
    """Check that a ``%%task`` cell holds exactly one function definition; that definition.

    ``line_offset`` is added to line numbers in messages: 1 when ``source``
    is the body of a cell whose first line is ``%%task``.
    """
    return parse_task_module(source, line_offset)[1]


def parse_task_module(source: str, line_offset: int = 0) -> tuple[ast.Module, ast.FunctionDef | ast.AsyncFunctionDef]:
    """:func:`parse_task_cell`, with the whole cell parsed (compiled and fingerprinted from it, not parsed again)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        where = f"line {exc.lineno + line_offset}" if exc.lineno else "the cell"
        raise TaskDefinitionError(
            f"The `%%task` cell has a syntax error at {where}: {exc.msg}.",
            "Fix the code; the previous definition of the task is kept until then.",
        ) from None
    body = [node for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom))]
    funcs = [node for node in body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if len(funcs) != 1 or len(body) != 1:
        found = ", ".join(_describe_statement(node, line_offset) for node in body) or "nothing"
        raise TaskDefinitionError(
            f"A `%%task` cell holds exactly one function definition (imports may precede it); found: {found}.",
            "Put other code in an ordinary cell, and one `def` per `%%task` cell.",
        )
    return tree, funcs[0]


_STATEMENTS = {
    "FunctionDef": "a function definition",
    "AsyncFunctionDef": "a function definition",
    "ClassDef": "a class definition",
    "Assign": "an assignment",
    "AugAssign": "an assignment",
    "AnnAssign": "an assignment",
    "Expr": "an expression",
}


def _describe_statement(node: ast.stmt, line_offset: int) -> str:
    """``an assignment (line 3)``: a statement as a user would name it."""
    kind = _STATEMENTS.get(type(node).__name__, f"a `{type(node).__name__.lower()}` statement")
    return f"{kind} (line {node.lineno + line_offset})"
