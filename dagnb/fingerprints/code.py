"""Fingerprints of code: a function's own code plus everything it references.

A task's code fingerprint covers its normalized source, the Python minor
version and, recursively, every piece of *user code* it reaches: notebook
helpers and classes (with their base classes, methods, defaults and
keyword-only defaults), functions, classes and module state of local modules
(``helpers.py`` beside the notebook, a script brought in with ``%run``), the
values of the globals and closure variables that code reads, and the version
of each library it uses. Each part is kept under a label (``code``,
``helper h``, ``helper helpers.scale``, ``global K``, ``module np``) so
``%dag why`` can name exactly what changed.

Invariants:

* *User code* is any code that is not a library's: a module counts as a
  library when its file lies in the standard library or an installed
  distribution (``site-packages``); the notebook, ``%run`` scripts, modules
  beside the notebook and editable checkouts are user code, keyed by their
  code. Libraries are keyed by their distribution's version.
* The key follows the code that runs: code from a real file is fingerprinted
  by its compiled bytecode (comments and layout do not count), never by the
  file on disk, which may have been edited since it was imported. When the
  file and the loaded code differ, the user is told once.
* Nothing is keyed by ``id()``: a value that cannot be fingerprinted makes
  the fingerprint *untracked* (listed in :attr:`CodeFingerprint.untracked`),
  and the task that reads it always reruns.
* Code carried inside values (a function in a dict, an instance of a
  notebook class, a partial) is fingerprinted by its code through
  :func:`value_code_token`, which the value fingerprint calls.
"""

from __future__ import annotations
import __future__

import ast
import dis
import functools
import importlib
import importlib.util
import inspect
import linecache
import os
import site
import sys
import sysconfig
import textwrap
import threading
import time
import tokenize
import types
import weakref
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xxhash

from dagnb._moved import named_as_before
from dagnb.errors import LocalModuleChangedWarning, Unfingerprintable, warn_at
from dagnb.fingerprints.dispatch import _feed
from dagnb.fingerprints.stream import _qualname, _text
from dagnb.fingerprints.values import UNTRACKED, fingerprint
from dagnb.keyparts import Part, rendered

__all__ = [
    "CodeFingerprint",
    "Untracked",
    "code_fingerprint",
    "fixed_code_fingerprint",
    "function_digest",
    "global_reads",
    "helper_sources",
    "module_version",
    "normalize_source",
    "source_digest",
    "untracked_value",
    "value_code_token",
]

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class Untracked:
    """Something a key should cover but cannot: a value with no fingerprint, and why."""

    what: str  # "the global `conn`", "the default of `path`"
    type_name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what} cannot be fingerprinted"


@dataclass(frozen=True)
class CodeFingerprint:
    """The fingerprint of a task's code and of each thing it references.

    ``parts`` maps a label (``code``, ``helper h``, ``global K``,
    ``module numpy``, ``python``) to its digest or version, so that
    ``%dag why`` can name exactly what changed. ``untracked`` names what
    the code reads but dagnb cannot fingerprint: such a task always reruns.
    """

    digest: str
    parts: dict[str, str] = field(default_factory=dict)
    untracked: tuple[Untracked, ...] = ()


# --------------------------------------------------------------------- own code


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


def _in_memory_source(code: types.CodeType) -> bool:
    """Whether the code's source lives in memory only (a notebook cell, as IPython registers it).

    Such source cannot change under the code; a real file can (edited after
    import), so code from a file is fingerprinted by its bytecode instead.
    """
    entry = linecache.cache.get(code.co_filename)
    return entry is not None and len(entry) == 4 and entry[1] is None


def _code_digest(code: types.CodeType) -> str:
    if _in_memory_source(code):
        try:  # the block at the code's first line, read from linecache (inspect would search every module)
            lines = linecache.cache[code.co_filename][2]
            return source_digest("".join(inspect.getblock(lines[code.co_firstlineno - 1 :])))
        except (IndexError, KeyError, TypeError, SyntaxError, IndentationError, tokenize.TokenError):
            pass
    return _bytecode_digest(code)


