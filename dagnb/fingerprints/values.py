"""Fingerprints of values (xxh3_128, hex digests); code is in :mod:`dagnb.fingerprints.code`.

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

No library is imported here: the handlers of numpy, pandas, pyarrow, polars,
xarray, torch, dask, scikit-learn and matplotlib types (``_arrays``,
``_libraries``) register on the first value fingerprinted after their module
is loaded.

The hash is chosen once per process, at the first fingerprint
(:func:`digest_name`): xxh3_128 by default; keyed BLAKE3 (256 bits, keyed
with a key derived from ``$DAGNB_CACHE_KEY``) when a cache is shared, where
inputs may come from others and xxh3's hand-made collisions matter.
``$DAGNB_FINGERPRINT=xxh3|blake3`` overrides the choice.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import struct
import sys
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import xxhash

from dagnb._moved import named_as_before
from dagnb.errors import Unfingerprintable

__all__ = ["FileRef", "digest_name", "file", "fingerprint", "register_fingerprint", "value_digest"]

#: Bumped whenever the byte stream below changes; pinned-digest tests guard it.
FORMAT = b"dagnb-fp-2"

Feeder = Callable[[Any, Any], None]


# --------------------------------------------------------------------------- values

_new_hash: Callable[..., Any] | None = None  # chosen once, by the first fingerprint


def _choose_hash() -> tuple[str, Callable[..., Any]]:
    """xxh3_128, or keyed BLAKE3 where a cache is shared (``$DAGNB_CACHE_KEY``) or ``$DAGNB_FINGERPRINT`` says."""
    wanted = os.environ.get("DAGNB_FINGERPRINT") or ("blake3" if os.environ.get("DAGNB_CACHE_KEY") else "xxh3")
    if wanted != "blake3":
        return "xxh3", xxhash.xxh3_128
    import blake3

    secret = os.environ.get("DAGNB_CACHE_KEY", "").encode()
    key = blake3.blake3(secret, derive_key_context="dagnb 2025 value fingerprints").digest()
    return "blake3", functools.partial(blake3.blake3, key=key, max_threads=blake3.blake3.AUTO)


class Hasher(Protocol):
    """What fingerprints need of a hash object (xxhash's and blake3's both are one)."""

    def update(self, data: Any, /) -> Any: ...
    def digest(self) -> bytes: ...
    def hexdigest(self) -> str: ...


def _hasher(data: bytes = b"") -> Hasher:
    """A new hash object of the kind this process fingerprints with."""
    global _new_hash
    if _new_hash is None:
        _new_hash = _choose_hash()[1]
    hasher: Hasher = _new_hash(data)
    return hasher


def digest_name() -> str:
    """``xxh3`` or ``blake3``: the hash this process's fingerprints use (decided now if not yet)."""
    if _new_hash is None:
        _hasher()
    return "blake3" if _new_hash is not xxhash.xxh3_128 else "xxh3"


_state = threading.local()  # per thread: whether a fingerprint is under way, its code tokens, a deep retry


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


class _Cycle(Exception):
    """A value met again while it is being pickled: it holds itself."""


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


def _digest(value: Any) -> str:
    h = _hasher(FORMAT)
    _feed(value, h)
    return h.hexdigest()


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


def _blob(h: Any, data: bytes | memoryview) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _text(h: Any, text: str) -> None:
    _blob(h, text.encode("utf-8", "surrogatepass"))


def _qualname(cls: type) -> str:
    return f"{named_as_before(cls.__module__)}.{cls.__qualname__}"


def _feed_int(value: int, h: Any) -> None:
    h.update(b"i")
    _blob(h, value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True))


def _feed_sequence(tag: bytes) -> Feeder:
    def feed(value: Any, h: Any) -> None:
        h.update(tag)
        h.update(len(value).to_bytes(8, "little"))
        for item in value:
            _feed(item, h)

    return feed


def _feed_dict(value: dict[Any, Any], h: Any) -> None:
    h.update(b"{")
    h.update(len(value).to_bytes(8, "little"))
    for key, item in value.items():
        _feed(key, h)
        _feed(item, h)


def _feed_set(tag: bytes) -> Feeder:
    def feed(value: Any, h: Any) -> None:
        # Canonical order: element digests sorted, independent of hash seeds.
        h.update(tag)
        h.update(len(value).to_bytes(8, "little"))
        for digest in sorted(bytes.fromhex(fingerprint(item)) for item in value):
            h.update(digest)

    return feed


_PLAIN_ATOMS = frozenset({type(None), bool, int, float, str, bytes})
_PLAIN_CONTAINERS = frozenset({list, tuple, dict})


