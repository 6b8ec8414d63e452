"""A function's own code as a digest: its normalized source, or its bytecode.

Not what the code references (see :mod:`.references` and :mod:`.walk`): only
the code of the function itself.

Invariants:

* Source is normalized before it is hashed (:func:`normalize_source`):
  comments, blank lines, layout and docstrings do not count.
* Code whose source lives in memory only (a notebook cell, as IPython
  registers it in ``linecache``) counts by that source; code from a real
  file counts by its compiled bytecode (:func:`_bytecode_digest`), never by
  the file on disk, which may have been edited since it was imported.
* ``from __future__`` flags a compiler passes on change no digest by
  themselves; everything else about the bytecode does (names, constants,
  argument counts, nested code).
* Digests are remembered per function object, never per code object (see
  ``_DIGESTS``).

Imports the value stream (:mod:`.dispatch`) only.
"""

from __future__ import annotations
import __future__

import ast
import functools
import inspect
import linecache
import textwrap
import tokenize
import types
import weakref
from collections.abc import Callable
from typing import Any

import xxhash

from dagnb.fingerprints.dispatch import _feed

_DOCUMENTED = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)
_BLOCKS = (ast.stmt, ast.excepthandler, ast.match_case)  # what holds statements: a def is only ever one of them


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    """``tree`` without the docstring of its module, classes and functions (nested ones too).

    Only statements are visited, never expressions (``ast.walk`` visited every
    node): a ``def`` or ``class`` is a statement, so none is missed.
    """
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, _DOCUMENTED):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                todo.extend(child for child in value if isinstance(child, _BLOCKS))
    return tree


def normalize_source(source: str, parsed: ast.Module | None = None) -> str:
    """Source with comments, blank lines, formatting and docstrings removed.

    ``parsed``: ``source`` already parsed (a cell's, checked first), used
    instead of parsing it again; its docstrings are removed in place.
    """
    tree = _strip_docstrings(parsed if parsed is not None else ast.parse(textwrap.dedent(source)))
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def source_digest(source: str, parsed: ast.Module | None = None) -> str:
    """Fingerprint of source code after AST normalization (``parsed``: see :func:`normalize_source`)."""
    return xxhash.xxh3_128_hexdigest(normalize_source(source, parsed).encode())


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
            entry = linecache.cache[code.co_filename]
            if len(entry) == 4:
                return source_digest("".join(inspect.getblock(entry[2][code.co_firstlineno - 1 :])))
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


def _code_of(fn: Any) -> types.CodeType | None:
    code = getattr(fn, "__code__", None)
    return code if isinstance(code, types.CodeType) else None
