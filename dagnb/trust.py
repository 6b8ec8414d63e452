"""Who may have written a cache entry: a per-user secret and HMAC-SHA256 signatures.

A cache holds pickles, and unpickling runs code, so dagnb unpickles only
what it signed itself with this user's secret. The secret is 32 random
bytes created on first use in the user's data directory (mode 0600), or
taken from ``$DAGNB_CACHE_KEY`` (a team or a CI job that shares a cache on
purpose shares this value). An entry whose signature is missing or wrong
is treated as a miss, with a warning, and recomputed: never unpickled.

A signature covers the value's bytes and the metadata that describes them.
The bytes are hashed in 16 MiB chunks, on as many threads as there are
cores (hashlib releases the GIL), and the chunk digests are signed: the
cost of verifying a large array is divided by the cores.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["CHUNK", "ChunkHasher", "cache_key", "file_digests", "key_path", "sign", "verify"]

CHUNK = 16 * 2**20
_pool: ThreadPoolExecutor | None = None


def key_path() -> Path:
    """Where this user's cache secret lives."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "dagnb" / "cache.key"


def cache_key() -> bytes:
    """``$DAGNB_CACHE_KEY`` if set, else this user's secret (created on first use, mode 0600)."""
    shared = os.environ.get("DAGNB_CACHE_KEY")
    if shared:
        return shared.encode()
    path = key_path()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = os.urandom(32)
    try:  # O_EXCL: two kernels starting at once agree on the first secret written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret


def _sha(chunk: bytes | memoryview) -> bytes:
    return hashlib.sha256(chunk).digest()


def _workers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(os.cpu_count() or 2, thread_name_prefix="dagnb-verify")
    return _pool


def _digests(data: memoryview) -> list[bytes]:
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)] or [data]
    if len(chunks) == 1:
        return [_sha(chunks[0])]
    return list(_workers().map(_sha, chunks))


def file_digests(path: os.PathLike[str] | str) -> list[bytes]:
    """Chunk digests of a file, hashed on all cores while it is read (a few chunks in memory at once)."""
    window = 2 * (os.cpu_count() or 2)
    pending, digests = [], []
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            pending.append(_workers().submit(_sha, chunk))
            if len(pending) >= window:
                digests.append(pending.pop(0).result())
    digests += [f.result() for f in pending]
    return digests or [_sha(b"")]


class ChunkHasher:
    """The chunk digests of a byte stream written piece by piece (for signing while writing)."""

    def __init__(self) -> None:
        self.digests: list[bytes] = []
        self._current = hashlib.sha256()
        self._filled = 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            take = min(CHUNK - self._filled, len(view))
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == CHUNK:
                self.digests.append(self._current.digest())
                self._current, self._filled = hashlib.sha256(), 0

    def finish(self) -> list[bytes]:
        if self._filled or not self.digests:
            self.digests.append(self._current.digest())
        return self.digests


def sign(key: bytes, fields: Iterable[str], digests: Iterable[bytes] = ()) -> str:
    """HMAC-SHA256 of metadata ``fields`` and the chunk ``digests`` of the value's bytes."""
    mac = hmac.new(key, b"dagnb-signature-1", hashlib.sha256)
    for field in fields:
        mac.update(b"\0" + field.encode())
    for digest in digests:
        mac.update(digest)
    return mac.hexdigest()


def verify(key: bytes, signature: str | None, fields: Iterable[str], data: bytes | memoryview | None = None) -> bool:
    """Whether ``signature`` is this key's for ``fields`` (and the bytes ``data``)."""
    if not signature:
        return False
    digests = _digests(memoryview(data).cast("B")) if data is not None else []
    return hmac.compare_digest(sign(key, fields, digests), signature)
