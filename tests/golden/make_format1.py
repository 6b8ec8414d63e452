"""Build ``format-1/``: a small cache in the previous, unsigned layout (format 1).

dagnb no longer writes format 1, so this writes it with sqlite3 and joblib
directly, as dagnb did: tables ``entries(key, task, output, record, created,
last_used)`` and ``blobs(fingerprint, checksum, nbytes, created, last_used)``
(``checksum``: the xxh3_128 hex digest of the value file's bytes), ``heads``,
``hits``, ``meta.format = '1'``, values as joblib pickles in
``blobs/ab/<fingerprint>.pkl``. The files are committed; tests copy them.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import sys
from pathlib import Path

import joblib
import xxhash

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from golden_values import CREATED, HEADS, HITS, UNSTORED, values

from dagnb.fingerprints.values import fingerprint

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY, task TEXT NOT NULL, output TEXT NOT NULL,
    record TEXT NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL);
CREATE INDEX IF NOT EXISTS entries_task ON entries (task);
CREATE TABLE IF NOT EXISTS blobs (
    fingerprint TEXT PRIMARY KEY, checksum TEXT NOT NULL, nbytes INTEGER NOT NULL,
    created REAL NOT NULL, last_used REAL NOT NULL);
CREATE TABLE IF NOT EXISTS heads (task TEXT PRIMARY KEY, key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS hits (key TEXT PRIMARY KEY, count INTEGER NOT NULL, saved REAL NOT NULL);
"""


def record(key: str, task: str, output: str, nbytes: int, stored: bool = True, **meta: object) -> str:
    """An entry's JSON as format 1 wrote it (every field of the CacheEntry of then, keys sorted)."""
    fields = {"key": key, "task": task, "output": output, "parts": {}, "inputs": {}, "outputs": [],
              "duration": 0.0, "nbytes": nbytes, "stored": stored, "created": CREATED, "cpu_time": 0.0,
              "peak_memory": 0, "value_bytes": 0, "sources": {}}
    fields.update(meta)
    return json.dumps(fields, sort_keys=True)


def main(target: Path = HERE / "format-1") -> None:
    shutil.rmtree(target, ignore_errors=True)
    (target / "blobs").mkdir(parents=True)
    db = sqlite3.connect(target / "meta.sqlite")
    db.execute("PRAGMA page_size=512")
    db.executescript(SCHEMA)
    with db:
        db.execute("INSERT INTO meta VALUES ('format', '1')")
        for key, (task, value, meta) in values().items():
            output = fingerprint(value)
            buffer = io.BytesIO()
            joblib.dump(value, buffer)
            data = buffer.getvalue()
            path = target / "blobs" / output[:2] / f"{output}.pkl"
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
            db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?, ?)",
                       (output, xxhash.xxh3_128_hexdigest(data), len(data), CREATED, CREATED))
            db.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                       (key, task, output, record(key, task, output, len(data), **meta), CREATED, CREATED))
        key, task, output = UNSTORED
        db.execute("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                   (key, task, output, record(key, task, output, 0, stored=False), CREATED, CREATED))
        db.executemany("INSERT INTO heads VALUES (?, ?)", HEADS.items())
        for key, saved in HITS:
            db.execute("INSERT INTO hits VALUES (?, 1, ?) ON CONFLICT(key) DO UPDATE SET count = count + 1, "
                       "saved = saved + excluded.saved", (key, saved))
    db.execute("PRAGMA journal_mode=WAL")  # as dagnb left its caches
    db.close()
    print(f"wrote {target}: " + ", ".join(f"{p.relative_to(target)} ({p.stat().st_size} B)"
                                          for p in sorted(target.rglob("*")) if p.is_file()))


if __name__ == "__main__":
    main()
