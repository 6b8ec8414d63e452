"""Which handler writes a value: the table of exact types, the registry, and the lazy library handlers.

:func:`_feed` writes any value into a hash object: builtin scalars and
containers through :data:`_EXACT` (one dict lookup), every other type
through the :func:`_registered` registry (``functools.singledispatch``),
which holds :func:`register_fingerprint`'s handlers, the library handlers
and, for ``object``, the pickle fallback (:mod:`.pickled` registers it).

Invariants:

* Type, dtype and shape are always part of a fingerprint: every handler
  writes a tag or the type's name first, so ``1`` and ``"1"``, ``(1,)`` and
  ``[1]`` never share one by construction.
* Containers go in element by element, or as their pickle when they hold
  plain data only; which way depends only on what a container holds. Sets go
  in by the sorted digests of their elements, so no hash seed counts.
* A value met inside another (a set's element, an object in a pickle) is
  digested by :func:`_digest`: the fingerprint under way handles depth and
  cycles for the whole value.
* No library is imported here: the handlers of numpy, pandas, pyarrow,
  polars, xarray, torch, dask, scikit-learn and matplotlib types register on
  the first value fingerprinted after their module is loaded, from the table
  handed to :func:`connect`.

Imports :mod:`.stream` and :mod:`dagnb.errors` only: what sits above (code,
the libraries' handlers, the pickle fallback) is handed in.
"""

from __future__ import annotations

import functools
import pickle
import struct
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

from dagnb.fingerprints.stream import FORMAT, Feeder, _blob, _hasher, _qualname, _text

# ---------------------------------------------------------------------- scalars


def _feed_int(value: int, h: Any) -> None:
    h.update(b"i")
    _blob(h, value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True))


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


# ------------------------------------------------------------------- containers


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
        for digest in sorted(bytes.fromhex(_digest(item)) for item in value):
            h.update(digest)

    return feed


class _NotPlain(Exception):
    """Raised by :class:`_PlainPickler` at the first object that is not plain data."""


class _PlainPickler(pickle.Pickler):
    """C pickle, protocol 3, that refuses at once any object but plain data.

    C pickle writes None, bools, ints, floats, strings, bytes, lists, tuples
    and dicts (exact types) itself, and asks :meth:`reducer_override` about
    everything else. At protocol 3 that includes sets, frozensets and
    bytearrays: it writes them as a call of their type, and asks about the
    type (protocols 4 and 5 write them without asking anything). So one pass
    at pickle's speed both checks and writes.
    """

    def reducer_override(self, obj: Any) -> Any:
        raise _NotPlain


def _plain_pickle(value: Any) -> bytes | None:
    """The pickle of ``value`` if it holds only plain data, else None."""
    out: list[bytes] = []
    pickler = _PlainPickler(types.SimpleNamespace(write=out.append), protocol=3)
    pickler.fast = True  # no memo: identity never counts
    try:
        pickler.dump(value)
    except (_NotPlain, ValueError, pickle.PicklingError):  # ValueError: it holds itself
        return None
    return b"".join(out)  # one write (protocol 3 has no frames): that very bytes object


def _feed_plain(tag: bytes, walk: Feeder) -> Feeder:
    """Lists, tuples and dicts of plain data go in as their pickle, written by C at pickle's speed.

    Plain data is None, bools, ints, floats, strings and bytes, in lists,
    tuples and dicts (exact types). Its pickle is canonical: no memo (so
    identity never counts), dicts in insertion order, ``-0.0`` and ``0.0``
    apart. Anything else inside (a set, whose pickle follows hash order; a
    bytearray; an object; an array) makes the container go element by
    element. Which way a container goes depends only on what it holds.
    """

    def feed(value: Any, h: Any) -> None:
        data = _plain_pickle(value)
        if data is None:
            walk(value, h)
            return
        h.update(tag)
        _blob(h, data)

    return feed


# ------------------------------------------------------------------------ the table

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
    """Every type not in :data:`_EXACT`; the handler for ``object`` is the pickle fallback (:mod:`.pickled`)."""
    raise NotImplementedError("dagnb.fingerprints.pickled registers the fallback when the room is imported")


def _feed(value: Any, h: Any) -> None:
    exact = _EXACT.get(type(value))
    if exact is not None:
        exact(value, h)
        return
    _register_lazy_handlers()
    _registered(value, h)


def _digest(value: Any) -> str:
    """The fingerprint of ``value`` as a stream of its own: what a value inside another contributes."""
    h = _hasher(FORMAT)
    _feed(value, h)
    return h.hexdigest()


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


# ------------------------------------------------------------- what is handed in


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
