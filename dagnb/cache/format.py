"""A cache's format: which one a folder holds, how an older one is upgraded or set aside.

Invariants:

* The format is read without writing anything (:func:`stored_format`): a
  cache this dagnb refuses is left exactly as it was.
* A cache of a newer format is refused (:class:`CacheFormatError`).
* A cache of a format in :data:`UPGRADES` is upgraded in place, in one
  transaction, step by step (3 to 4: its tables gain columns, every row and
  file stays valid; 4 to 5: heads, hit counts and runs gain a scope and are
  signed anew, by the ``migrate`` its opener gives, which holds the secret).
  Opened read-only, it is read as it is (:mod:`dagnb.cache.heads`).
* A cache of an older format, or metadata SQLite cannot read at all, is
  moved aside into the folder (``old-format-N/``, ``damaged-N/``,
  :func:`set_aside`): nothing is deleted.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from dagnb.errors import DagnbError

__all__ = [
    "FORMAT_VERSION",
    "UPGRADES",
    "CacheFormatError",
    "Migrate",
    "Unmigrated",
    "format_of",
    "older",
    "set_aside",
    "stored_format",
    "upgrade",
]

# 1: unsigned entries; 2: signed entries and values (SHA-256 chunks), unsigned history and heads;
# 3: values signed over BLAKE3 chunks, signed heads, hit counts and history (deduplicated and bounded)
# 4: small values live in their metadata row (``blobs.data``, signed as a "row"), not in a file
# 5: heads, hit counts and runs per scope (a notebook, or a folder: dagnb.scope), signed with it
FORMAT_VERSION = 5
COLUMNS = {3: (("blobs", "data", "BLOB"), ("blobs", "owner", "INTEGER"))}  # the columns a format's next gains
UPGRADES = (3, 4)  # formats upgraded in place (4 to 5 by the opener's `Migrate`)
Migrate = Callable[[sqlite3.Connection], None]  # format 4 to 5, in the caller's write transaction
_UNSIGNED = {
    1: "whose entries are not signed, so they cannot be trusted",
    2: "whose run history and heads are not signed, so they cannot be trusted",
}
FILES = ("meta.sqlite", "meta.sqlite-wal", "meta.sqlite-shm", "blobs")  # what a cache is made of, set aside whole


class CacheFormatError(DagnbError):
    """A cache written by a newer dagnb."""

    def __init__(self, location: str, found: int) -> None:
        self.location, self.found = location, found
        super().__init__(
            f"The cache at {location} was written by a newer dagnb (cache format {found}); this dagnb "
            f"reads formats up to {FORMAT_VERSION}. Upgrade dagnb, or use another cache directory "
            f"(`DAGNB_CACHE_DIR`, `%dag cache --dir PATH`)."
        )


def refuse_newer(root: Path, found: int | None) -> None:
    """Raise :class:`CacheFormatError` when ``found`` is a format newer than this dagnb's."""
    if found is not None and found > FORMAT_VERSION:
        raise CacheFormatError(str(root), found)


def older(found: int | None) -> bool:
    """Whether a cache of format ``found`` is too old to read: it is set aside (or, read-only, not used)."""
    return found is not None and found < FORMAT_VERSION and found not in UPGRADES


def why_older(found: int) -> str:
    """Why a cache of an older format is not read (for the warning that says it was set aside)."""
    return _UNSIGNED.get(found, "which this dagnb does not read")


class Unmigrated(Exception):
    """A cache of format 4, opened by a caller that gives no :data:`Migrate` (it is set aside instead)."""

    def __init__(self, found: int) -> None:
        super().__init__(found)
        self.found = found


def upgrade(db: sqlite3.Connection, migrate: Migrate | None) -> None:
    """Bring a cache of a format in :data:`UPGRADES` to this format, in the caller's write transaction.

    Raises:
        Unmigrated: it needs ``migrate``, and there is none.
    """
    found = format_of(db)
    if found not in UPGRADES:
        return
    if migrate is None:
        raise Unmigrated(found)  # before any change: the transaction has nothing to roll back
    for table, column, kind in COLUMNS.get(found, ()):  # 3 to 4
        if column not in {row[1] for row in db.execute(f"PRAGMA table_info({table})")}:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    migrate(db)  # 4 to 5
    db.execute("UPDATE meta SET value = ? WHERE name = 'format'", (str(FORMAT_VERSION),))


def set_aside(root: Path, stem: str) -> Path:
    """Move the metadata and value files into ``root/stem/`` (``stem-2``, ... if taken); nothing is deleted."""
    aside = root / stem
    number = 1
    while aside.exists():  # never over an earlier set-aside copy
        number += 1
        aside = root / f"{stem}-{number}"
    aside.mkdir()
    for name in FILES:
        if (root / name).exists() or (root / name).is_symlink():
            os.replace(root / name, aside / name)
    return aside


def stored_format(root: Path) -> int | None:
    """The format a cache directory records, read without changing anything (``None``: no cache yet)."""
    path = root / "meta.sqlite"
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, timeout=30)  # no -wal/-shm files
        try:
            return format_of(db)
        finally:
            db.close()
    except sqlite3.Error:
        return None  # no meta table yet (a cache being created), or damaged: found out when opened


def format_of(db: sqlite3.Connection, strict: bool = False) -> int | None:
    """The format ``db`` records (``None`` if none); ``strict``: raise what SQLite raised reading it."""
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