# `from __future__` flags a compiler passes on (IPython's, to `%run` scripts) change no bytecode by themselves
_FUTURE_FLAGS = functools.reduce(
    lambda flags, name: flags | getattr(__future__, name).compiler_flag, __future__.all_feature_names, 0
)


@functools.lru_cache(maxsize=16384)  # equal code objects have equal bytecode: safe to share
def _bytecode_digest(code: types.CodeType) -> str:
    """The code as compiled: the same whatever comments, blank lines or layout its source had."""
    h = xxhash.xxh3_128(b"code")
    for part in (code.co_name, code.co_code, code.co_names, code.co_varnames, code.co_freevars):
        _feed(part, h)
    _feed((code.co_argcount, code.co_kwonlyargcount, code.co_flags & ~_FUTURE_FLAGS), h)
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


# ------------------------------------------------------------ where code lives


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    """Directories whose modules are libraries: the standard library and every site directory."""
    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        paths.update(site.getsitepackages())
    except AttributeError:  # some virtualenv versions
        pass
    paths.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else None)
    return tuple(sorted(os.path.realpath(p) + os.sep for p in paths if p))


@functools.lru_cache(maxsize=4096)
def _is_library_file(path: str) -> bool:
    real = os.path.realpath(path)
    parts = set(real.split(os.sep))
    return "site-packages" in parts or "dist-packages" in parts or real.startswith(_library_roots())


def is_user_module(module: types.ModuleType) -> bool:
    """Whether ``module`` is the user's code (keyed by code) rather than a library (keyed by version)."""
    name = getattr(module, "__name__", None) or ""
    if name == "__main__":
        return True
    if name == "dagnb" or name.startswith("dagnb."):
        return False
    path = getattr(module, "__file__", None)
    if isinstance(path, str):
        return not _is_library_file(path)
    locations = list(getattr(module, "__path__", None) or ())  # a namespace package
    if locations:
        return not any(_is_library_file(p) for p in locations)
    if name in sys.builtin_module_names or getattr(getattr(module, "__spec__", None), "origin", None) == "frozen":
        return False
    return True  # made at run time (types.ModuleType): nobody installed it


def _is_user_function(fn: Any) -> bool:
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    return module is None or is_user_module(module)  # no module: exec'd code, a cell, a script


def _is_user_class(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    if module is not None and module.__name__ != "builtins":
        return is_user_module(module)
    # exec'd into a namespace without __name__ (module `builtins`): its methods tell where it lives
    return any(isinstance(v, types.FunctionType) for v in vars(cls).values())


_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def is_immutable(value: Any) -> bool:
    """A value nothing can change in place: ``3``, ``"a"``, ``("a", 2)``."""
    if isinstance(value, (tuple, frozenset)):
        return all(is_immutable(v) for v in value)
    return type(value) in _PLAIN


def same_key_while_bound(obj: Any, namespace: Mapping[str, Any]) -> bool:
    """Whether ``obj``'s part of a key cannot change as long as a name stays bound to this very object.

    True for immutable values, library modules, classes and functions (a
    key holds their version), and notebook functions of ``namespace`` with
    no closure and immutable defaults, whose own global reads a caller
    checks too (their code object and defaults are compared by identity).
    False for anything a cell can change in place: data, user classes and
    modules (their state counts), functions of other modules.
    """
    if is_immutable(obj):
        return True
    if isinstance(obj, types.ModuleType):
        return not is_user_module(obj)
    if isinstance(obj, types.FunctionType):
        if not _is_user_function(obj):
            return True
        defaults = (*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values())
        return obj.__globals__ is namespace and obj.__closure__ is None and is_immutable(defaults)
    if isinstance(obj, type):
        return not _is_user_class(obj)
    return isinstance(obj, types.BuiltinFunctionType)


# ------------------------------------------------------------ what code reads

_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})
_ATTR_OPS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})


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


