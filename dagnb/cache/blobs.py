"""Value files: ``ROOT/blobs/ab/abcdef….pkl``, written atomically, read back once, never followed out of the cache.

Invariants:

* Every path is derived here from a fingerprint checked to be 32 or 64
  lowercase hex digits (:func:`valid_fingerprint`); a metadata row naming
  anything else (``/home/me/thesis.tex``, ``../../x``) never becomes a path.
* ``blobs/`` and its shard folders are opened with ``O_NOFOLLOW`` and used
  through directory descriptors (``openat``, ``unlinkat``, ``renameat``): a
  symbolic link planted in the cache is never followed, so no cache
  operation creates, reads or deletes a file outside the cache.
* A value is verified and unpickled from the same bytes: they are read once,
  through one descriptor, into memory private to this process
  (:mod:`dagnb.cache.valuecopy`). A writer who swaps or rewrites the file
  meanwhile changes nothing that is loaded.
* A value is written to ``.tmp-<random>.pkl`` beside its final name,
  fsynced (:meth:`Written.sync`, on the cache's writer thread when a run
  writes it) and renamed into place by :meth:`Written.place`.
* In a group-shared cache (:class:`FileModes`), files and folders are
  created readable and writable by the folder's group.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagnb.cache.dumping import HashingFile
from dagnb.cache.valuecopy import Mismatch, Payload, read_private

__all__ = ["BlobFiles", "FileModes", "Mismatch", "Payload", "Written", "valid_fingerprint"]

_HEX = re.compile(r"[0-9a-f]{32}(?:[0-9a-f]{32})?")
_SHARD = re.compile(r"[0-9a-f]{2}")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# openat() and friends; without them (Windows) paths are checked with lstat first, which a racing
# attacker could beat, but Windows needs administrator rights to create a symbolic link at all
_AT = {os.open, os.unlink, os.rename, os.mkdir, os.stat} <= os.supports_dir_fd and os.scandir in os.supports_fd


def valid_fingerprint(fingerprint: object) -> bool:
    """Whether ``fingerprint`` is what dagnb's hashes produce: 32 or 64 lowercase hex digits."""
    return isinstance(fingerprint, str) and _HEX.fullmatch(fingerprint) is not None


@dataclass(frozen=True)
class FileModes:
    """How files and folders are created: private, or shared with the cache folder's group.

    A cache folder that its group may write (``chmod g+w``, usually with the
    setgid bit) is shared: dagnb gives that group read and write on what it
    creates, whatever the umask says about the group, and takes the other
    bits from the umask. Otherwise value files are private (0600) and
    folders follow the umask.
    """

    file: int = 0o600
    folder: int | None = None
    group: int | None = None

    @property
    def shared(self) -> bool:
        return self.group is not None

    @classmethod
    def of(cls, root: Path) -> FileModes:
        info = os.stat(root)
        if sys.platform == "win32" or not info.st_mode & stat.S_IWGRP:
            return cls()
        mask = _umask() & ~0o070
        return cls(0o666 & ~mask, (0o777 & ~mask) | stat.S_ISGID, info.st_gid)

    def own(self, fd: int, folder: bool = False) -> None:
        """Give a newly created file (or folder) its mode and group (shared caches only)."""
        if not self.shared:
            return
        assert self.group is not None and self.folder is not None
        with contextlib.suppress(OSError):  # a file system without modes or groups: nothing to share
            os.fchmod(fd, self.folder if folder else self.file)
            if os.fstat(fd).st_gid != self.group:
                os.fchown(fd, -1, self.group)

    def create(self, path: Path) -> None:
        """Create an empty file at ``path`` with these modes, if it does not exist yet."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, self.file)
        except FileExistsError:
            return
        try:
            self.own(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """This process's umask, read without changing it where the system says it (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# ------------------------------------------------------- folders, by descriptor

Folder = Any  # a directory descriptor (int), or a Path where openat() is missing


def _open_at(folder: Folder, name: str, flags: int, mode: int = 0o600) -> int:
    if _AT:
        return os.open(name, flags | _NOFOLLOW | _CLOEXEC, mode, dir_fd=folder)
    path = folder / name
    if path.is_symlink():
        raise OSError(40, "Too many levels of symbolic links", str(path))
    return os.open(path, flags | _CLOEXEC, mode)


def _open_folder(folder: Folder, name: str) -> Folder:
    if _AT:
        return os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=folder)
    path = folder / name
    if path.is_symlink() or not path.is_dir():
        raise OSError(20, "Not a directory (or a symbolic link)", str(path))
    return path


