"""Fingerprints of values (xxh3_128, hex digests); code is in :mod:`dagnb.codehash`.

Invariants:

* A fingerprint is stable across processes, kernel restarts and
  ``PYTHONHASHSEED`` values: sets are hashed in a canonical order, dicts in
  insertion order (code can observe it), nothing hashes ``id()`` or ``hash()``.
* Type, dtype and shape are always part of a fingerprint, so ``1`` and
  ``"1"``, a 0-d and a 1-d array, or two frames with other column names never
  share one by construction.
* Equal values share a fingerprint whatever their memory layout or identity:
  a C- and an F-ordered array, a frame and its copy, ``[s, s]`` and
  ``[s, copy(s)]`` (no pickle memo).

numpy and pandas are never imported here; their handlers register on the
first value from a module that is already loaded.

The hash is chosen once per process, at the first fingerprint
(:func:`digest_name`): xxh3_128 by default; keyed BLAKE3 (256 bits, keyed
with a key derived from ``$DAGNB_CACHE_KEY``) when a cache is shared, where
inputs may come from others and xxh3's hand-made collisions matter.
``$DAGNB_FINGERPRINT=xxh3|blake3`` overrides the choice.
"""

from __future__ import annotations

import functools
import os
import pickle
import struct
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any

import xxhash

from .errors import Unfingerprintable, UnfingerprintableWarning

__all__ = ["FileRef", "digest_name", "file", "fingerprint", "register_fingerprint", "value_digest"]

#: Bumped whenever the byte stream below changes; pinned-digest tests guard it.
FORMAT = b"dagnb-fp-1"

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


def _hasher(data: bytes = b"") -> Any:
    """A new hash object of the kind this process fingerprints with."""
    global _new_hash
    if _new_hash is None:
        _new_hash = _choose_hash()[1]
    return _new_hash(data)


def digest_name() -> str:
    """``xxh3`` or ``blake3``: the hash this process's fingerprints use (decided now if not yet)."""
    if _new_hash is None:
        _hasher()
    return "blake3" if _new_hash is not xxhash.xxh3_128 else "xxh3"


def fingerprint(value: Any) -> str:
    """Return the hex fingerprint of ``value`` (xxh3_128; keyed BLAKE3 in a shared cache).

    Raises:
        Unfingerprintable: the value (or an element of it) has no stable
            byte representation; register one with :func:`register_fingerprint`.
    """
    h = _hasher(FORMAT)
    try:
        _feed(value, h)
    except RecursionError:  # a container that holds itself, or nesting deeper than the stack
        raise Unfingerprintable(_qualname(type(value)), "it contains itself or is nested too deeply") from None
    return h.hexdigest()


def _blob(h: Any, data: bytes | memoryview) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _text(h: Any, text: str) -> None:
    _blob(h, text.encode("utf-8", "surrogatepass"))


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


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


_EXACT: dict[type, Feeder] = {
    type(None): lambda v, h: h.update(b"N"),
    bool: lambda v, h: h.update(b"T" if v else b"F"),
    int: _feed_int,
    float: lambda v, h: h.update(b"f" + struct.pack("<d", v)),
    complex: lambda v, h: h.update(b"c" + struct.pack("<dd", v.real, v.imag)),
    str: lambda v, h: (h.update(b"s"), _text(h, v)),
    bytes: lambda v, h: (h.update(b"b"), _blob(h, v)),
    bytearray: lambda v, h: (h.update(b"a"), _blob(h, bytes(v))),
    tuple: _feed_sequence(b"("),
    list: _feed_sequence(b"["),
    dict: _feed_dict,
    set: _feed_set(b"<"),
    frozenset: _feed_set(b">"),
    range: lambda v, h: (h.update(b"r"), _feed((v.start, v.stop, v.step), h)),
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
    """Pickles into a hash; values with a native handler go in by fingerprint."""

    def persistent_id(self, obj: Any) -> str | None:  # noqa: D102 - pickle hook
        if obj is self._root or not _has_handler(obj):
            return None
        return fingerprint(obj)

    def __init__(self, h: Any, root: Any) -> None:
        self._root = root
        writer = types.SimpleNamespace(write=h.update)
        super().__init__(writer, protocol=5, buffer_callback=lambda buf: _blob(h, buf.raw()))


def _feed_pickle(value: Any, h: Any) -> None:
    h.update(b"P")
    _text(h, _qualname(type(value)))
    try:
        _pickle_into(value, h, fast=True)
    except ValueError:  # fast mode refuses cyclic structures: keep the memo for them
        _pickle_into(value, h, fast=False)


def _pickle_into(value: Any, h: Any, fast: bool) -> None:
    inner = _hasher()
    pickler = _HashingPickler(inner, value)
    pickler.fast = fast  # no memo: identity must not change a fingerprint
    try:
        pickler.dump(value)
    except ValueError:
        if fast:
            raise
        raise Unfingerprintable(_qualname(type(value)), "it cannot be pickled") from None
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise Unfingerprintable(_qualname(type(value)), str(exc) or type(exc).__name__) from None
    h.update(inner.digest())


# ------------------------------------------------------------- numpy and pandas

_LAZY_DONE: set[str] = set()


def _register_lazy_handlers() -> None:
    """Register numpy and pandas handlers once those modules are loaded (never import them)."""
    if len(_LAZY_DONE) == 2:
        return
    for module in ("numpy", "pandas"):
        if module not in _LAZY_DONE and module in sys.modules:
            _LAZY_DONE.add(module)
            from . import _arrays

            getattr(_arrays, f"register_{module}")(_registered)


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
        """What the fingerprint covers: content when asked (or small), else size and mtime."""
        try:
            st = os.stat(self.path)
        except OSError:
            return (self.path, "missing")
        by_content = self.content if self.content is not None else st.st_size <= CONTENT_LIMIT
        if by_content:
            return (self.path, st.st_size, _file_digest(self.path))
        return (self.path, st.st_size, st.st_mtime_ns)


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


_WARNED: set[str] = set()


def _safe_value(value: Any) -> str:
    try:
        return fingerprint(value)
    except Unfingerprintable:
        return f"unfingerprintable {type(value).__qualname__} {id(value)}"


def value_digest(name: str, value: Any) -> str:
    """A global's value fingerprint; one that has none is keyed by identity (and said once)."""
    try:
        return fingerprint(value)
    except Unfingerprintable as exc:
        if name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(
                f"The global `{name}` used by a task cannot be fingerprinted ({exc.reason}); "
                f"tasks using it rerun whenever `{name}` is rebound. Pass it as a parameter "
                f"or register a fingerprint with `dagnb.register_fingerprint`.",
                UnfingerprintableWarning,
                stacklevel=2,
            )
        return f"identity {type(value).__qualname__} {id(value)}"


