"""Who may have written a cache entry: a per-user secret, BLAKE3 chunk digests, HMAC-SHA256 signatures.

A cache holds pickles, and unpickling runs code, so dagnb unpickles only
what it signed itself with this user's secret: 32 random bytes created on
first use in the user's data directory, or ``$DAGNB_CACHE_KEY`` (a team or
a CI job that shares a cache on purpose shares this value).

Invariants:

* The secret's file (``cache.key``, its name since format 1) is created
  whole or not at all: the secret is written to a temporary file beside it,
  fsynced, then hard-linked to its name. A full disk leaves no file; two
  processes (or threads) creating it at once agree on the one that was
  linked first, and nobody ever reads a partial secret.
* A secret is used only when it can be trusted: a file that is a symbolic
  link or not a regular file, that belongs to someone else, that other users
  can read or write, or that is shorter than :data:`MIN_SECRET` bytes, and a
  ``$DAGNB_CACHE_KEY`` shorter than :data:`MIN_SHARED_SECRET` characters, raise
  :class:`SecretError`, whose message says how to fix it.
* A signature is HMAC-SHA256 over length-prefixed fields (so no two lists
  of fields sign alike) and, for a value, the BLAKE3 digests of its
  :data:`CHUNK`-sized chunks. Chunks are hashed on a small thread pool
  (BLAKE3 releases the GIL) while a value file is written and while it is
  read, remade in a forked child.
"""

from __future__ import annotations

import hmac
import os
import stat
import struct
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from dagnb.errors import DagnbError

__all__ = [
    "CHUNK",
    "ChunkHasher",
    "SecretError",
    "Signer",
    "MIN_SECRET",
    "MIN_SHARED_SECRET",
    "load_secret",
    "chunk_digest",
    "existing_secret",
    "hash_chunk",
    "secret_path",
    "user_name",
    "shared_secret",
    "sign",
    "verify",
]

CHUNK = 2**20  # small enough that hashing one chunk overlaps reading the next, and stays in cache
MIN_SECRET = 32  # bytes of a secret's file: what dagnb writes
MIN_SHARED_SECRET = 32  # characters of $DAGNB_CACHE_KEY: 128 bits as hex, at the least
DIGEST = "blake3/1MiB"  # how value bytes are digested before signing: part of what is signed
_LENGTH = struct.Struct("<Q").pack  # a field's length, 8 bytes little-endian, before the field
_pool: ThreadPoolExecutor | None = None


class SecretError(DagnbError):
    """The secret cannot be trusted (or created); the message says why and how to fix it."""

    def __init__(self, problem: str, fix: str) -> None:
        self.problem, self.fix = problem, fix
        super().__init__(f"{problem} {fix}")


def secret_path() -> Path:
    """Where this user's cache secret lives."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "dagnb" / "cache.key"


def shared_secret() -> bytes | None:
    """``$DAGNB_CACHE_KEY`` when it is set (checked for length), else ``None``."""
    shared = os.environ.get("DAGNB_CACHE_KEY")
    if not shared:
        return None
    if len(shared) < MIN_SHARED_SECRET:
        raise SecretError(
            f"`DAGNB_CACHE_KEY` is {len(shared)} characters long; a shared secret needs at least "
            f"{MIN_SHARED_SECRET}, or someone could guess it and sign cache entries your kernels would load (and run).",
            "Set it to a random secret, the same for everyone who shares the cache, for example the output of "
            '`python -c "import secrets; print(secrets.token_hex(32))"`.',
        )
    return shared.encode()


def load_secret() -> bytes:
    """``$DAGNB_CACHE_KEY`` if set, else this user's secret (created on first use, mode 0600).

    Raises:
        SecretError: the secret is too short, not private, or cannot be created.
    """
    shared = shared_secret()
    if shared is not None:
        return shared
    path = secret_path()
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    return _create_secret(path)


def existing_secret() -> bytes | None:
    """``$DAGNB_CACHE_KEY`` if set, else this user's secret if there is one yet: never created (a read-only look).

    Raises:
        SecretError: the secret is too short or not private.
    """
    shared = shared_secret()
    if shared is not None:
        return shared
    try:
        return _read_secret(secret_path())
    except FileNotFoundError:
        return None


def _create_secret(path: Path) -> bytes:
    """Write a new secret beside ``path`` and link it into place; the first link wins."""
    tmp = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache.key-")  # mode 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(os.urandom(MIN_SECRET))
            handle.flush()
            os.fsync(handle.fileno())
        _link(tmp, path)
    except OSError as exc:
        raise SecretError(
            f"dagnb could not create your secret at {path} ({exc.strerror or exc}).",
            f"Free some space or make {path.parent} writable (or set `DAGNB_CACHE_KEY`); dagnb creates the secret "
            f"on next use.",
        ) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return _read_secret(path)


def _link(tmp: str, path: Path) -> None:
    """Put the complete file ``tmp`` at ``path`` unless a secret is already there."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process or thread linked its secret first: everyone reads that one
    except OSError:  # a file system without hard links: a rename is atomic too, but last writer wins
        os.replace(tmp, path)