@functools.lru_cache(maxsize=8192)
def _attribute_reads(code: types.CodeType) -> Mapping[str, frozenset[str] | None]:
    """For each global name, the attributes read right after it (``helpers.scale``), or
    ``None`` when the object itself is used otherwise (passed on, stored into)."""
    reads: dict[str, set[str] | None] = {}
    if code.co_names:
        instructions = list(dis.get_instructions(code))
        for ins, after in zip(instructions, [*instructions[1:], None]):
            if ins.opname not in ("LOAD_GLOBAL", "LOAD_NAME"):
                continue
            name, known = str(ins.argval), reads.get(str(ins.argval), set())
            if after is not None and after.opname in _ATTR_OPS and known is not None:
                reads[name] = known | {str(after.argval)}
            else:
                reads[name] = None
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            for name, attrs in _attribute_reads(const).items():
                known = reads.get(name, set())
                reads[name] = None if known is None or attrs is None else known | attrs
    return {n: None if a is None else frozenset(a) for n, a in reads.items()}


_Import = tuple[str, "tuple[str, ...] | None"]  # (module, names taken from it, or None for the module itself)


@functools.lru_cache(maxsize=8192)
def _imports(code: types.CodeType) -> tuple[_Import, ...]:
    """Absolute imports inside the code, each with what the code takes from the module.

    ``from m import f, g`` takes ``f`` and ``g``; ``import m`` takes the
    attributes read right after the local name it binds (``m.f``), or, when
    the module object is used otherwise, the whole module (``None``).
    """
    found: list[_Import] = []
    instructions = list(dis.get_instructions(code)) if code.co_names else []
    for i, ins in enumerate(instructions):
        if ins.opname != "IMPORT_NAME" or i < 2 or instructions[i - 2].argval != 0:  # level 0: absolute
            continue
        names = instructions[i - 1].argval
        if isinstance(names, tuple) and "*" not in names:
            found.append((str(ins.argval), tuple(names)))
            continue
        stored = instructions[i + 1] if i + 1 < len(instructions) else None
        taken = None
        if stored is not None and stored.opname == "STORE_FAST" and "." not in str(ins.argval):
            taken = _local_attribute_reads(instructions, str(stored.argval))
        found.append((str(ins.argval), taken))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            found.extend(_imports(const))
    return tuple(found)


def _local_attribute_reads(instructions: list[dis.Instruction], local: str) -> tuple[str, ...] | None:
    """The attributes read right after each load of the local variable ``local``; None if used otherwise."""
    taken: set[str] = set()
    for ins, after in zip(instructions, [*instructions[1:], None]):
        if ins.argval != local or not ins.opname.startswith("LOAD_FAST"):
            continue
        if after is None or after.opname not in _ATTR_OPS:
            return None
        taken.add(str(after.argval))
    return tuple(sorted(taken))


def _code_of(fn: Any) -> types.CodeType | None:
    code = getattr(fn, "__code__", None)
    return code if isinstance(code, types.CodeType) else None


def _functions_reached(fn: Any, follow: Callable[[Any, types.CodeType], Iterable[Any]]) -> None:
    """Visit ``fn`` and, once each, the functions ``follow(function, its code)`` names, depth first."""
    stack, seen = [fn], set()
    while stack:
        current = stack.pop()
        code = _code_of(current)
        if code is None or id(current) in seen:
            continue
        seen.add(id(current))
        stack.extend(follow(current, code))


def global_reads(fn: Callable[..., Any], skip: Iterable[str] = (), tasks: Container[str] = ()) -> frozenset[str]:
    """Global names ``fn`` reads, directly or through the notebook functions it calls (``skip`` aside).

    Used to find tasks whose variable another task reads without a parameter.
    Names in ``tasks`` are not followed: before a task first runs, its name
    holds its function, which is not a helper.
    """
    skipped, found = frozenset(skip), set()

    def follow(current: Any, code: types.CodeType) -> list[Any]:
        names = referenced_globals(code) - (skipped if current is fn else frozenset())
        found.update(names)
        helpers = (current.__globals__.get(name) for name in names if name not in tasks)
        return [obj for obj in helpers if isinstance(obj, types.FunctionType) and obj.__globals__ is fn.__globals__]

    _functions_reached(fn, follow)
    return frozenset(found)


