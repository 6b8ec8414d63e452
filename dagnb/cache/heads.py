"""Heads and hit counts in a cache's metadata, per scope (a notebook, or a folder: :mod:`dagnb.scope`).

A head is the key a task last had in one scope: the plan's reasons and
``%dag why`` compare a task's key with it. A hit count says how often a key
was loaded from the cache in one scope, and how much compute time that
saved (``%dag costs``). Both are signed rows (HMAC-SHA256 with the user's
secret, :mod:`dagnb.cache.trust`) whose signature covers their scope, so a
row moved to another notebook's scope is never used.

A scope is a name here (the one :meth:`dagnb.scope.Scope.name_in` gives):
a folder's ends with ``/``, a notebook's never does.

Invariants:

* Entries and values are shared by every scope (by key and by content);
  only heads, hit counts and the run history (:mod:`dagnb.cache.runlog`) are
  per scope.
* :func:`migrate_to_5` keeps every head, hit count and run of a format-4
  cache, in the scope it is given (the fallback: a folder's); only rows whose
  format-4 signature holds are signed anew, the others are kept as they
  were (never used, removed by ``verify``).
* A format-3 or format-4 cache read as it is (opened read-only: it cannot be
  migrated) has one set of heads, hit counts and runs, signed without a
  scope: they count as a folder's (where the migration would put them), and
  a notebook's scope has none there.

The caller holds the write transaction and the lock around each function
that writes.
"""

from __future__ import annotations

import sqlite3

from dagnb.cache import runlog
from dagnb.cache.trust import Signer

__all__ = ["SCHEMA", "head_fields", "hit_fields", "is_folder", "migrate_to_5", "scoped"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS heads (
    scope TEXT NOT NULL, task TEXT NOT NULL, key TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (scope, task));
CREATE TABLE IF NOT EXISTS hits (
    scope TEXT NOT NULL, key TEXT NOT NULL, count INTEGER NOT NULL, saved REAL NOT NULL, signature TEXT NOT NULL,
    PRIMARY KEY (scope, key));
"""


def is_folder(scope: str) -> bool:
    """Whether ``scope`` names a folder (the fallback of a session that does not know its notebook)."""
    return scope.endswith("/")


def scoped(db: sqlite3.Connection) -> bool:
    """Whether ``db`` keeps heads per scope (format 5); ``False`` for a format-3 or 4 cache read as it is."""
    return "scope" in {row[1] for row in db.execute("PRAGMA table_info(heads)")}


def head_fields(scope: str | None, task: str, key: str) -> tuple[str, ...]:
    """What a head's signature covers; ``scope=None``: as formats 3 and 4 signed it, before heads had a scope."""
    return ("head", task, key) if scope is None else ("head", "scope", scope, task, key)


def hit_fields(scope: str | None, key: str, count: int, saved: float) -> tuple[str, ...]:
    """What a hit count's signature covers; ``scope=None``: as formats 3 and 4 signed it."""
    counted = (key, str(int(count)), repr(float(saved)))
    return ("hits", *counted) if scope is None else ("hits", "scope", scope, *counted)


def migrate_to_5(db: sqlite3.Connection, signer: Signer, scope: str) -> None:
    """Format 4 to 5: heads, hit counts and runs (format 4 had one set per cache) go to ``scope``."""
    db.execute("ALTER TABLE heads RENAME TO heads_format_4")
    db.execute("ALTER TABLE hits RENAME TO hits_format_4")
    for statement in SCHEMA.split(";"):  # one by one: `executescript` would commit the caller's transaction
        if statement.strip():
            db.execute(statement)
    for task, key, signature in db.execute("SELECT task, key, signature FROM heads_format_4").fetchall():
        if signer.check(signature, head_fields(None, task, key)):
            signature = signer.sign(head_fields(scope, task, key))
        db.execute("INSERT INTO heads VALUES (?, ?, ?, ?)", (scope, task, key, signature))
    for key, count, saved, signature in db.execute("SELECT key, count, saved, signature FROM hits_format_4").fetchall():
        if signer.check(signature, hit_fields(None, key, count, saved)):
            signature = signer.sign(hit_fields(scope, key, count, saved))
        db.execute("INSERT INTO hits VALUES (?, ?, ?, ?, ?)", (scope, key, count, saved, signature))
    db.execute("DROP TABLE heads_format_4")
    db.execute("DROP TABLE hits_format_4")
    runlog.migrate_to_5(db, signer, scope)
