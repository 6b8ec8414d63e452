"""Fingerprints of code: a function's own AST plus what it references.

A task's code fingerprint covers its normalized source (comments, blank
lines, formatting and docstrings do not count), the Python minor version,
and, recursively, the notebook helpers and classes it calls, the modules it
uses (by version) and the values of the globals and closure variables it
reads. Each part is kept under a label (``code``, ``helper h``, ``global K``,
``module np``) so ``%dag why`` can name exactly what changed.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import sys
import textwrap
import types
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xxhash

from .hashing import _feed, _qualname, _safe_value, _text, value_digest

__all__ = [
    "CodeFingerprint",
    "code_fingerprint",
    "fixed_code_fingerprint",
    "function_digest",
    "helper_sources",
    "normalize_source",
    "source_digest",
]

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"



@dataclass(frozen=True)
class CodeFingerprint:
    """The fingerprint of a task's code and of each thing it references.

    ``parts`` maps a label (``code``, ``helper h``, ``global K``,
    ``module numpy``, ``python``) to its digest or version, so that
    ``%dag why`` can name exactly what changed.
    """

    digest: str
    parts: dict[str, str] = field(default_factory=dict)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def normalize_source(source: str) -> str:
    """Source with comments, blank lines, formatting and docstrings removed."""
    tree = _strip_docstrings(ast.parse(textwrap.dedent(source)))
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def source_digest(source: str) -> str:
    """Fingerprint of source code after AST normalization."""
    return xxhash.xxh3_128_hexdigest(normalize_source(source).encode())


# Keyed by function object, not by code object: CPython finds `def f(c=1)` and
# `def f(c=2)` equal as code, and a digest taken from one cell's source would
# then be reused for the other, so a restarted kernel computed other keys.
_DIGESTS: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _code_digest(code: types.CodeType) -> str:
    try:
        return source_digest(inspect.getsource(code))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return _bytecode_digest(code)


def _bytecode_digest(code: types.CodeType) -> str:
    """Fallback when no source is available (lambdas on one line, exec'd code)."""
    h = xxhash.xxh3_128(b"code")
    for part in (code.co_name, code.co_code, code.co_names, code.co_varnames, code.co_freevars):
        _feed(part, h)
    _feed((code.co_argcount, code.co_kwonlyargcount, code.co_flags), h)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            h.update(_bytecode_digest(const).encode())
        else:
            _feed(const, h)
    return h.hexdigest()


def function_digest(fn: Callable[..., Any]) -> str:
    """Fingerprint of a function's own code (not of what it references)."""
    try:
        return _DIGESTS[fn]
    except (KeyError, TypeError):
        digest = _code_digest(fn.__code__)
    try:
        _DIGESTS[fn] = digest
    except TypeError:  # not weak-referenceable: computed each time
        pass
    return digest


_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})


@functools.lru_cache(maxsize=8192)
def referenced_globals(code: types.CodeType) -> frozenset[str]:
    """Global names a code object (and every code object nested in it) reads or writes."""
    if not code.co_names:  # nothing to load by name: skip disassembly (no-op and pure tasks)
        names: set[str] = set()
    else:
        names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_OPS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= referenced_globals(const)
    return frozenset(str(n) for n in names)


def code_fingerprint(
    fn: Callable[..., Any], own_digest: str | None = None, skip: frozenset[str] = frozenset()
) -> CodeFingerprint:
    """Fingerprint ``fn``'s code plus every helper, global and module it references.

    Names are looked up in ``fn.__globals__`` (the notebook namespace for a
    ``%%task`` cell). ``skip`` names are left out (the task's own parameters
    are inputs, hashed elsewhere).
    """
    parts = {"python": PYTHON, "code": own_digest or function_digest(fn)}
    parts.update(_reference_parts(fn, skip, {id(fn)}))
    h = xxhash.xxh3_128(b"code")
    for label in sorted(parts):
        _text(h, label)
        _text(h, parts[label])
    return CodeFingerprint(h.hexdigest(), parts)


def fixed_code_fingerprint(
    fn: Callable[..., Any], own_digest: str | None = None, skip: frozenset[str] = frozenset()
) -> CodeFingerprint | None:
    """``fn``'s code fingerprint when nothing but its own code can change it, else ``None``.

    A function that reads no global (``skip`` names aside), no closure
    variable and wraps no other function has the fingerprint of its own
    code and the Python version, whatever the namespace holds: it can be
    computed once, when the task is defined.
    """
    code = getattr(fn, "__code__", None)
    if code is None or referenced_globals(code) - skip or code.co_freevars or getattr(fn, "__wrapped__", None):
        return None
    return code_fingerprint(fn, own_digest, skip)