# --------------------------------------------------------------------- the walk

_SKIPPED_CLASS_ATTRS = frozenset(
    {
        "__dict__",
        "__weakref__",
        "__module__",
        "__doc__",
        "__qualname__",
        "__firstlineno__",
        "__static_attributes__",
        "__annotations__",
        "__annotate__",
        "__annotate_func__",
        "__annotations_cache__",
        "__slotnames__",
        "__abstractmethods__",
        "_abc_impl",
        "__parameters__",
        "__orig_bases__",
        "__dataclass_fields__",
        "__dataclass_params__",
        "__match_args__",
    }
)  # layout, caches filled in by pickling or abc, and what generated methods already carry


class _Walk:
    """One walk over the code a function reaches, with the path it came by (to stop at cycles).

    ``strict`` is for code inside a value: a value that cannot be
    fingerprinted raises instead of being listed as untracked, and code counts
    by its bytecode even where its source is known, because a value's
    fingerprint is also taken in worker processes, where notebook cells have
    no source, and must come out the same there.
    """

    def __init__(self, strict: bool = False, fingerprint_of: Callable[[Any], str] = fingerprint) -> None:
        self.strict = strict
        self.fingerprint_of = fingerprint_of  # a session's epoch passes its own, which takes each value once
        self.untracked: list[Untracked] = []

    # -- values

    def value(self, label: str, value: Any) -> str:
        try:
            return self.fingerprint_of(value)
        except Unfingerprintable as exc:
            if self.strict:
                raise
            found = Untracked(label, _qualname(type(value)), exc.reason)
            if found not in self.untracked:
                self.untracked.append(found)
            return f"{UNTRACKED} {_qualname(type(value))}"

    # -- references

    def references(self, fn: Any, skip: frozenset[str], path: frozenset[int]) -> dict[Part, str]:
        code = fn.__code__
        namespace = getattr(fn, "__globals__", {})
        parts: dict[Part, str] = {}
        attributes = _attribute_reads(code)
        for name in sorted(referenced_globals(code) - skip):
            if name in namespace:
                parts.update(self.describe(name, namespace[name], attributes.get(name), path))
        for module, names in _imports(code):
            parts.update(self.imported(module, names, path))
        for name, cell in zip(code.co_freevars, fn.__closure__ or ()):
            try:
                contents = cell.cell_contents
            except ValueError:  # empty cell: the closure variable is not bound yet
                continue
            for part, digest in self.describe(name, contents, None, path, "closure variable").items():
                parts[Part("closure", part.name)] = digest
        wrapped = getattr(fn, "__wrapped__", None)
        if _code_of(wrapped) is not None:
            parts[Part("wrapped")] = self.helper(wrapped, path)
        return parts

    def describe(
        self, name: str, obj: Any, attributes: frozenset[str] | None, path: frozenset[int], kind: str = "global"
    ) -> dict[Part, str]:
        """The parts a reference to ``obj`` under ``name`` adds (a module's attributes each count).

        ``kind`` is what ``name`` is to the code, for messages: a global, a closure variable.
        """
        if isinstance(obj, types.ModuleType):
            if not is_user_module(obj):
                return {Part("module", name): module_version(obj.__name__)}
            if attributes is None:
                return {Part("helper", name): self.module(obj, path)}
            parts: dict[Part, str] = {}
            for attr in sorted(attributes):
                try:
                    found = getattr(obj, attr)
                except Exception:  # absent, or a module __getattr__ that raises: the task will find out
                    parts[Part("global", f"{name}.{attr}")] = "missing"
                    continue
                parts.update(self.describe(f"{name}.{attr}", found, None, path))
            return parts
        part, digest = self.describe_object(name, obj, path, kind)
        return {part: digest}

    def describe_object(self, name: str, obj: Any, path: frozenset[int], kind: str = "global") -> tuple[Part, str]:
        if isinstance(obj, type):
            if _is_user_class(obj):
                return Part("helper", name), self.klass(obj, path)
            return Part("module", name), f"{named_as_before(obj.__module__)} {module_version(obj.__module__)}"
        if isinstance(obj, types.FunctionType):
            if _is_user_function(obj):
                return Part("helper", name), self.helper(obj, path)
            module = obj.__module__ or "builtins"
            return Part("module", name), f"{named_as_before(module)} {module_version(module)}"
        if isinstance(obj, types.BuiltinFunctionType):
            module = getattr(obj, "__module__", None) or "builtins"
            return Part("module", name), f"{module} {module_version(module)}"
        wrapped = _user_wrapped(obj)
        if wrapped is not None:  # functools.lru_cache, cache and other wrappers of a user function
            return Part("helper", name), f"{_qualname(type(obj))} {self.helper(wrapped, path)}"
        return Part("global", name), self.value(f"the {kind} `{name}`", obj)

    def imported(self, module_name: str, names: tuple[str, ...] | None, path: frozenset[int]) -> dict[Part, str]:
        """An ``import`` inside the code: user modules count by what is taken from them."""
        module = _user_module_named(module_name)
        if module is None:
            return {}
        if names is None:
            return {Part("helper", module_name): self.module(module, path)}
        parts: dict[Part, str] = {}
        for attr in names:
            obj = getattr(module, attr, None)
            if obj is None:
                obj = sys.modules.get(f"{module_name}.{attr}")
            if obj is not None:
                parts.update(self.describe(f"{module_name}.{attr}", obj, None, path))
        return parts

    # -- user code

    def helper(self, fn: Any, path: frozenset[int]) -> str:
        if id(fn) in path:
            return "recursive"
        path = path | {id(fn)}
        _warn_if_edited_on_disk(fn)
        own = _bytecode_digest(fn.__code__) if self.strict else function_digest(fn)
        h = xxhash.xxh3_128(own.encode())
        _feed_parts(h, self.references(fn, frozenset(), path))
        for what, defaults in (("defaults", fn.__defaults__), ("keyword-only defaults", fn.__kwdefaults__)):
            if defaults:
                _text(h, what)
                _text(h, self.value(f"the {what} of `{fn.__qualname__}`", defaults))
        return h.hexdigest()

    def klass(self, cls: type, path: frozenset[int]) -> str:
        if id(cls) in path:
            return "recursive"
        path = path | {id(cls)}
        h = xxhash.xxh3_128(b"class")
        _text(h, cls.__qualname__)
        for base in [*cls.__bases__, type(cls)]:  # base classes and the metaclass count by their code
            _text(
                h,
                self.klass(base, path)
                if _is_user_class(base)
                else f"{_qualname(base)} {module_version(base.__module__)}",
            )
        for attr, value in sorted(vars(cls).items()):
            if attr in _SKIPPED_CLASS_ATTRS:
                continue
            _text(h, attr)
            _text(h, self.member(f"{cls.__qualname__}.{attr}", value, path))
        return h.hexdigest()

    def member(self, name: str, value: Any, path: frozenset[int]) -> str:
        """A class attribute: methods (of any kind) and properties by their code, the rest by value."""
        func = getattr(value, "__func__", value)  # staticmethod, classmethod
        func = getattr(func, "func", func) if isinstance(func, functools.cached_property) else func
        if isinstance(func, types.FunctionType):
            return self.helper(func, path)
        if isinstance(value, property):
            return ",".join(self.helper(f, path) if _code_of(f) else "-" for f in (value.fget, value.fset, value.fdel))
        return "".join(self.describe(name, value, None, path).values())

    def module(self, module: types.ModuleType, path: frozenset[int]) -> str:
        """A whole user module: each of its functions and classes by code, its other state by value."""
        if id(module) in path:
            return "recursive"
        path = path | {id(module)}
        h = xxhash.xxh3_128(b"module")
        _text(h, module.__name__)
        for attr, value in sorted(vars(module).items()):
            if attr.startswith("__") and attr.endswith("__"):
                continue
            _feed_parts(h, self.describe(attr, value, None, path))
        return h.hexdigest()


