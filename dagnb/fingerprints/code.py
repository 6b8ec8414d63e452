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

The room holds each role in a module of its own: a function's own code
(:mod:`.own_code`), where code lives and library versions (:mod:`.modules`),
what code references (:mod:`.references`), the walk over what it reaches
(:mod:`.walk`) and files edited after their import (:mod:`.edited`). This
module puts them together: the code fingerprint of a task, the token of code
inside a value, and what ``dagnb check --plan`` records of helpers.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import xxhash

from dagnb.fingerprints.modules import PYTHON, _is_user_class, _is_user_function
from dagnb.fingerprints.modules import is_immutable as is_immutable
from dagnb.fingerprints.modules import is_user_module as is_user_module
from dagnb.fingerprints.modules import module_version as module_version
from dagnb.fingerprints.modules import same_key_while_bound as same_key_while_bound
from dagnb.fingerprints.own_code import _code_of, function_digest
from dagnb.fingerprints.own_code import normalize_source as normalize_source
from dagnb.fingerprints.own_code import source_digest as source_digest
from dagnb.fingerprints.references import _imports, referenced_globals
from dagnb.fingerprints.references import global_reads as global_reads
from dagnb.fingerprints.references import user_modules as user_modules
from dagnb.fingerprints.stream import _text
from dagnb.fingerprints.values import fingerprint
from dagnb.fingerprints.walk import Untracked, _user_wrapped, _Walk
from dagnb.keyparts import Part, rendered

# Names imported ``as`` themselves are kept importable from here for the other rooms.
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
