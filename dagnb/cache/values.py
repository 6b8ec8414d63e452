"""The values of a disk cache, by fingerprint: a small one's pickle in its metadata row, a large one in a blob file.

Invariants:

* A value whose pickle is at most :data:`~dagnb.cache.writer.ROW_LIMIT`
  bytes is kept in its ``blobs`` row (plain pickle, signed as a ``row``); a
  larger one in a file (:mod:`dagnb.cache.blobs`, in joblib's format:
  :mod:`dagnb.cache.dumping`, signed as a ``blob``). Either is signed over
  the BLAKE3 digests of its bytes, its fingerprint and its size.
* A value is verified and unpickled from the same private copy of its
  bytes; paths come only from valid fingerprints, and no symbolic link in
  the cache is followed.
* Only a value that fails its signature is removed (and, in a cache shared
  with a group, only if it is this user's file); a value that cannot be read
  right now (too many open files, a permission) is a miss and stays. A
  read-only store removes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import os
import pickle
import time
from typing import Any

from dagnb.cache import dumping
from dagnb.cache.base import CacheMiss
from dagnb.cache.blobs import BlobFiles, valid_fingerprint
from dagnb.cache.metadata import Metadata, ValueRow
from dagnb.cache.records import CacheEntry
from dagnb.cache.trust import DIGEST, hash_chunk, user_name
from dagnb.cache.valuecopy import Mismatch, Payload
from dagnb.cache.writer import PutWrite, small_pickle

__all__ = ["MISMATCH", "ValueStore"]

MISMATCH = "its value file does not match its signature (it was altered or truncated, or written with another secret)"


def _value_fields(fingerprint: str, nbytes: int, row: bool = False) -> tuple[str, ...]:
    return ("row" if row else "blob", fingerprint, str(nbytes), DIGEST)


class _RowBytes:
    """A small value's pickle, read from its row: the same bytes are checked and unpickled (a Payload's duties)."""

    def __init__(self, data: bytes, owner: int | None) -> None:
        self._data, self.owner = bytes(data), owner

    def matches(self, expected: list[bytes]) -> bool:
        return expected == [hash_chunk(self._data)]

    def load(self, expected: list[bytes]) -> Any:
        if not self.matches(expected):
            raise Mismatch("the row's bytes do not match their signed digest")
        return pickle.loads(self._data)

    def close(self) -> None:
        pass


class ValueStore:
    """Values by fingerprint, over the metadata's value rows and the blob files.

    Responsibilities: pickle a value into the write that stores it; place
    its file and sign its row inside the metadata's write transaction; read
    a value back verified; forget one that fails its signature; remember
    which stored values this store has checked whole.
    """

    def __init__(self, meta: Metadata, files: BlobFiles, read_only: bool) -> None:
        self.meta, self.files, self.read_only = meta, files, read_only
        self._verified: set[str] = set()  # fingerprints whose stored bytes this store has checked

    def pickled(self, entry: CacheEntry, value: Any) -> PutWrite:
        """The write of ``entry`` and ``value``: its pickle as row bytes, or in a temporary file beside its place."""
        data = small_pickle(value)
        if data is not None:
            entry.nbytes = len(data)
            return PutWrite(copy.copy(entry), row=data, digests=[hash_chunk(data)])
        written = self.files.write(entry.fingerprint, lambda handle: dumping.dump(value, handle))
        entry.nbytes = written.nbytes
        return PutWrite(copy.copy(entry), written=written)

    def row(self, write: PutWrite, now: float) -> tuple[Any, ...]:
        """Inside the write transaction: the signed ``blobs`` row of a value, its file placed (raising what the rename raises)."""
        fingerprint, sign = write.entry.fingerprint, self.meta.signer.sign
        if write.row is not None:
            signature = sign(_value_fields(fingerprint, len(write.row), row=True), write.digests)
            owner = os.geteuid() if hasattr(os, "geteuid") else None
            return fingerprint, signature, len(write.row), now, now, b"".join(write.digests), write.row, owner
        written = write.written
        assert written is not None
        written.place()
        signature = sign(_value_fields(fingerprint, written.nbytes), written.digests)
        return fingerprint, signature, written.nbytes, now, now, b"".join(written.digests), None, None

    def has_good(self, fingerprint: str) -> bool:
        """A stored value for ``fingerprint`` that this user's secret signed (its bytes checked once per store)."""
        row = self.meta.value_row(fingerprint)
        if row is None:  # asked every time: a prune or clear (here or in another process) may have removed it
            self._verified.discard(fingerprint)
            return False
        if fingerprint in self._verified:
            return True
        try:
            self.check_whole(fingerprint, *row)  # forgets a forged one, so it is written again
        except CacheMiss:
            return False
        self._verified.add(fingerprint)
        return True

    def load(self, fingerprint: str) -> Any:
        return self._load_row(fingerprint, self.meta.value_row(fingerprint, ahead=True))

    def load_each(self, fingerprints: list[str]) -> list[tuple[Any, CacheMiss | None]]:
        """For each of ``fingerprints``: its value (its own object each time) and ``None``, or ``None`` and the
        :class:`CacheMiss` loading it raised; their rows read at once."""
        rows = self.meta.value_rows_of(fingerprints)
        found: list[tuple[Any, CacheMiss | None]] = []
        for fingerprint in fingerprints:
            try:
                found.append((self._load_row(fingerprint, rows.get(fingerprint)), None))
            except CacheMiss as miss:
                found.append((None, miss))
        return found

    def _load_row(self, fingerprint: str, row: ValueRow | None) -> Any:
        if row is None:
            raise CacheMiss("its value is not in the cache")
        expected, payload = self._read_signed(fingerprint, *row)
        try:
            return payload.load(expected)  # each chunk unpickled only once its digest matched
        except Mismatch:
            raise self.forget_bad(fingerprint, payload.owner) from None
        except Exception as exc:  # signed by us, and still unreadable: a bug or a library change
            raise CacheMiss(f"its value cannot be unpickled ({type(exc).__name__}: {exc})") from None

    def check_whole(
        self,
        fingerprint: str,
        signature: str,
        nbytes: int,
        digests: bytes,
        data: bytes | None = None,
        owner: int | None = None,
    ) -> None:
        """Read and check every byte of a value (for verify, and before trusting a value already there)."""
        expected, payload = self._read_signed(fingerprint, signature, nbytes, digests, data, owner)
        try:
            if not payload.matches(expected):
                raise self.forget_bad(fingerprint, payload.owner)
        finally:
            payload.close()

    def _read_signed(
        self,
        fingerprint: str,
        signature: str,
        nbytes: int,
        digests: bytes,
        data: bytes | None = None,
        owner: int | None = None,
    ) -> tuple[list[bytes], Payload | _RowBytes]:
        """The chunk digests the signature vouches for, and the value's bytes read once (not yet checked).

        A row whose signature fails, or a file that is not what it says, is
        forgotten (row and file); a file that cannot be read right now is a
        miss and stays.
        """
        if not valid_fingerprint(fingerprint):
            self._forget_row(fingerprint)
            raise CacheMiss("its value row names no valid fingerprint", "bad")
        expected = [bytes(digests[i : i + 32]) for i in range(0, len(digests), 32)]
        row = data is not None
        if not self.meta.signer.check(signature, _value_fields(fingerprint, nbytes, row), expected):
            raise self.forget_bad(fingerprint, owner if row else self._owner(fingerprint))
        if row:
            return expected, _RowBytes(data, owner)  # type: ignore[arg-type]
        try:
            return expected, self.files.read(fingerprint, nbytes)
        except FileNotFoundError:
            self._forget_row(fingerprint)  # the file is gone: only the row is left to forget
            raise CacheMiss("its value file cannot be read (No such file or directory)", "bad") from None
        except Mismatch as exc:
            raise self.forget_bad(fingerprint, exc.owner) from None
        except OSError as exc:  # too many open files, a permission, a symbolic link in the way: not corruption
            raise CacheMiss(f"its value file cannot be read ({exc.strerror or exc})", "unreadable") from None

    def _owner(self, fingerprint: str) -> int | None:
        try:
            return self.files.path(fingerprint).lstat().st_uid
        except OSError:
            return None

    def forget_bad(self, fingerprint: str, owner: int | None) -> CacheMiss:
        """Remove a value that failed its signature, unless it is another user's (then: say whose)."""
        if self.files.modes.shared and owner is not None and owner != os.geteuid():
            return CacheMiss(
                f"its value file was written by {user_name(owner)} with another secret (share "
                f"`DAGNB_CACHE_KEY` to use each other's values)",
                "foreign",
            )
        self._verified.discard(fingerprint)
        if not self.read_only:
            self._forget_row(fingerprint)
            with contextlib.suppress(OSError, ValueError):
                self.files.remove(fingerprint)
        return CacheMiss(MISMATCH, "bad")

    def _forget_row(self, fingerprint: str) -> None:
        if not self.read_only:
            self.meta.forget_value(fingerprint)

    def remove_files(self, fingerprints: list[str]) -> None:
        """Delete value files whose rows are committed away (a row naming no valid fingerprint names no file)."""
        for fingerprint in fingerprints:
            with contextlib.suppress(OSError, ValueError):
                self.files.remove(fingerprint)

    def sweep(self, older_than: float) -> int:
        """Remove temporary and unnamed value files older than ``older_than`` seconds (a killed writer's)."""
        known = {fp for (fp,) in self.meta.query("SELECT fingerprint FROM blobs")}
        return self.files.sweep(known, older_than, time.time())