def _feed_parts(h: Any, parts: dict[Part, str]) -> None:
    """Each part's label and digest into ``h``, in the order of the labels as written (digests depend on it)."""
    for label, digest in sorted(rendered(parts.items()).items()):
        _text(h, label)
        _text(h, digest)


def _user_wrapped(obj: Any) -> Any:
    """The user function a wrapper object (``lru_cache``, ``cache``) wraps, else ``None``."""
    if isinstance(obj, (types.FunctionType, type)) or not callable(obj):
        return None
    try:
        wrapped = inspect.getattr_static(obj, "__wrapped__", None)
    except Exception:
        return None
    if wrapped is None:
        wrapped = obj.__dict__.get("__wrapped__") if isinstance(getattr(obj, "__dict__", None), dict) else None
    return wrapped if isinstance(wrapped, types.FunctionType) and _is_user_function(wrapped) else None


def user_modules(fn: Callable[..., Any]) -> list[types.ModuleType]:
    """The user modules with a file (beside the notebook; not ``__main__``) whose code ``fn`` reaches.

    A worker process must run the code the kernel loaded, not import the file
    again (it may have been edited since): remote backends send these by value.
    """
    found: dict[str, types.ModuleType] = {}

    def follow(current: Any, code: types.CodeType) -> list[Any]:
        namespace = getattr(current, "__globals__", {})
        objects = [namespace.get(n) for n in referenced_globals(code)]
        objects += [sys.modules.get(m) for m, _ in _imports(code)]
        more = [obj for obj in objects if isinstance(obj, types.FunctionType)]
        for obj in objects:
            home = obj if isinstance(obj, types.ModuleType) else sys.modules.get(getattr(obj, "__module__", "") or "")
            if (
                isinstance(home, types.ModuleType)
                and getattr(home, "__file__", None)
                and is_user_module(home)
                and home.__name__ not in found
            ):
                found[home.__name__] = home
                more += [v for v in vars(home).values() if isinstance(v, types.FunctionType)]
        return more

    _functions_reached(fn, follow)
    return list(found.values())