def _is_plain(value: Any) -> bool:
    """Whether ``value`` (a list, tuple or dict) holds only None, bools, ints, floats, strings and bytes, in
    lists, tuples and dicts. The element types are gathered at C speed (``set(map(type, ...))``)."""
    parts = (value, value.values()) if type(value) is dict else (value,)
    for part in parts:
        kinds = set(map(type, part))
        if kinds <= _PLAIN_ATOMS:
            continue
        if not kinds <= _PLAIN_ATOMS | _PLAIN_CONTAINERS:
            return False
        if not all(_is_plain(item) for item in part if type(item) in _PLAIN_CONTAINERS):
            return False
    return True


def _feed_plain(tag: bytes, walk: Feeder) -> Feeder:
    """Lists, tuples and dicts of plain data go in as their pickle, written by C at pickle's speed.

    The pickle of plain data is canonical: no memo (so identity never
    counts), dicts in insertion order, ``-0.0`` and ``0.0`` apart. Anything
    else inside (a set, whose pickle follows hash order; an object; an
    array) makes the container go element by element. Which way a container
    goes depends only on what it holds.
    """

    def feed(value: Any, h: Any) -> None:
        if not _is_plain(value):
            walk(value, h)
            return
        buffer = io.BytesIO()
        pickler = pickle.Pickler(buffer, protocol=5)
        pickler.fast = True
        try:
            pickler.dump(value)
        except ValueError:  # it holds itself (fast mode sees the loop)
            walk(value, h)
            return
        h.update(tag)
        _blob(h, buffer.getbuffer())

    return feed


def _feed_str(v: str, h: Any) -> None:
    h.update(b"s")
    _text(h, v)


def _feed_bytes(v: bytes, h: Any) -> None:
    h.update(b"b")
    _blob(h, v)


def _feed_bytearray(v: bytearray, h: Any) -> None:
    h.update(b"a")
    _blob(h, bytes(v))


def _feed_range(v: range, h: Any) -> None:
    h.update(b"r")
    _feed((v.start, v.stop, v.step), h)


_EXACT: dict[type, Feeder] = {
    type(None): lambda v, h: h.update(b"N"),
    bool: lambda v, h: h.update(b"T" if v else b"F"),
    int: _feed_int,
    float: lambda v, h: h.update(b"f" + struct.pack("<d", v)),
    complex: lambda v, h: h.update(b"c" + struct.pack("<dd", v.real, v.imag)),
    str: _feed_str,
    bytes: _feed_bytes,
    bytearray: _feed_bytearray,
    tuple: _feed_plain(b"p(", _feed_sequence(b"(")),
    list: _feed_plain(b"p[", _feed_sequence(b"[")),
    dict: _feed_plain(b"p{", _feed_dict),
    set: _feed_set(b"<"),
    frozenset: _feed_set(b">"),
    range: _feed_range,
}


@functools.singledispatch
def _registered(value: Any, h: Any) -> None:
    _feed_pickle(value, h)


def _feed(value: Any, h: Any) -> None:
    exact = _EXACT.get(type(value))
    if exact is not None:
        exact(value, h)
        return
    _register_lazy_handlers()
    _registered(value, h)


def register_fingerprint(cls: type, fn: Callable[[Any], Any]) -> None:
    """Teach dagnb to fingerprint values of ``cls``.

    ``fn(value)`` returns any value dagnb can already fingerprint (bytes, a
    tuple of arrays, a dict of settings...); the type's qualified name is
    always mixed in, so two types never collide.
    """

    def feed(value: Any, h: Any) -> None:
        h.update(b"U")
        _text(h, _qualname(type(value)))
        _feed(fn(value), h)

    _registered.register(cls)(feed)


def _has_handler(obj: Any) -> bool:
    cls = type(obj)
    if cls in (set, frozenset):
        return True
    return _registered.dispatch(cls) is not _registered.dispatch(object)


class _HashingPickler(pickle.Pickler):
    """Pickles into a hash; values with a native handler go in by fingerprint, user code by its code."""

    def persistent_id(self, obj: Any) -> str | None:  # noqa: D102 - pickle hook
        if obj is self._root or not _has_handler(obj) or getattr(_state, "cyclic", False):
            return None
        return fingerprint(obj)

    def reducer_override(self, obj: Any) -> Any:  # noqa: D102 - pickle hook
        if not isinstance(obj, _CODE_TYPES):
            return NotImplemented
        token = _code_token(obj)
        return NotImplemented if token is None else (_CodeToken, (token,))

    def __init__(self, h: Any, root: Any) -> None:
        self._root = root
        writer = types.SimpleNamespace(write=h.update)
        super().__init__(writer, protocol=5, buffer_callback=lambda buf: _blob(h, buf.raw()))


