"""The walk over the code a function reaches, and the part of a key each reference adds.

A function's references (:mod:`.references`) are described one by one:
a library module, class or function by its version; a notebook helper, a
class (bases, metaclass, methods, properties) or a user module by its code,
recursively; anything else by its value's fingerprint. Each part is kept
under a label (:class:`~dagnb.keyparts.Part`: ``helper h``, ``global K``,
``module np``) so ``%dag why`` can name exactly what changed.

Invariants:

* Nothing is keyed by ``id()``: a value that cannot be fingerprinted is
  listed as :class:`Untracked` (its task always reruns), or, in a *strict*
  walk (code inside a value), raises.
* A strict walk counts code by its bytecode even where its source is known,
  because a value's fingerprint is also taken in worker processes, where
  notebook cells have no source, and must come out the same there.
* A cycle (a recursive helper, a class that names itself) ends the walk as
  ``recursive``: the path a reference came by is carried along.
* Parts go into a digest in the order of their labels as written, so the
  digests do not depend on the order references were met.

Imports the room's code modules, :mod:`.values` and :mod:`dagnb.keyparts`.
"""

from __future__ import annotations

import enum
import functools
import inspect
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import xxhash

from dagnb._moved import named_as_before
from dagnb.errors import Unfingerprintable
from dagnb.fingerprints.edited import _warn_if_edited_on_disk
from dagnb.fingerprints.modules import (
    _is_user_class,
    _is_user_function,
    _user_module_named,
    is_user_module,
    module_version,
)
from dagnb.fingerprints.own_code import _bytecode_digest, _code_of, function_digest
from dagnb.fingerprints.references import _attribute_reads, _imports, referenced_globals
from dagnb.fingerprints.stream import _qualname, _text
from dagnb.fingerprints.values import UNTRACKED, fingerprint
from dagnb.keyparts import Part, rendered


@dataclass(frozen=True)
class Untracked:
    """Something a key should cover but cannot: a value with no fingerprint, and why."""

    what: str  # "the global `conn`", "the default of `path`"
    type_name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.what} cannot be fingerprinted"


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

# An enum class's tables of its members (each member is an attribute of its own, counted by its value)
_ENUM_TABLES = frozenset({"_member_map_", "_value2member_map_", "_unhashable_values_map_"})


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
        members = isinstance(cls, enum.EnumMeta)
        for attr, value in sorted(vars(cls).items()):
            if attr in _SKIPPED_CLASS_ATTRS or (members and attr in _ENUM_TABLES):
                continue
            _text(h, attr)
            if members and isinstance(value, cls):  # a member: by its value (it would walk this class again)
                _text(h, self.value(f"the member `{cls.__qualname__}.{attr}`", cast(enum.Enum, value)._value_))
                continue
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