def _user_module_named(name: str) -> types.ModuleType | None:
    """The user module an ``import`` inside a task brings in, imported now if it is not yet.

    Only modules outside the libraries are imported (the task would import
    them anyway), so the key sees their code before the first run too.
    """
    module = sys.modules.get(name)
    if module is None:
        try:
            spec = importlib.util.find_spec(name.split(".")[0])
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None) if spec is not None else None
        if not isinstance(origin, str) or _is_library_file(origin) or not os.path.exists(origin):
            return None
        try:
            module = importlib.import_module(name)
        except Exception:  # the task will fail with the same error when it runs
            return None
    return module if is_user_module(module) else None


# ------------------------------------------------------------ entry points


def code_fingerprint(
    fn: Callable[..., Any],
    own_digest: str | None = None,
    skip: frozenset[str] = frozenset(),
    fingerprint_of: Callable[[Any], str] = fingerprint,
) -> CodeFingerprint:
    """Fingerprint ``fn``'s code plus every helper, global and module it references.

    Names are looked up in ``fn.__globals__`` (the notebook namespace for a
    ``%%task`` cell). ``skip`` names are left out (the task's own parameters
    are inputs, hashed elsewhere, and so are the tasks it reads as globals).
    ``fingerprint_of`` takes the fingerprint of each value read (a session's epoch remembers them).
    """
    walk = _Walk(fingerprint_of=fingerprint_of)
    typed = {Part("python"): PYTHON, Part("code"): own_digest or function_digest(fn)}
    typed.update(walk.references(fn, skip, frozenset({id(fn)})))
    parts = rendered(typed.items())  # the form keys hash and records keep
    h = xxhash.xxh3_128(b"code")
    for label in sorted(parts):
        _text(h, label)
        _text(h, parts[label])
    return CodeFingerprint(h.hexdigest(), parts, tuple(walk.untracked))


