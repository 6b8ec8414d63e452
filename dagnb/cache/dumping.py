"""A value pickled into its file in joblib's format, its chunks hashed on the way.

Invariants:

* The bytes are exactly those ``joblib.dump(value, file)`` writes (its
  pickle of each array's wrapper, the alignment padding, the array's
  bytes), so ``joblib.load`` reads every value file, old or new.
* A numeric array that is one block of memory (C-contiguous) is written
  straight from that memory, not copied first (joblib copies it 16 MiB at
  a time); any other value goes through joblib's own code.
* What is written is hashed chunk by chunk (:class:`~dagnb.cache.trust.ChunkHasher`).
  The whole chunks of a piece that stays unchanged until the hashing ends
  (an array's memory, which the caller's thread holds while it stores the
  value; a ``bytes`` object) are hashed on the pool while the file is being
  written; :meth:`HashingFile.finish` waits for every digest. A piece a
  writer may reuse after ``write`` returns is hashed before it returns.
"""

from __future__ import annotations

import functools
from typing import Any, BinaryIO

from dagnb.cache.trust import ChunkHasher

__all__ = ["HashingFile", "dump"]

_PIECE = 8 * 2**20  # an array's memory is written this much at a time, hashed on the pool meanwhile


class HashingFile:
    """A file handle that hashes what is written through it (the chunks a signature covers)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.hash = ChunkHasher()
        self.nbytes = 0

    def write(self, data: Any, stable: bool = False) -> int:
        """Write ``data``; ``stable``: its memory stays unchanged until :meth:`finish` (hashed on the pool)."""
        self.hash.update(data, stable or isinstance(data, bytes))
        written = self._handle.write(data)
        self.nbytes += written
        return written

    def tell(self) -> int:
        return self._handle.tell()

    def flush(self) -> None:
        self._handle.flush()

    def finish(self) -> list[bytes]:
        """The chunk digests of everything written (waits for the pool's)."""
        return self.hash.finish()

    def abandon(self) -> None:
        """Stop hashing (a failed write): digests not started are cancelled, running ones end."""
        self.hash.abandon()


def dump(value: Any, handle: HashingFile) -> None:
    """Write ``value`` to ``handle`` as ``joblib.dump`` does, large arrays straight from their memory."""
    _pickler()(handle).dump(value)


@functools.cache
def _pickler() -> Any:
    """joblib's pickler, which writes a plain C-contiguous array from its memory (joblib imported on first use)."""
    from joblib.numpy_pickle import NumpyPickler

    class ArrayPickler(NumpyPickler):  # type: ignore[misc]
        def save(self, obj: Any) -> None:
            np = self.np
            if np is None or type(obj) is not np.ndarray or not _direct(obj):
                return super().save(obj)  # type: ignore[no-any-return]
            wrapper = self._create_array_wrapper(obj)
            super(NumpyPickler, self).save(wrapper)  # the wrapper, pickled as joblib pickles it
            if self.proto >= 4:
                self.framer.commit_frame(force=True)  # the wrapper's bytes first, then the array's
            _write_array(obj, wrapper, self.file_handle)
            return None

    return ArrayPickler


def _direct(array: Any) -> bool:
    """Whether ``array``'s bytes are its memory, in the order joblib writes them."""
    return bool(array.flags.c_contiguous and not array.dtype.hasobject and array.size)


def _write_array(array: Any, wrapper: Any, handle: HashingFile) -> None:
    """joblib's ``NumpyArrayWrapper.write_array`` for a C-contiguous array, without copying it first."""
    alignment = wrapper.safe_get_numpy_array_alignment_bytes()
    if alignment is not None:
        padding = alignment - (handle.tell() + 1) % alignment
        handle.write(bytes([padding]) + b"\xff" * padding)
    data = memoryview(array.reshape(-1).view("uint8"))
    for start in range(0, len(data), _PIECE):  # each piece hashed on the pool while the next is written
        handle.write(data[start : start + _PIECE], stable=True)
