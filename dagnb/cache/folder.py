"""Opening a cache folder: its permissions, whether this user may write it, and its SQLite metadata.

Invariants:

* A cache of a newer format is refused and left exactly as it was; an
  older one is upgraded (by the ``migrate`` its opener gives) or set aside
  (:mod:`dagnb.cache.format`); one that would be upgraded but is opened
  read-only is read as it is, never upgraded.
* A cache this user cannot write (someone else's, or on a read-only file
  system) is opened read-only: nothing created, moved or changed. A folder
  that cannot be created, or a read-only folder with no usable cache in it,
  raises :class:`CacheUnavailable`.
* A cache opened read-only on purpose (``read_only=True``: ``dagnb check
  --plan``) creates, moves and changes nothing either, not even a folder, a
  lock file or SQLite's ``-wal`` and ``-shm`` files: a cache that is not
  there, of an older format or damaged is opened empty (with a warning for
  the last two), in memory.
* Read-only metadata is opened as an immutable file when no ``-wal`` file
  is there (SQLite's ``mode=ro`` alone creates one, and a ``-shm``), and in
  ``mode=ro`` when a writer may have committed into its ``-wal``. An
  immutable read takes no lock: a writer that starts meanwhile and
  checkpoints can make a read fail with an SQLite error, never pass a row
  that is not signed.
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
from dagnb.cache.format import (
    FILES,
    FORMAT_VERSION,
    UPGRADES,
    CacheFormatError,
    Migrate,
    Unmigrated,
    format_of,
    older,
    refuse_newer,
    set_aside,
    stored_format,
    upgrade,
    why_older,
)
from dagnb.cache.trust import user_name
from dagnb.errors import DagnbCacheWarning, DagnbError

__all__ = [
    "FORMAT_VERSION",
    "CacheFormatError",
    "CacheUnavailable",
    "Opened",
    "open_cache",
    "read_only_reason",
    "set_aside",
]

LOOKING = "it is opened read-only, to look without changing anything"  # why a cache opened with read_only=True is


class CacheUnavailable(DagnbError):
    """No cache can be used at this location (the message says why and what to do)."""


@dataclass
class Opened:
    """A cache folder opened: its metadata connection, how to create files, and why it is read-only (if it is)."""

    db: sqlite3.Connection
    modes: FileModes
    read_only: str | None = None
    found: int | None = None  # the format found, when it is read as it is (an older one opened read-only)


def open_cache(root: Path, schema: str, read_only: bool = False, migrate: Migrate | None = None) -> Opened:
    """Open the cache at ``root`` with the tables of ``schema``: creating it if need be, or (``read_only``) only looking.

    ``migrate`` brings a cache of format 4 (or 3) to this format, in the
    opening transaction; without it such a cache is set aside like older ones.

    Raises:
        CacheFormatError: a newer dagnb wrote it.
        CacheUnavailable: it cannot be created, or is read-only for this user with nothing usable in it.
    """
    found = stored_format(root)  # read-only: a cache this dagnb refuses is left exactly as it was
    refuse_newer(root, found)
    as_it_is = found if found in UPGRADES else None
    if read_only:
        return Opened(_look(root, found, schema), FileModes(), LOOKING, as_it_is)
    try:
        _make_root(root)
    except OSError as exc:
        raise CacheUnavailable(f"dagnb cannot create the cache folder {root} ({exc.strerror or exc}).") from None
    why = read_only_reason(root)
    if why is not None:
        return Opened(_open_read_only(root, why), FileModes(), why, as_it_is)
    modes = FileModes.of(root)
    with _file_lock(root / ".dagnb.lock", modes):
        return Opened(_open_writable(root, modes, schema, migrate), modes)


def _look(root: Path, found: int | None, schema: str) -> sqlite3.Connection:
    """The metadata of ``root`` opened read-only on purpose; an empty one in memory where there is none to read."""
    if not (root / "meta.sqlite").is_file():
        return _empty(schema)
    if found is not None and older(found):
        _warn(
            f"The cache at {root} was written by an older dagnb (format {found}), {why_older(found)}; nothing in "
            f"it is used here, and the next run that writes the cache sets it aside and recomputes."
        )
        return _empty(schema)
    try:
        return _read_only_metadata(root)
    except sqlite3.Error as exc:
        _warn(
            f"The cache metadata at {root / 'meta.sqlite'} cannot be read (SQLite says: {exc}); nothing in it is "
            f"used here, and the next run that writes the cache sets it aside and recomputes."
        )
        return _empty(schema)


def _empty(schema: str) -> sqlite3.Connection:
    """An empty cache's metadata, in memory: a cache opened read-only where there is nothing to read."""
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.executescript(schema)
    db.execute("INSERT INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
    db.commit()
    return db


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
    for name in ("", *FILES):
        path = root / name if name else root
        folder = path.is_dir()
        if path.exists() and not os.access(path, os.W_OK | (os.X_OK if folder else 0)):
            return f"{'the folder' if folder else name} belongs to {user_name(path.stat().st_uid)} and you cannot write to it"
    return None


def _open_writable(root: Path, modes: FileModes, schema: str, migrate: Migrate | None) -> sqlite3.Connection:
    found = stored_format(root)
    refuse_newer(root, found)
    if found is not None and older(found):
        aside = set_aside(root, f"old-format-{found}")
        _warn(
            f"The cache at {root} was written by an older dagnb (format {found}), {why_older(found)}; dagnb starts "
            f"it afresh (format {FORMAT_VERSION}) and recomputes. The old files are in {aside}; delete them when "
            f"you like."
        )
    try:
        return _connect(root, modes, schema, migrate)
    except Unmigrated as old:  # an opener that cannot migrate it: kept aside, as older formats are (never half-opened)
        aside = set_aside(root, f"old-format-{old.found}")
        _warn(
            f"The cache at {root} was written by an older dagnb (format {old.found}); dagnb starts it afresh "
            f"(format {FORMAT_VERSION}) and recomputes. The old files are in {aside}; delete them when you like."
        )
        return _connect(root, modes, schema)
    except sqlite3.DatabaseError as exc:
        if not _damaged(exc):
            raise
        problem = str(exc)
    aside = set_aside(root, "damaged")
    _warn(
        f"The cache metadata at {root / 'meta.sqlite'} is damaged (SQLite says: {problem}); dagnb starts the "
        f"cache afresh and recomputes. The old files are in {aside}; delete them when you like."
    )
    return _connect(root, modes, schema)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    """A file that is not a database, or a malformed one (not a lock, a full disk or a permission)."""
    return type(exc) is sqlite3.DatabaseError


def _connect(root: Path, modes: FileModes, schema: str, migrate: Migrate | None = None) -> sqlite3.Connection:
    target = BlobFiles(root, modes).prepare()
    if target is not None:
        _warn(
            f"In the cache at {root}, `blobs` was a symbolic link (to {target}); dagnb removed the link, never "
            f"what it pointed to, and keeps its values in a folder of its own again."
        )
    modes.create(root / "meta.sqlite")  # SQLite gives its -wal and -shm files the database file's mode
    db = sqlite3.connect(root / "meta.sqlite", check_same_thread=False, timeout=30)
    try:
        live = format_of(db)  # the probe above reads only checkpointed pages: ask the live database too
        if live is not None and live > FORMAT_VERSION:
            raise CacheFormatError(str(root), live)
        with db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        if live in UPGRADES:
            with db:  # one transaction: a kill leaves the old format whole, never half of the new one
                db.execute("BEGIN IMMEDIATE")
                upgrade(db, migrate)
        with db:
            db.executescript(schema)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('format', ?)", (str(FORMAT_VERSION),))
    except BaseException:
        db.close()
        raise
    return db


def _open_read_only(root: Path, why: str) -> sqlite3.Connection:
    """The metadata of a cache this user cannot write, opened read-only."""
    if not (root / "meta.sqlite").is_file():
        raise CacheUnavailable(f"The cache folder {root} is read-only for you ({why}) and holds no cache yet.")
    found = stored_format(root)
    refuse_newer(root, found)
    if older(found):
        raise CacheUnavailable(
            f"The cache at {root} was written by an older dagnb (format {found}) and is read-only "
            f"for you ({why}), so dagnb cannot set it aside; nothing in it is used."
        )
    try:
        return _read_only_metadata(root)
    except sqlite3.Error as exc:
        raise CacheUnavailable(
            f"The cache at {root} is read-only for you ({why}) and its metadata cannot be read (SQLite says: {exc})."
        ) from None


def _read_only_metadata(root: Path) -> sqlite3.Connection:
    """``meta.sqlite`` opened read-only, creating no file (see the module's invariants); raises what SQLite raises.

    With a ``-wal`` file there (a writer's, live or killed) it is read in
    ``mode=ro``, else (or if that fails: no writable ``-shm``) as an
    immutable file, which holds everything committed when no WAL is left.
    """
    path = root / "meta.sqlite"
    live = (root / "meta.sqlite-wal").exists()
    problem: sqlite3.Error | None = None
    for options in (("mode=ro",) if live else ()) + ("mode=ro&immutable=1",):
        try:
            db = sqlite3.connect(f"{path.as_uri()}?{options}", uri=True, check_same_thread=False, timeout=30)
        except sqlite3.Error as exc:
            problem = exc
            continue
        try:
            if format_of(db, strict=True) in (FORMAT_VERSION, *UPGRADES):
                return db
            problem = sqlite3.DatabaseError("it holds no dagnb cache of a format this dagnb reads")
        except sqlite3.Error as exc:
            problem = exc
        db.close()
    raise problem or sqlite3.DatabaseError("it cannot be opened")


def _warn(message: str) -> None:
    warnings.warn(message, DagnbCacheWarning, stacklevel=5)


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
