"""Opening a cache folder: its format, its permissions, and whether this user may write it.

Invariants:

* A cache of a newer format is refused and left exactly as it was (its
  format is read without writing anything).
* A cache of format 3 is upgraded in place (its tables gain the columns
  of format 4; every row and file stays valid), also when it is opened
  read-only (then it is read as it is).
* A cache of an older format, or metadata SQLite cannot read at all, is
  moved aside into the folder (``old-format-N/``, ``damaged-N/``): nothing is
  deleted, and the cache starts afresh.
* A cache this user cannot write (someone else's, or on a read-only file
  system) is opened read-only: SQLite's read-only mode, nothing created,
  moved or changed. A folder that cannot be created, or a read-only folder
  with no usable cache in it, raises :class:`CacheUnavailable`.
* Opening for writing is serialized between processes by an ``flock`` on
  ``.dagnb.lock``, so kernels starting at once agree on the format.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dagnb.cache.blobs import BlobFiles, FileModes
from dagnb.errors import DagnbCacheWarning, DagnbError
from dagnb.cache.trust import user_name

__all__ = ["FORMAT_VERSION", "CacheFormatError", "CacheUnavailable", "Opened", "open_cache", "read_only_reason", "set_aside"]

# 1: unsigned entries; 2: signed entries and values (SHA-256 chunks), unsigned history and heads;
# 3: values signed over BLAKE3 chunks, signed heads, hit counts and history (deduplicated and bounded)
# 4: small values live in their metadata row (``blobs.data``, signed as a "row"), not in a file
FORMAT_VERSION = 4
_UPGRADES = {3: (("blobs", "data", "BLOB"), ("blobs", "owner", "INTEGER"))}  # the columns a format gains
_UNSIGNED = {1: "whose entries are not signed, so they cannot be trusted",
             2: "whose run history and heads are not signed, so they cannot be trusted"}
_FILES = ("meta.sqlite", "meta.sqlite-wal", "meta.sqlite-shm", "blobs")


class CacheFormatError(DagnbError):
    """A cache written by a newer dagnb."""

    def __init__(self, location: str, found: int) -> None:
        self.location, self.found = location, found
        super().__init__(
            f"The cache at {location} was written by a newer dagnb (cache format {found}); this dagnb "
            f"reads formats up to {FORMAT_VERSION}. Upgrade dagnb, or use another cache directory "
            f"(`DAGNB_CACHE_DIR`, `%dag cache --dir PATH`)."
        )


class CacheUnavailable(DagnbError):
    """No cache can be used at this location (the message says why and what to do)."""


@dataclass
class Opened:
    """A cache folder opened: its metadata connection, how to create files, and why it is read-only (if it is)."""

    db: sqlite3.Connection
    modes: FileModes
    read_only: str | None = None


def open_cache(root: Path, schema: str) -> Opened:
    """Open (creating if need be) the cache at ``root`` with the tables of ``schema``.

    Raises:
        CacheFormatError: a newer dagnb wrote it.
        CacheUnavailable: it cannot be created, or is read-only with nothing usable in it.
    """
    found = _stored_format(root)  # read-only: a cache this dagnb refuses is left exactly as it was
    if found is not None and found > FORMAT_VERSION:
        raise CacheFormatError(str(root), found)
    try:
        _make_root(root)
    except OSError as exc:
        raise CacheUnavailable(f"dagnb cannot create the cache folder {root} ({exc.strerror or exc}).") from None
    why = read_only_reason(root)
    if why is not None:
        return Opened(_open_read_only(root, why), FileModes(), why)
    modes = FileModes.of(root)
    with _file_lock(root / ".dagnb.lock", modes):
        return Opened(_open_writable(root, modes, schema), modes)


def _make_root(root: Path) -> None:
    """Create the cache folder; in a group-shared folder it is shared with that group too."""
    if root.is_dir():
        return
    parent = root.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    modes = FileModes.of(parent) if parent.is_dir() else FileModes()
    root.mkdir(parents=True, exist_ok=True)
    if modes.shared:
        fd = os.open(root, os.O_RDONLY)
        try:
            modes.own(fd, folder=True)
        finally:
            os.close(fd)


def read_only_reason(root: Path) -> str | None:
    """Why this user cannot write the cache at ``root``, or ``None`` when they can."""
    with contextlib.suppress(OSError, AttributeError):
        if os.statvfs(root).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    for name in ("", *_FILES):
        path = root / name if name else root
        folder = path.is_dir()
        if path.exists() and not os.access(path, os.W_OK | (os.X_OK if folder else 0)):
            return f"{'the folder' if folder else name} belongs to {user_name(path.stat().st_uid)} and you cannot write to it"
    return None


def _open_writable(root: Path, modes: FileModes, schema: str) -> sqlite3.Connection:
    found = _stored_format(root)
    if found is not None and found > FORMAT_VERSION:
        raise CacheFormatError(str(root), found)
    if found is not None and found < FORMAT_VERSION and found not in _UPGRADES:
        aside = set_aside(root, f"old-format-{found}")
        _warn(f"The cache at {root} was written by an older dagnb (format {found}), "
              f"{_UNSIGNED.get(found, 'which this dagnb does not read')}; dagnb starts it afresh (format "
              f"{FORMAT_VERSION}) and recomputes. The old files are in {aside}; delete them when you like.")
    try:
        return _connect(root, modes, schema)
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise
        problem = str(exc)
    aside = set_aside(root, "damaged")
    _warn(f"The cache metadata at {root / 'meta.sqlite'} is damaged (SQLite says: {problem}); dagnb starts the "
          f"cache afresh and recomputes. The old files are in {aside}; delete them when you like.")
    return _connect(root, modes, schema)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """A file that is not a database, or a malformed one (not a lock, a full disk or a permission)."""
    return type(exc) is sqlite3.DatabaseError


def _connect(root: Path, modes: FileModes, schema: str) -> sqlite3.Connection:
    target = BlobFiles(root, modes).prepare()
    if target is not None:
        _warn(f"In the cache at {root}, `blobs` was a symbolic link (to {target}); dagnb removed the link, never "
              f"what it pointed to, and keeps its values in a folder of its own again.")
    modes.create(root / "meta.sqlite")  # SQLite gives its -wal and -shm files the database file's mode
    db = sqlite3.connect(root / "meta.sqlite", check_same_thread=False, timeout=30)
    try:
        live = _format_of(db)  # the probe above reads only checkpointed pages: ask the live database too
        if live is not None and live > FORMAT_VERSION:
            raise CacheFormatError(str(root), live)
        with db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            _upgrade(db)
            db.executescript(schema)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
    except BaseException:
        db.close()
        raise
    return db


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring a cache of a format in :data:`_UPGRADES` to this format, in the caller's transaction."""
    found = _format_of(db)
    if found not in _UPGRADES:
        return
    for table, column, kind in _UPGRADES[found]:  # a column already there: a kill came before the format's row
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    db.execute("UPDATE meta SET value = ? WHERE name = 'format'", (str(FORMAT_VERSION),))


