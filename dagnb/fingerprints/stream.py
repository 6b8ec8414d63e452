"""The byte stream every fingerprint is written as: the hash, its framing, and per-thread state.

Every handler of the room (containers, the pickle fallback, arrays, the
libraries' types, code) writes into a hash object through these few
functions, so a value's bytes always go in framed the same way.

Invariants:

* :data:`FORMAT` opens every value's stream; it is bumped whenever the
  stream of any value changes, and the pinned-digest tests guard it.
* Bytes and text go in with their length first (:func:`_blob`,
  :func:`_text`), so two fields can never run into each other.
* A type is named by its module as it was named before the package had
  rooms (:func:`_qualname`): moving a module changes no digest.
* The hash is chosen once per process, at the first fingerprint
  (:func:`digest_name`): xxh3_128 by default; keyed BLAKE3 (256 bits, keyed
  with a key derived from ``$DAGNB_CACHE_KEY``) when a cache is shared, where
  inputs may come from others and xxh3's hand-made collisions matter.
  ``$DAGNB_FINGERPRINT=xxh3|blake3`` overrides the choice.

Imports nothing of dagnb but :mod:`dagnb._moved`: the bottom of the room.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

import xxhash

from dagnb._moved import named_as_before

#: Bumped whenever the byte stream of a value changes; pinned-digest tests guard it.
FORMAT = b"dagnb-fp-3"

#: A handler: writes a value into a hash object.
Feeder = Callable[[Any, Any], None]


# ----------------------------------------------------------------------- the hash

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


# ---------------------------------------------------------------------- framing


def _blob(h: Any, data: bytes | memoryview) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _text(h: Any, text: str) -> None:
    _blob(h, text.encode("utf-8", "surrogatepass"))


def _qualname(cls: type) -> str:
    return f"{named_as_before(cls.__module__)}.{cls.__qualname__}"


# ---------------------------------------------------------------- per-thread state

#: Per thread, while a fingerprint is under way (all unset or ``None`` between fingerprints):
#: ``tokens`` the code tokens met so far (by ``id``); ``pickling`` the ids of the objects being
#: pickled (one met again is a cycle); ``cyclic`` while a value that holds itself is pickled with a
#: memo; ``deep`` on the thread with a large stack, so that a value is retried there once only.
_state = threading.local()
