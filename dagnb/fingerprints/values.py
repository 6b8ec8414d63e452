"""What a value is, as a digest: :func:`fingerprint`, files as inputs, and what stands for no fingerprint.

The room writes a value's bytes in layers: :mod:`.stream` (the hash and its
framing) at the bottom, :mod:`.dispatch` (which handler writes a value:
builtin scalars and containers, the registry, the libraries' handlers,
loaded lazily), :mod:`.pickled` (the fallback for every other type), and
this module on top: the entry that handles depth and values that hold
themselves, and :class:`FileRef`. Code is in :mod:`dagnb.fingerprints.code`.

Invariants:

* A fingerprint is stable across processes, kernel restarts and
  ``PYTHONHASHSEED`` values: sets are hashed in a canonical order, dicts in
  insertion order (code can observe it), nothing hashes ``id()`` or ``hash()``.
* Type, dtype and shape are always part of a fingerprint, so ``1`` and
  ``"1"``, a 0-d and a 1-d array, or two frames with other column names never
  share one by construction.
* Equal values share a fingerprint whatever their memory layout or identity:
  a C- and an F-ordered array, a frame and its copy, ``[s, s]`` and
  ``[s, copy(s)]`` (no pickle memo). Only a value that holds itself (a
  cycle, as in a matplotlib ``Figure``) is pickled with a memo, which then
  also records its sharing.
* Code inside a value counts by its code, not its name: a notebook function
  in a dict, an instance of a notebook class, a partial or a bound method
  fingerprint through :func:`dagnb.fingerprints.code.value_code_token`, so editing
  ``Model.predict`` changes the fingerprint of a fitted ``Model``.
* Depth is no limit: a value nested deeper than the interpreter's stack
  allows is fingerprinted again on a thread with a large stack.
* :class:`FileRef` stays in this module: cached values pickle it by this
  path (and by ``dagnb.hashing.FileRef``, from before the rooms). The names
  other modules import from here (``_feed``, ``_text``...) stay importable
  from here, and so does everything under ``dagnb.hashing``.
"""

from __future__ import annotations

import os
import sys
import threading
import types
from collections.abc import Callable
from typing import Any

from dagnb.errors import Unfingerprintable
from dagnb.fingerprints.dispatch import _digest, _has_handler, register_fingerprint
from dagnb.fingerprints.dispatch import _feed as _feed
from dagnb.fingerprints.dispatch import connect as connect
from dagnb.fingerprints.pickled import _CodeToken as _CodeToken
from dagnb.fingerprints.pickled import _Cycle, _pickle_into
from dagnb.fingerprints.pickled import _feed_pickle as _feed_pickle
from dagnb.fingerprints.pickled import _HashingPickler as _HashingPickler
from dagnb.fingerprints.stream import FORMAT, _hasher, _qualname, _state
from dagnb.fingerprints.stream import Hasher as Hasher
from dagnb.fingerprints.stream import _blob as _blob
from dagnb.fingerprints.stream import _text as _text
from dagnb.fingerprints.stream import digest_name as digest_name

# Names imported ``as`` themselves are kept importable from here for others (library handlers, tests, code
# written against ``dagnb.hashing``); ``_CodeToken`` too: every stream names it ``dagnb.hashing._CodeToken``,
# and pickle checks that this name finds it.
__all__ = ["FileRef", "digest_name", "file", "fingerprint", "register_fingerprint", "value_digest"]


def fingerprint(value: Any) -> str:
    """Return the hex fingerprint of ``value`` (xxh3_128; keyed BLAKE3 in a shared cache).

    Raises:
        Unfingerprintable: the value (or an element of it) has no stable
            byte representation; register one with :func:`register_fingerprint`.
    """
    if getattr(_state, "tokens", None) is not None:  # inside another fingerprint: it handles depth
        return _digest(value)
    _state.tokens, _state.pickling = {}, set()
    try:
        try:
            return _digest(value)
        except _Cycle:  # a value that holds itself through an object: its pickle with a memo
            return _cyclic_digest(value)
        except RecursionError:  # nested deeper than this stack allows, or a list that holds itself
            if not getattr(_state, "deep", False) and not _holds_itself(value):
                return _on_a_deep_stack(fingerprint, value)
        try:
            return _cyclic_digest(value)
        except RecursionError:
            raise Unfingerprintable(_qualname(type(value)), "it is nested too deeply") from None
    finally:
        _state.tokens = _state.pickling = None


def _holds_itself(value: Any) -> bool:
    """Whether ``value`` reaches itself through containers and object attributes (found without recursion).

    Fast-mode pickling cannot see a loop through objects whose state is a
    fresh dict each time (``__getstate__``), and recurses until the stack ends.
    """
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        item, leaving = stack.pop()
        if leaving:
            on_path.discard(id(item))
            continue
        children = _children(item)
        if children is None:
            continue
        if id(item) in on_path:
            return True
        on_path.add(id(item))
        stack.append((item, True))
        stack.extend((child, False) for child in children)
    return False