class _Wiring:
    """What value fingerprints reach above them, set once by :func:`connect`.

    Code fingerprints (:mod:`dagnb.fingerprints.code`) and the library
    handlers (:mod:`dagnb.fingerprints.libraries`) build on this module, and
    a value can hold code or a library's type: the wing's ``__init__`` hands
    them in, so neither is imported from here (no import circle).
    """

    def __init__(self) -> None:
        self.code_token: Callable[[Any], str | None] = lambda obj: None
        self.library_handlers: Mapping[str, Callable[[Any], None]] = {}


_wiring = _Wiring()


def connect(code_token: Callable[[Any], str | None], library_handlers: Mapping[str, Callable[[Any], None]]) -> None:
    """Hand in what values reach above them: the digest of code inside a value, the library handler table.

    Called by :mod:`dagnb.fingerprints` when the wing is imported, before any value is fingerprinted.
    """
    _wiring.code_token = code_token
    _wiring.library_handlers = library_handlers


# What may be user code inside a value; functions made by decorators (functools.wraps) are functions.
_CODE_TYPES = (type, types.FunctionType, functools._lru_cache_wrapper)


class _CodeToken(str):
    """Stands for a function or class in the pickle stream: what it reduces to is its code's digest."""


# The pickle stream names this class by its module, and the stream is hashed: under its module of today,
# every value that carries notebook code (a fitted model, a dispatch table) changed its fingerprint when
# the package was grouped into rooms. Named as before (the old path still imports it), no digest changes.
_CodeToken.__module__ = named_as_before(__name__)


def _code_token(obj: Any) -> str | None:
    """The digest of the user code ``obj`` is (memoized for one fingerprint), or None for a library's."""
    tokens = getattr(_state, "tokens", None)
    key = id(obj)
    if tokens is not None and key in tokens:
        return tokens[key]  # type: ignore[no-any-return]
    try:
        token = _wiring.code_token(obj)
    except (Unfingerprintable, RecursionError):
        raise
    except Exception as exc:  # a class whose attributes cannot be read: the value has no stable code
        raise Unfingerprintable(_qualname(type(obj)), f"its code cannot be read ({type(exc).__name__})") from None
    if tokens is not None:
        tokens[key] = token
    return token


def _feed_pickle(value: Any, h: Any) -> None:
    h.update(b"P")
    _text(h, _qualname(type(value)))
    pickling = getattr(_state, "pickling", None)
    if pickling is not None and not getattr(_state, "cyclic", False):
        if id(value) in pickling:  # met again through a set or an array inside it
            raise _Cycle
        pickling.add(id(value))
    try:
        _pickle_into(value, h, fast=True)
    except ValueError:  # fast mode refuses cyclic structures: keep the memo for them
        _pickle_into(value, h, fast=False)
    finally:
        if pickling is not None:
            pickling.discard(id(value))


def _pickle_into(value: Any, h: Any, fast: bool) -> None:
    """Pickle ``value`` into ``h``; a RecursionError goes up to :func:`fingerprint`, which retries deeper."""
    inner = _hasher()
    pickler = _HashingPickler(inner, value)
    pickler.fast = fast  # no memo: identity must not change a fingerprint
    try:
        pickler.dump(value)
    except ValueError as exc:
        if fast:
            raise
        raise Unfingerprintable(_qualname(type(value)), str(exc) or "it cannot be pickled") from None
    except Unfingerprintable:
        raise
    except RecursionError:
        if fast and getattr(_state, "deep", False):  # a cycle fast mode could not see: the memo stops it
            _pickle_into(value, h, fast=False)
            return
        raise
    except Exception as exc:  # a value's own __reduce__ or __getstate__ may raise anything
        raise Unfingerprintable(_qualname(type(value)), str(exc) or type(exc).__name__) from None
    h.update(inner.digest())


# ------------------------------------------------------------- library types

_LAZY_PENDING: dict[str, Callable[[Any], None]] | None = None  # module -> register function, not yet run
_MODULES_SEEN = -1  # len(sys.modules) at the last look


def _register_lazy_handlers() -> None:
    """Register the handlers of library types (the table handed to :func:`connect`) once their module is
    loaded; never import one. Modules are looked for again only when ``sys.modules`` grew."""
    global _LAZY_PENDING, _MODULES_SEEN
    if len(sys.modules) == _MODULES_SEEN:  # called for every value: nothing can have loaded since
        return
    _MODULES_SEEN = len(sys.modules)
    if _LAZY_PENDING is None:
        _LAZY_PENDING = dict(_wiring.library_handlers)
    for module in [m for m in _LAZY_PENDING if m in sys.modules]:
        register = _LAZY_PENDING.pop(module, None)  # another thread may have taken it
        if register is not None:
            register(_registered)


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
