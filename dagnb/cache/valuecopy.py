"""A value file's bytes, read once into memory of this process, and unpickled only as they check out.

Invariants:

* The bytes are read once, through one descriptor, into memory private to
  this process: a ``bytes`` object, or for a value of :data:`MAP_FROM` bytes
  and more (Linux) a memfd, from which joblib then maps its arrays
  copy-on-write. The cache file itself is never mapped, so nobody can change
  a loaded value by writing to it.
* Each :data:`~dagnb.cache.trust.CHUNK` of the bytes is hashed (BLAKE3) on a thread
  pool as soon as it is read. The caller has already checked, with the
  signature, the list of digests the chunks must have; no byte reaches the
  unpickler before its chunk's digest is known to equal that list's. Chunks
  are checked in the order the unpickler reads them, so hashing the rest
  overlaps unpickling, and a chunk that does not match stops the unpickler
  before it sees a byte of it (:class:`Mismatch`).
* A memfd is checked whole before joblib maps it (joblib reads it by path).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from dagnb.cache.trust import CHUNK, chunk_digest

__all__ = ["MAP_FROM", "Mismatch", "Payload", "read_private"]

MAP_FROM = 64 * 2**20  # values this large load memory-mapped (copy-on-write), from a private memfd


class Mismatch(Exception):
    """The bytes are not what the metadata says: another size, not a regular file, or a chunk's digest differs.

    ``owner`` is the file's uid when known.
    """

    def __init__(self, problem: str, owner: int | None = None) -> None:
        super().__init__(problem)
        self.owner = owner


class Payload:
    """A value file's bytes in this process's memory, with their chunk digests being computed.

    Responsibilities: say whether every chunk matches the expected digests
    (:meth:`matches`); unpickle the bytes, each chunk only once it matched
    (:meth:`load`); let the bytes go (:meth:`close`), never while a thread
    still hashes them.
    """

    def __init__(
        self,
        view: memoryview,
        chunks: list[memoryview],
        digests: list[Future[bytes]],
        memfd: int | None = None,
        mapping: mmap.mmap | None = None,
    ) -> None:
        self.owner: int | None = None  # the file's uid
        self._view, self._chunks, self._digests = view, chunks, digests
        self._memfd, self._mapping = memfd, mapping

    def matches(self, expected: Sequence[bytes]) -> bool:
        """Whether every chunk's digest is the expected one (waits for all of them)."""
        found = [future.result() for future in self._digests]
        return len(found) == len(expected) and all(a == b for a, b in zip(found, expected))

    def load(self, expected: Sequence[bytes]) -> Any:
        """The value, unpickled from bytes that match ``expected``.

        Raises:
            Mismatch: a chunk's digest is not the expected one (nothing of that chunk was unpickled).
        """
        import joblib

        try:
            if self._memfd is not None:
                if not self.matches(expected):
                    raise Mismatch("a chunk does not match its signed digest")
                self._unmap()  # joblib maps the memfd itself, by path
                return joblib.load(f"/proc/self/fd/{self._memfd}", mmap_mode="c")
            if len(expected) != len(self._digests):
                raise Mismatch("not the number of chunks that were signed")
            return joblib.load(_CheckedReader(self._view, self._digests, expected))
        finally:
            self.close()

    def close(self) -> None:
        for future in self._digests:  # no thread may still read the bytes once they are let go
            future.cancel() or future.exception()
        self._unmap()
        if self._memfd is not None:
            os.close(self._memfd)
            self._memfd = None

    def _unmap(self) -> None:
        if self._mapping is None:
            return
        for future in self._digests:
            future.cancel() or future.exception()
        for chunk in self._chunks:
            chunk.release()
        self._view.release()
        self._mapping.close()
        self._mapping = None


def read_private(fd: int, nbytes: int) -> Payload:
    """Read ``nbytes`` from ``fd`` into private memory, handing each chunk to the hashing pool as it comes."""
    if nbytes >= MAP_FROM and hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        return _into_memfd(fd, nbytes)
    view = memoryview(_read_exactly(fd, nbytes))
    chunks = _chunks(view)
    return Payload(view, chunks, [chunk_digest(chunk) for chunk in chunks])


def _chunks(view: memoryview) -> list[memoryview]:
    """The chunks a signature covers (an empty value is one empty chunk)."""
    return [view[start : start + CHUNK] for start in range(0, max(len(view), 1), CHUNK)]


def _read_exactly(fd: int, nbytes: int) -> bytes:
    parts, left = [], nbytes
    while left:
        part = os.read(fd, min(left, 2**30))
        if not part:
            raise Mismatch("the file ended early")
        parts.append(part)
        left -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _into_memfd(fd: int, nbytes: int) -> Payload:
    memfd = os.memfd_create("dagnb-value", os.MFD_CLOEXEC)
    try:
        os.ftruncate(memfd, nbytes)
        mapping = mmap.mmap(memfd, nbytes)
    except BaseException:
        os.close(memfd)
        raise
    view = memoryview(mapping)
    chunks = _chunks(view)
    payload = Payload(view, chunks, [], memfd, mapping)
    try:
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as handle:
            for chunk in chunks:
                _fill(handle, chunk)
                payload._digests.append(chunk_digest(chunk))
    except BaseException:
        payload.close()
        raise
    return payload


def _fill(handle: Any, chunk: memoryview) -> None:
    filled = 0
    while filled < len(chunk):
        got = handle.readinto(chunk[filled:])
        if not got:
            raise Mismatch("the file ended early")
        filled += got


class _CheckedReader:
    """A read-only file over the bytes for the unpickler: it hands out a chunk only once its digest matched."""

    def __init__(self, view: memoryview, digests: list[Future[bytes]], expected: Sequence[bytes]) -> None:
        self._view, self._digests, self._expected = view, digests, expected
        self._pos = 0
        self._checked = 0  # chunks [0, _checked) matched

    def _upto(self, end: int) -> int:
        """``end``, once every chunk up to it matched."""
        end = max(self._pos, min(len(self._view), end))
        while self._checked * CHUNK < end:
            if self._digests[self._checked].result() != self._expected[self._checked]:
                raise Mismatch("a chunk does not match its signed digest")
            self._checked += 1
        return end

    def read(self, size: int | None = -1) -> bytes:
        end = self._upto(len(self._view) if size is None or size < 0 else self._pos + size)
        data = bytes(self._view[self._pos : end])
        self._pos = end
        return data

    def readinto(self, target: Any) -> int:
        out = memoryview(target).cast("B")
        end = self._upto(self._pos + len(out))
        out[: end - self._pos] = self._view[self._pos : end]
        size, self._pos = end - self._pos, end
        return size

    def readline(self, size: int | None = -1) -> bytes:
        limit = len(self._view) if size is None or size < 0 else min(len(self._view), self._pos + size)
        end = self._pos
        while end < limit:
            step = bytes(self._view[end : min(limit, end + 4096)])
            found = step.find(b"\n")
            end += found + 1 if found >= 0 else len(step)
            if found >= 0:
                break
        return self.read(end - self._pos)

    def peek(self, size: int = 0) -> bytes:
        end = self._upto(self._pos + max(size, 1))
        return bytes(self._view[self._pos : end])

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(0, min(len(self._view), base + offset))
        return self._pos

    def tell(self) -> int:
        return self._pos