def _children(item: Any) -> list[Any] | None:
    kind = type(item)
    if kind in (list, tuple, set, frozenset):
        return list(item)
    if kind is dict:
        return [*item.keys(), *item.values()]
    if isinstance(item, (type, types.ModuleType, types.FunctionType, str, bytes)) or _has_handler(item):
        return None
    state = getattr(item, "__dict__", None)
    return list(state.values()) if isinstance(state, dict) else None


def _cyclic_digest(value: Any) -> str:
    """A value that holds itself, pickled whole with a memo (sets and arrays in it pickle natively too)."""
    h = _hasher(FORMAT)
    h.update(b"cyclic")
    _state.cyclic = True
    try:
        _pickle_into(value, h, fast=False)
    finally:
        _state.cyclic = False
    return h.hexdigest()


_DEEP_STACK = 512 * 2**20
_DEEP_LIMIT = 1_000_000
_deep_lock = threading.Lock()


def _on_a_deep_stack(func: Callable[[Any], str], value: Any) -> str:
    """``func(value)`` on a thread with a large stack and recursion limit, once (no further retry)."""
    outcome: list[Any] = []

    def target() -> None:
        _state.deep = True
        try:
            outcome.append(func(value))
        except BaseException as exc:  # handed back to the caller's thread
            outcome.append(exc)

    with _deep_lock:  # the stack size and the recursion limit are process-wide settings
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, _DEEP_LIMIT))
        size = threading.stack_size(_DEEP_STACK)
        try:
            thread = threading.Thread(target=target, name="dagnb-deep-fingerprint")
            thread.start()
        finally:
            threading.stack_size(size)
        thread.join()
        sys.setrecursionlimit(limit)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return str(outcome[0])


# ----------------------------------------------------------------------- files

#: Files up to this size are fingerprinted by content; larger ones by size and mtime.
CONTENT_LIMIT = 64 * 2**20


class FileRef(os.PathLike):  # type: ignore[type-arg]
    """A file a task reads: the task is stale when the file changes.

    Pass it where a path goes (``open``, ``pd.read_csv``): it is ``os.PathLike``.
    """

    def __init__(self, path: str | os.PathLike[str], content: bool | None = None) -> None:
        self.path = os.fspath(path)
        self.content = content

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"dagnb.file({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileRef) and (self.path, self.content) == (other.path, other.content)

    def __hash__(self) -> int:
        return hash((FileRef, self.path))

    def state(self) -> tuple[Any, ...]:
        """What the fingerprint covers: content when asked (or small), else size and mtime.

        A directory covers its sorted listing, each file below it as a file
        would be. A file that exists but cannot be read raises
        :class:`~dagnb.errors.InputUnreadable` (the task's failure, not the run's).
        """
        try:
            st = os.stat(self.path)
        except OSError:
            return (self.path, "missing")
        try:
            if os.path.isdir(self.path):
                return (self.path, "directory", _directory_state(self.path, self.content))
            return (self.path, *_file_state(self.path, st, self.content))
        except OSError as exc:
            from dagnb.errors import InputUnreadable

            raise InputUnreadable(getattr(exc, "filename", None) or self.path, exc) from None


def _file_state(path: str, st: os.stat_result, content: bool | None) -> tuple[Any, ...]:
    by_content = content if content is not None else st.st_size <= CONTENT_LIMIT
    if by_content:
        return (st.st_size, _file_digest(path))
    return (st.st_size, st.st_mtime_ns)


def _directory_state(root: str, content: bool | None) -> list[tuple[Any, ...]]:
    """Each file and folder under ``root``, sorted by relative path: folders by name, files by their state.

    Symbolic links to folders are not followed (a loop would never end);
    a file's state is that of what it points to.
    """
    found: list[tuple[Any, ...]] = []

    def fail(error: OSError) -> None:
        raise error

    for folder, dirs, files in os.walk(root, onerror=fail):
        dirs.sort()
        relative = os.path.relpath(folder, root)
        found.append((relative, "folder"))
        for name in sorted(files):
            path = os.path.join(folder, name)
            found.append((os.path.join(relative, name), *_file_state(path, os.stat(path), content)))
    return sorted(found)


def _file_digest(path: str) -> str:
    h = _hasher()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(2**22), b""):
            h.update(chunk)
    return h.hexdigest()


def file(path: str | os.PathLike[str], content: bool | None = None) -> FileRef:
    """Declare a file input: ``def raw(path=dagnb.file("data/iris.csv"))``.

    By default files up to 64 MiB are fingerprinted by content (so a fresh
    clone with new mtimes is still a cache hit) and larger ones by size and
    modification time; ``content=True`` or ``False`` forces one way.
    """
    return FileRef(path, content)


register_fingerprint(FileRef, FileRef.state)


#: The prefix of a digest that stands for a value dagnb cannot fingerprint (see :func:`value_digest`).
UNTRACKED = "untracked"


def value_digest(value: Any) -> str:
    """``value``'s fingerprint, or ``untracked <type>`` when it has none.

    Never the value's identity: CPython reuses addresses, so a rebound
    value could look unchanged. A key that holds an untracked part makes its
    task always rerun (see :func:`dagnb.plan.compute_key`).
    """
    try:
        return fingerprint(value)
    except Unfingerprintable:
        return f"{UNTRACKED} {_qualname(type(value))}"
