"""The fallback for every type without a handler: its pickle, written into the hash.

Registered as the handler of ``object`` in :mod:`.dispatch` when the room is
imported.

Invariants:

* No memo: a value is pickled in fast mode, so ``[s, s]`` and
  ``[s, copy(s)]`` share a fingerprint (identity never counts). Fast mode
  refuses a value that holds itself; only then is the memo used, and it also
  records the value's sharing.
* Inside the pickle, a value with a handler of its own (an array, a set, a
  registered type) goes in by its fingerprint, not by its pickle (whose
  bytes may depend on memory layout or hash order).
* Code inside a value counts by its code, not its name: a notebook function
  in a dict, an instance of a notebook class, a partial or a bound method
  reduce to a :class:`_CodeToken` that carries the digest of their code,
  computed by the code fingerprint handed to :func:`.dispatch.connect`.
  Library code is pickled by reference, as pickle does.
* Whatever a value's own ``__reduce__`` or ``__getstate__`` raises becomes
  :class:`~dagnb.errors.Unfingerprintable` naming the type; a
  ``RecursionError`` goes up to :func:`dagnb.fingerprints.values.fingerprint`,
  which retries on a deeper stack.
"""

from __future__ import annotations

import functools
import pickle
import types
from typing import Any

from dagnb._moved import named_as_before
from dagnb.errors import Unfingerprintable
from dagnb.fingerprints.dispatch import _digest, _has_handler, _registered, _wiring
from dagnb.fingerprints.stream import _blob, _hasher, _qualname, _state, _text


class _Cycle(Exception):
    """A value met again while it is being pickled: it holds itself."""


class _HashingPickler(pickle.Pickler):
    """Pickles into a hash; values with a native handler go in by fingerprint, user code by its code."""

    def persistent_id(self, obj: Any) -> str | None:  # noqa: D102 - pickle hook
        if obj is self._root or not _has_handler(obj) or getattr(_state, "cyclic", False):
            return None
        return _digest(obj)

    def reducer_override(self, obj: Any) -> Any:  # noqa: D102 - pickle hook
        if not isinstance(obj, _CODE_TYPES):
            return NotImplemented
        token = _code_token(obj)
        return NotImplemented if token is None else (_CodeToken, (token,))

    def __init__(self, h: Any, root: Any) -> None:
        self._root = root
        writer = types.SimpleNamespace(write=h.update)
        super().__init__(writer, protocol=5, buffer_callback=lambda buf: _blob(h, buf.raw()))


# What may be user code inside a value; functions made by decorators (functools.wraps) are functions.
_CODE_TYPES = (type, types.FunctionType, functools._lru_cache_wrapper)


class _CodeToken(str):
    """Stands for a function or class in the pickle stream: what it reduces to is its code's digest."""


# The pickle stream names this class by its module, and the stream is hashed: under its module of today,
# every value that carries notebook code (a fitted model, a dispatch table) changed its fingerprint when
# the package was grouped into rooms. Named as before (``dagnb.hashing``, whose old path imports it
# through ``dagnb.fingerprints.values``, which re-exports it), no digest changes.
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
    """Pickle ``value`` into ``h``; a RecursionError goes up to ``fingerprint``, which retries deeper."""
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


_registered.register(object)(_feed_pickle)