def fixed_code_fingerprint(
    fn: Callable[..., Any], own_digest: str | None = None, skip: frozenset[str] = frozenset()
) -> CodeFingerprint | None:
    """``fn``'s code fingerprint when nothing but its own code can change it, else ``None``.

    A function that reads no global (``skip`` names aside), no closure
    variable, imports nothing and wraps no other function has the
    fingerprint of its own code and the Python version, whatever the
    namespace holds: it can be computed once, when the task is defined.
    """
    code = _code_of(fn)
    if (
        code is None
        or referenced_globals(code) - skip
        or code.co_freevars
        or _imports(code)
        or getattr(fn, "__wrapped__", None)
    ):
        return None
    return code_fingerprint(fn, own_digest, skip)


_active = threading.local()  # the code objects whose value token is being computed (cycles stop there)


def value_code_token(obj: Any) -> str | None:
    """What a function or class inside a *value* contributes to its fingerprint: its code.

    ``None`` for library code (pickled by reference, as before). Raises
    :class:`Unfingerprintable` when the code reads a value that cannot be
    fingerprinted.
    """
    target = obj
    if isinstance(obj, type):
        if not _is_user_class(obj):
            return None
    else:
        target = obj if isinstance(obj, types.FunctionType) else _user_wrapped(obj)
        if target is None or not _is_user_function(target):
            return None
    active: set[int] = getattr(_active, "ids", None) or set()
    if id(target) in active:
        return f"recursive {getattr(target, '__qualname__', '')}"
    _active.ids = active | {id(target)}
    try:
        walk = _Walk(strict=True)
        digest = walk.klass(target, frozenset()) if isinstance(target, type) else walk.helper(target, frozenset())
    finally:
        _active.ids = active
    kind = "class" if isinstance(target, type) else "function"
    return f"{kind} {getattr(target, '__qualname__', '')} {digest}"


def untracked_value(
    what: str, value: Any, fingerprint_of: Callable[[Any], str] = fingerprint
) -> tuple[str, Untracked | None]:
    """``value``'s fingerprint, or a stand-in and what cannot be tracked (``what`` names the value)."""
    walk = _Walk(fingerprint_of=fingerprint_of)
    digest = walk.value(what, value)
    return digest, walk.untracked[0] if walk.untracked else None


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
            elif is_helper and not isinstance(
                obj, (types.ModuleType, type, types.BuiltinFunctionType, types.FunctionType)
            ):  # a library's function (IPython's `open`)
                found.setdefault(Part("global", name).render(), _Walk().value(f"the global `{name}`", obj))
    return found


# ------------------------------------------------------------ library versions


@functools.lru_cache(maxsize=1024)
def module_version(module_name: str) -> str:
    """``numpy 2.4.6``: the package and the version of the distribution that provides the module.

    The package is the import root, except in a namespace package
    (``google.cloud.storage``), which many distributions share: there it is
    the first package with a file of its own (``google.cloud.storage``),
    and the version is that of the distribution whose files hold it.
    Nothing is imported but namespace packages.
    """
    root = module_name.split(".")[0]
    if root in sys.stdlib_module_names or root == "builtins":
        return f"{root} {PYTHON}"
    package = _package_of(module_name)
    version = getattr(sys.modules.get(package), "__version__", None)
    if not isinstance(version, str):
        version = _distribution_version(package)
    return f"{package} {version or PYTHON}"


def _package_of(module_name: str) -> str:
    """The import root, or the first package below a namespace package's root."""
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        module = sys.modules.get(name)
        if module is not None:
            if getattr(module, "__file__", None) is not None:
                return name
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return name
        if spec is None or spec.origin not in (None, "namespace"):
            return name
    return module_name


def _distribution_version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    root = package.split(".")[0]
    candidates = list(dict.fromkeys([*_distributions().get(root, []), root]))
    if "." in package:  # inside a namespace package: the distribution whose files hold it
        owner = _owning_distribution(package, candidates)
        candidates = [owner] if owner else candidates
    for dist in candidates:
        try:
            return dist_version(dist)
        except (PackageNotFoundError, ValueError):
            continue
    return None


