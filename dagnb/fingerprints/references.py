"""What code references: the global names it reads, the attributes it reads on them, its imports.

Read from the bytecode (``dis``), never by running the code: a function's
references are the same whether or not it ever ran.

Invariants:

* Nested code counts: the globals a lambda or an inner function reads are
  the globals its outer function reads.
* An attribute read right after a global (``helpers.scale``) is recorded as
  such, so a user module counts by what is taken from it; a global used any
  other way counts whole (``None``).
* Only absolute imports are followed; ``from m import *`` counts the module whole.
* A walk over the functions code reaches (:func:`_functions_reached`) visits
  each function once, so recursion ends.

Imports :mod:`.own_code` and :mod:`.modules` only.
"""

from __future__ import annotations

import dis
import functools
import sys
import types
from collections.abc import Callable, Container, Iterable, Mapping
from typing import Any

from dagnb.fingerprints.modules import is_user_module
from dagnb.fingerprints.own_code import _code_of

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
    skipped, found = frozenset(skip), set[str]()

    def follow(current: Any, code: types.CodeType) -> list[Any]:
        names = referenced_globals(code) - (skipped if current is fn else frozenset())
        found.update(names)
        helpers = (current.__globals__.get(name) for name in names if name not in tasks)
        return [obj for obj in helpers if isinstance(obj, types.FunctionType) and obj.__globals__ is fn.__globals__]

    _functions_reached(fn, follow)
    return frozenset(found)


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