def _reference_parts(fn: Any, skip: frozenset[str], seen: set[int]) -> dict[str, str]:
    namespace = getattr(fn, "__globals__", {})
    parts: dict[str, str] = {}
    for name in sorted(referenced_globals(fn.__code__) - skip):
        if name in namespace:
            label, digest = _describe(name, namespace[name], namespace, seen)
            parts[label] = digest
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            label, digest = _describe(name, cell.cell_contents, namespace, seen)
        except ValueError:  # empty cell: the closure variable is not bound yet
            continue
        parts["closure " + label.split(" ", 1)[1]] = digest
    wrapped = getattr(fn, "__wrapped__", None)
    if wrapped is not None and hasattr(wrapped, "__code__"):
        parts["wrapped"] = _helper_digest(wrapped, seen)
    return parts


def _describe(name: str, obj: Any, namespace: Mapping[str, Any], seen: set[int]) -> tuple[str, str]:
    if isinstance(obj, types.ModuleType):
        return f"module {name}", _module_version(obj.__name__)
    if _is_local(obj, namespace):
        if isinstance(obj, type):
            return f"helper {name}", _class_digest(obj, seen)
        return f"helper {name}", _helper_digest(obj, seen)
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(obj, "__module__", None) or "builtins"
        return f"module {name}", f"{module} {_module_version(module)}"
    return f"global {name}", value_digest(name, obj)


def _is_local(obj: Any, namespace: Mapping[str, Any]) -> bool:
    """Defined in the notebook (or the module) the task lives in."""
    if isinstance(obj, types.FunctionType):
        return obj.__globals__ is namespace
    if isinstance(obj, type):
        if obj.__module__ == namespace.get("__name__", "__main__"):
            return True
        # exec'd into a namespace without __name__: its methods still tell where it lives
        return any(getattr(v, "__globals__", None) is namespace for v in vars(obj).values())
    return False


def _helper_digest(fn: Any, seen: set[int]) -> str:
    if id(fn) in seen:
        return "recursive"
    seen = seen | {id(fn)}
    h = xxhash.xxh3_128(function_digest(fn).encode())
    for label, digest in sorted(_reference_parts(fn, frozenset(), seen).items()):
        _text(h, label)
        _text(h, digest)
    _feed(_safe_value(fn.__defaults__), h)
    return h.hexdigest()


def _class_digest(cls: type, seen: set[int]) -> str:
    if id(cls) in seen:
        return "recursive"
    seen = seen | {id(cls)}
    h = xxhash.xxh3_128(b"class")
    _text(h, cls.__qualname__)
    _feed([_qualname(base) for base in cls.__bases__], h)
    for attr, value in sorted(vars(cls).items()):
        if attr.startswith("__") and attr not in ("__init__", "__call__", "__post_init__"):
            continue
        _text(h, attr)
        func = getattr(value, "__func__", value)  # staticmethod, classmethod
        if isinstance(func, types.FunctionType):
            _text(h, _helper_digest(func, seen))
        elif isinstance(value, property):
            _feed([_helper_digest(f, seen) for f in (value.fget, value.fset) if f], h)
        else:
            _text(h, _safe_value(value))
    return h.hexdigest()


def helper_sources(fn: Callable[..., Any], skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """What ``dagnb check --plan`` needs to see a helper edit without running the notebook.

    Maps the name of every notebook function ``fn`` calls, directly or not,
    to the digest of its own code, and ``global NAME`` to the value digest
    of each global those helpers read. Not part of any key: recorded with a
    cache entry.
    """
    found: dict[str, str] = {}
    stack: list[tuple[Any, frozenset[str], bool]] = [(fn, skip, False)]
    while stack:
        current, skipped, is_helper = stack.pop()
        namespace = getattr(current, "__globals__", {})
        for name in sorted(referenced_globals(current.__code__) - skipped):
            if name not in namespace:
                continue
            obj = namespace[name]
            if isinstance(obj, types.FunctionType) and obj.__globals__ is namespace:
                if name not in found:
                    found[name] = function_digest(obj)
                    stack.append((obj, frozenset(), True))
            elif is_helper and not isinstance(obj, (types.ModuleType, type, types.BuiltinFunctionType,
                                                    types.FunctionType)):  # a library's function (IPython's `open`)
                found.setdefault(f"global {name}", value_digest(name, obj))
    return found


@functools.lru_cache(maxsize=1024)
def _module_version(module_name: str) -> str:
    root = module_name.split(".")[0]
    module = sys.modules.get(root)
    version = getattr(module, "__version__", None)
    if version is None and root not in sys.stdlib_module_names:
        try:
            from importlib.metadata import PackageNotFoundError, version as dist_version

            version = dist_version(root)
        except (PackageNotFoundError, ValueError):
            version = None
    return f"{root} {version or PYTHON}"