def _owning_distribution(package: str, candidates: list[str]) -> str | None:
    from importlib.metadata import PackageNotFoundError, distribution

    relative = package.replace(".", "/")
    for dist_name in candidates:
        try:
            files = distribution(dist_name).files or []
        except (PackageNotFoundError, ValueError):
            continue
        if any(str(f).replace(os.sep, "/").startswith(relative + "/") or str(f) == relative + ".py" for f in files):
            return dist_name
    return None


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())


# ------------------------------------------------------------ edited, not reloaded

_CHECKED: set[tuple[str, int, int]] = set()  # (file, mtime, size) already compared with the loaded code


@functools.lru_cache(maxsize=1)
def _process_started() -> float:
    """When this process started (Linux), else when dagnb was first imported: no import happened before."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return _IMPORTED


_IMPORTED = time.time()


def _warn_if_edited_on_disk(fn: Any) -> None:
    """Say once when a file with user code no longer compiles to the code loaded from it.

    Only a file modified since this process started can have been edited
    after its import; an older file that compiles differently was changed by
    an import hook (pytest rewrites assertions), not by the user.
    """
    code = _code_of(fn)
    if code is None or _in_memory_source(code):
        return
    path = code.co_filename
    try:
        stat = os.stat(path)
    except OSError:  # exec'd code, a file since deleted
        return
    marker = (path, stat.st_mtime_ns, stat.st_size)
    if marker in _CHECKED or stat.st_mtime <= _process_started() + 1:  # the boot time has 1 s resolution
        return
    _CHECKED.add(marker)
    on_disk = _compiled_digests(path, code.co_flags & _FUTURE_FLAGS)
    namespace = getattr(fn, "__globals__", None)  # the module's dict, or the namespace %run ran the script in
    if on_disk is None or not isinstance(namespace, dict):
        return
    loaded = _loaded_digests(namespace, path)
    if all(on_disk.get(name) == digest for name, digest in loaded.items()):
        return
    file = os.path.basename(path)
    name = str(namespace.get("__name__", "__main__"))
    if name == "__main__":  # functions brought in with %run
        what, fix = f"the functions `%run {file}` defined", f"Run `%run {file}` again"
    else:
        what, fix = (
            f"`{name}` was imported",
            f"Run `importlib.reload({name})`, or `%load_ext autoreload` then `%autoreload 2`,",
        )
    warn_at(
        fn,
        f"`{file}` changed on disk after {what}: tasks use the code loaded in the kernel (and are keyed "
        f"by it), not the file. {fix} to use the new code.",
        LocalModuleChangedWarning,
    )


def _loaded_digests(namespace: dict[str, Any], path: str) -> dict[str, str]:
    """The bytecode digest of each function (and method) in ``namespace`` that was loaded from ``path``."""
    found: dict[str, str] = {}
    for value in list(namespace.values()):
        members = vars(value).values() if isinstance(value, type) else (value,)
        for member in members:
            func = getattr(member, "__func__", member)
            code = _code_of(func) if isinstance(func, types.FunctionType) else None
            if code is not None and code.co_filename == path:
                found[func.__qualname__.replace("<locals>.", "")] = _bytecode_digest(code)
    return found


def _compiled_digests(path: str, flags: int) -> dict[str, str] | None:
    """The bytecode digest of every function in the file as it is on disk now, by qualified name.

    ``flags``: the ``__future__`` features the loaded code was compiled with (IPython passes the
    notebook's on to ``%run`` scripts).
    """
    try:
        with open(path, "rb") as handle:
            code = compile(handle.read(), path, "exec", flags=flags, dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        return None
    found: dict[str, str] = {}
    stack: list[tuple[str, types.CodeType]] = [("", code)]
    while stack:
        prefix, current = stack.pop()
        for const in current.co_consts:
            if isinstance(const, types.CodeType):
                name = f"{prefix}{const.co_name}"
                found.setdefault(name, _bytecode_digest(const))
                stack.append((f"{name}.", const))
    return found