def _read_secret(path: Path) -> bytes:
    """The secret at ``path`` if it is a private, regular file of this user's, long enough."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        if path.is_symlink():
            raise _untrusted(path, f"is a symbolic link (to {os.readlink(path)})") from None
        raise SecretError(
            f"dagnb cannot read your secret at {path} ({exc.strerror or exc}).",
            f"Make it readable by you (`chmod 600 {path}`), or delete it: dagnb creates a new one.",
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _check_secret_file(path, info)
        secret = handle.read()
    if len(secret) < MIN_SECRET:
        raise _untrusted(
            path,
            f"is {len(secret)} bytes long (dagnb writes {MIN_SECRET} random bytes; an empty file is "
            f"what a full disk left behind)",
        )
    return secret


def _check_secret_file(path: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise _untrusted(path, "is not a regular file")
    if sys.platform == "win32":  # no POSIX owner or mode bits to check
        return
    if info.st_uid != os.geteuid():
        raise _untrusted(path, f"belongs to {user_name(info.st_uid)}, not to you ({user_name(os.geteuid())})")
    if info.st_mode & 0o077:
        raise SecretError(
            f"The secret at {path} can be read or written by other users (mode {info.st_mode & 0o777:04o}); "
            f"whoever can read it can sign cache entries your kernels will load (and run).",
            f"Make it private with `chmod 600 {path}`, or, if others may have read or changed it, delete it: "
            f"dagnb creates a new one on next use (entries signed with the old secret are recomputed).",
        )


def _untrusted(path: Path, what: str) -> SecretError:
    return SecretError(
        f"The secret at {path} {what}, so dagnb does not trust it to sign cache entries.",
        "Delete it and dagnb creates a new secret of your own on next use (entries signed with the old one are "
        "recomputed), or set `DAGNB_CACHE_KEY` to share a secret on purpose.",
    )


def user_name(uid: int) -> str:
    try:
        import pwd

        return f"user {pwd.getpwuid(uid).pw_name}"
    except (ImportError, KeyError):
        return f"uid {uid}"


# ------------------------------------------------------------- signatures


def hash_chunk(chunk: bytes | memoryview) -> bytes:
    """The digest of one chunk of a value's bytes (BLAKE3, 32 bytes)."""
    import blake3

    return blake3.blake3(chunk).digest()


def _workers() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(min(4, os.cpu_count() or 2), thread_name_prefix="dagnb-verify")
    return _pool


def _forget_pool() -> None:
    """In a forked child the pool's threads do not exist: a new pool is made on first use."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def chunk_digest(chunk: memoryview) -> Future[bytes]:
    """Hash ``chunk`` on the verifying pool (the caller keeps ``chunk`` alive until the result is taken).

    A chunk shorter than :data:`CHUNK` (a small value, or a large one's last
    chunk) is hashed right here: handing it to a thread would cost more.
    """
    if len(chunk) < CHUNK:
        done: Future[bytes] = Future()
        done.set_result(hash_chunk(chunk))
        return done
    return _workers().submit(hash_chunk, chunk)


class ChunkHasher:
    """The chunk digests of a byte stream written piece by piece (for signing while writing).

    A whole chunk of a ``stable`` piece (one whose memory stays unchanged
    until :meth:`finish`) is hashed on the pool while the writer goes on;
    the rest is hashed here, before :meth:`update` returns.
    """

    def __init__(self) -> None:
        import blake3

        self._new = blake3.blake3
        self._digests: list[bytes | Future[bytes]] = []
        self._current = self._new()
        self._filled = 0

    def update(self, data: bytes | memoryview, stable: bool = False) -> None:
        view = memoryview(data).cast("B")
        while len(view):
            if stable and not self._filled and len(view) >= CHUNK:
                self._digests.append(chunk_digest(view[:CHUNK]))  # the future holds the chunk's memory
                view = view[CHUNK:]
                continue
            take = min(CHUNK - self._filled, len(view))
            self._current.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == CHUNK:
                self._digests.append(self._current.digest())
                self._current, self._filled = self._new(), 0

    def finish(self) -> list[bytes]:
        """Every chunk's digest, in order (waits for those hashed on the pool)."""
        if self._filled or not self._digests:
            self._digests.append(self._current.digest())
            self._current, self._filled = self._new(), 0
        return [digest if isinstance(digest, bytes) else digest.result() for digest in self._digests]

    def abandon(self) -> None:
        """Cancel the pool's digests not yet started, and wait for the others to end."""
        for digest in self._digests:
            if isinstance(digest, Future):
                digest.cancel() or digest.exception()


def sign(secret: bytes, fields: Iterable[str], digests: Iterable[bytes] = ()) -> str:
    """HMAC-SHA256 of metadata ``fields`` and the chunk ``digests`` of the value's bytes."""
    message = [b"dagnb-signature-3"]
    append = message.append  # on every row read: a run's walk back verifies a thousand of them
    for field in fields:  # each field's length first: no two lists of fields ever sign alike
        data = field.encode("utf-8", "surrogatepass")
        append(_LENGTH(len(data)))
        append(data)
    message.extend(digests)
    return hmac.digest(secret, b"".join(message), "sha256").hex()  # one call into C: a few µs per row


def verify(secret: bytes, signature: str | None, fields: Iterable[str], digests: Iterable[bytes] = ()) -> bool:
    """Whether ``signature`` is this secret's for ``fields`` (and the chunk ``digests``)."""
    if not signature:
        return False
    return hmac.compare_digest(sign(secret, fields, digests), signature)


class Signer:
    """Signs and checks the rows of one cache with one secret, which it keeps to itself.

    Responsibilities: the one place a store's secret is held once loaded; a
    row's fields (and a value's chunk digests) in, a signature out, and back.
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def __repr__(self) -> str:
        return "Signer(<secret>)"  # never the secret, in a traceback or a log

    def sign(self, fields: Iterable[str], digests: Iterable[bytes] = ()) -> str:
        return sign(self._secret, fields, digests)

    def check(self, signature: str | None, fields: Iterable[str], digests: Iterable[bytes] = ()) -> bool:
        return verify(self._secret, signature, fields, digests)