def _close(folder: Folder) -> None:
    if _AT:
        os.close(folder)


def _lstat(folder: Folder, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=folder, follow_symlinks=False) if _AT else os.lstat(folder / name)


def _unlink(folder: Folder, name: str) -> None:
    if _AT:
        os.unlink(name, dir_fd=folder)
    else:
        os.unlink(folder / name)


def _names(folder: Folder) -> list[str]:
    with os.scandir(folder) as found:
        return [entry.name for entry in found]


class BlobFiles:
    """The value files of one cache folder.

    Responsibilities: derive each path from a valid fingerprint; create,
    place, read and remove value files without following symbolic links;
    sweep leftovers of killed writers; report (and remove) symbolic links
    planted where dagnb keeps its folders.
    """

    def __init__(self, root: Path, modes: FileModes) -> None:
        self.root = root
        self.modes = modes

    def path(self, fingerprint: str) -> Path:
        """Where ``fingerprint``'s value lives (for messages and tests; dagnb itself goes by descriptor)."""
        if not valid_fingerprint(fingerprint):
            raise ValueError(f"not a value fingerprint: {fingerprint!r}")
        return self.root / "blobs" / fingerprint[:2] / f"{fingerprint}.pkl"

    @contextlib.contextmanager
    def _folder(self, *names: str, create: bool = False) -> Iterator[Folder]:
        """The folder ``ROOT/names...``, opened without following a symbolic link at any step."""
        opened = [os.open(self.root, os.O_RDONLY | _DIRECTORY | _CLOEXEC) if _AT else self.root]
        try:
            for name in names:
                if create:
                    self._make_folder(opened[-1], name)
                opened.append(_open_folder(opened[-1], name))
            yield opened[-1]
        finally:
            for folder in opened:
                _close(folder)

    def _make_folder(self, parent: Folder, name: str) -> None:
        """Create ``name`` in ``parent``; a symbolic link planted there is removed first (never its target)."""
        try:
            self._mkdir(parent, name)
        except FileExistsError:
            if not stat.S_ISLNK(_lstat(parent, name).st_mode):
                return
            _unlink(parent, name)
            self._mkdir(parent, name)
        if self.modes.shared and _AT:
            fd = _open_folder(parent, name)
            try:
                self.modes.own(fd, folder=True)
            finally:
                os.close(fd)

    def prepare(self) -> str | None:
        """Create ``blobs/`` if need be; a symbolic link planted in its place is replaced by a folder.

        Returns where such a link pointed (``None`` if there was none).
        """
        path = self.root / "blobs"
        target = os.readlink(path) if path.is_symlink() else None
        with self._folder("blobs", create=True):
            pass
        return target

    def _mkdir(self, parent: Folder, name: str) -> None:
        if _AT:
            os.mkdir(name, self.modes.folder or 0o777, dir_fd=parent)
        else:
            os.mkdir(parent / name, self.modes.folder or 0o777)

    def _shard(self, fingerprint: str, create: bool = False) -> contextlib.AbstractContextManager[Folder]:
        if not valid_fingerprint(fingerprint):
            raise ValueError(f"not a value fingerprint: {fingerprint!r}")
        return self._folder("blobs", fingerprint[:2], create=create)

    # ------------------------------------------------------------ writing

    def write(self, fingerprint: str, dump: Callable[[Any], None]) -> Written:
        """``dump(file)`` into a new temporary file beside ``fingerprint``'s place, hashed (not yet fsynced).

        ``file`` is a :class:`~dagnb.cache.dumping.HashingFile`; the digests are all known when this returns.
        """
        with self._shard(fingerprint, create=True) as shard:
            name = f".tmp-{secrets.token_hex(8)}.pkl"
            fd = _open_at(shard, name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.modes.file)
            written, writer = Written(self, fingerprint, name), None
            try:
                self.modes.own(fd)
                with os.fdopen(fd, "wb") as handle:
                    writer = HashingFile(handle)
                    dump(writer)
                written.nbytes, written.digests = writer.nbytes, writer.finish()
            except BaseException:
                if writer is not None:
                    writer.abandon()  # no chunk of a failed write is still being hashed
                written.discard()
                raise
        return written

    def remove(self, fingerprint: str) -> None:
        """Delete ``fingerprint``'s value file, if it is there (a symbolic link in the way: an OSError)."""
        with self._shard(fingerprint) as shard, contextlib.suppress(FileNotFoundError):
            _unlink(shard, f"{fingerprint}.pkl")

    # ------------------------------------------------------------ reading

    def read(self, fingerprint: str, nbytes: int) -> Payload:
        """The bytes of ``fingerprint``'s value file, read once into private memory, their digests on the way.

        Raises:
            Mismatch: the file is not a regular file of ``nbytes`` bytes.
            OSError: it cannot be opened or read (missing, a symbolic link in the way, no permission, ...).
        """
        with self._shard(fingerprint) as shard:
            fd = _open_at(shard, f"{fingerprint}.pkl", os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO: no hang
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != nbytes:
                raise Mismatch(f"{info.st_size} bytes where {nbytes} were written", info.st_uid)
            payload = read_private(fd, nbytes)
            payload.owner = info.st_uid
            return payload
        finally:
            os.close(fd)

    # ------------------------------------------------------------ upkeep

    def sweep(self, known: set[str], older_than: float, now: float) -> int:
        """Delete temporary files of killed writers, and value files no row names, older than ``older_than`` s."""
        removed = 0
        with contextlib.suppress(OSError), self._folder("blobs") as blobs:
            for shard_name in _names(blobs):
                if not _SHARD.fullmatch(shard_name):
                    continue
                try:
                    shard = _open_folder(blobs, shard_name)  # a symbolic link is not entered (verify removes it)
                except OSError:
                    continue
                try:
                    removed += self._sweep_shard(shard, shard_name, known, now - older_than)
                finally:
                    _close(shard)
        return removed

    def _sweep_shard(self, shard: Folder, shard_name: str, known: set[str], cutoff: float) -> int:
        removed = 0
        for name in _names(shard):
            stem = name[:-4] if name.endswith(".pkl") else ""
            named = valid_fingerprint(stem) and stem[:2] == shard_name and stem in known
            stray = name.startswith(".tmp-") or (valid_fingerprint(stem) and not named)
            try:
                info = _lstat(shard, name)
                if stray and stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff:
                    _unlink(shard, name)
                    removed += 1
            except OSError:
                continue  # another process removed or is replacing it
        return removed

    def planted_links(self, remove: bool) -> list[str]:
        """Symbolic links where dagnb keeps folders or values (``blobs``, ``blobs/ab``, ``blobs/ab/x.pkl``).

        With ``remove``, each link itself is deleted (never what it points to).
        """
        found: list[str] = []
        with self._folder() as root:
            if self._link_at(root, "blobs", "blobs", remove, found):
                return found
            with contextlib.suppress(FileNotFoundError), self._folder("blobs") as blobs:
                for shard_name in _names(blobs):
                    if self._link_at(blobs, shard_name, f"blobs/{shard_name}", remove, found):
                        continue
                    with contextlib.suppress(OSError), self._folder("blobs", shard_name) as shard:
                        for name in _names(shard):
                            self._link_at(shard, name, f"blobs/{shard_name}/{name}", remove, found)
        return found

    @staticmethod
    def _link_at(folder: Folder, name: str, shown: str, remove: bool, found: list[str]) -> bool:
        try:
            is_link = stat.S_ISLNK(_lstat(folder, name).st_mode)
        except FileNotFoundError:
            return False
        if is_link:
            found.append(shown)
            if remove:
                with contextlib.suppress(FileNotFoundError):
                    _unlink(folder, name)
        return is_link


@dataclass
class Written:
    """A value file written under a temporary name, not yet in place."""

    files: BlobFiles
    fingerprint: str
    name: str
    nbytes: int = 0
    digests: list[bytes] = field(default_factory=list)
    placed: bool = False

    def sync(self) -> None:
        """Make the temporary file's bytes durable (before it is placed, so a placed file is whole)."""
        with self.files._shard(self.fingerprint) as shard:
            fd = _open_at(shard, self.name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def place(self) -> None:
        """Rename it to its fingerprint's name (replacing a file that failed its signature)."""
        with self.files._shard(self.fingerprint) as shard:
            final = f"{self.fingerprint}.pkl"
            if _AT:
                os.rename(self.name, final, src_dir_fd=shard, dst_dir_fd=shard)
            else:
                os.replace(shard / self.name, shard / final)
        self.placed = True

    def discard(self) -> None:
        """Delete the temporary file (nothing happens once it is placed)."""
        if self.placed:
            return
        with contextlib.suppress(OSError), self.files._shard(self.fingerprint) as shard:
            _unlink(shard, self.name)