def _open_read_only(root: Path, why: str) -> sqlite3.Connection:
    """The metadata opened read-only: as a live database, else (no writable -shm) as an immutable file."""
    path = root / "meta.sqlite"
    if not path.is_file():
        raise CacheUnavailable(f"The cache folder {root} is read-only for you ({why}) and holds no cache yet.")
    found = _stored_format(root)
    if found is not None and found > FORMAT_VERSION:
        raise CacheFormatError(str(root), found)
    if found is not None and found < FORMAT_VERSION and found not in _UPGRADES:
        raise CacheUnavailable(f"The cache at {root} was written by an older dagnb (format {found}) and is read-only "
                               f"for you ({why}), so dagnb cannot set it aside; nothing in it is used.")
    problem: Exception | None = None
    for options in ("mode=ro", "mode=ro&immutable=1"):
        try:
            db = sqlite3.connect(f"{path.as_uri()}?{options}", uri=True, check_same_thread=False, timeout=30)
        except sqlite3.Error as exc:
            problem = exc
            continue
        try:
            if _format_of(db, strict=True) in (FORMAT_VERSION, *_UPGRADES):
                return db
            problem = None
        except sqlite3.Error as exc:
            problem = exc
        db.close()
    detail = f" (SQLite says: {problem})" if problem else ""
    raise CacheUnavailable(f"The cache at {root} is read-only for you ({why}) and its metadata cannot be read{detail}.")


def set_aside(root: Path, stem: str) -> Path:
    """Move the metadata and value files into ``root/stem/`` (``stem-2``, ... if taken); nothing is deleted."""
    aside = root / stem
    number = 1
    while aside.exists():  # never over an earlier set-aside copy
        number += 1
        aside = root / f"{stem}-{number}"
    aside.mkdir()
    for name in _FILES:
        if (root / name).exists() or (root / name).is_symlink():
            os.replace(root / name, aside / name)
    return aside


def _warn(message: str) -> None:
    warnings.warn(message, DagnbCacheWarning, stacklevel=5)


def _stored_format(root: Path) -> int | None:
    """The format a cache directory records, read without changing anything (``None``: no cache yet)."""
    path = root / "meta.sqlite"
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, timeout=30)  # no -wal/-shm files
        try:
            return _format_of(db)
        finally:
            db.close()
    except sqlite3.Error:
        return None  # no meta table yet (a cache being created), or damaged: found out when opened


def _format_of(db: sqlite3.Connection, strict: bool = False) -> int | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
    except sqlite3.Error:
        if strict:
            raise
        return None
    try:
        return int(row[0]) if row else None
    except ValueError:
        return None


@contextlib.contextmanager
def _file_lock(path: Path, modes: FileModes) -> Iterator[None]:
    """An exclusive lock between processes (POSIX ``flock``; elsewhere, none)."""
    try:
        import fcntl
    except ImportError:  # Windows: opening a cache at the same moment is not serialized
        yield
        return
    with contextlib.suppress(OSError):
        modes.create(path)
    try:  # flock needs no write access
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:  # a lock file we may not read: open unserialized rather than not at all
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
