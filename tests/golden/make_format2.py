"""Build ``format-2/``: a small cache written by the current DiskStore (format 2, signed with the test key).

It needs the dagnb that wrote format 2 (before format 3: check out that
commit to run it); the files are committed, and tests copy them and never
regenerate them. Since format 3, a format-2 cache is set aside, kept.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from golden_values import HEADS, HITS, UNSTORED, values
from golden_values import KEY_FORMAT_2 as KEY

from dagnb.cache.folder import FORMAT_VERSION
from dagnb.cache.store import CacheEntry, DiskStore
from dagnb.fingerprints.values import fingerprint


def compact(db_path: Path) -> None:
    """Same rows, smaller pages (the fixture stays a few KB); back to WAL, as dagnb leaves it."""
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("PRAGMA page_size=512")
    db.execute("VACUUM")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


def main(target: Path = HERE / "format-2") -> None:
    assert FORMAT_VERSION == 2, "this script writes format 2 with the DiskStore of a dagnb that writes it"
    shutil.rmtree(target, ignore_errors=True)
    store = DiskStore(target, key=KEY)
    for key, (task, value, meta) in values().items():
        store.put(CacheEntry(key, task, fingerprint(value), created=1_700_000_000.0, **meta), value)
    key, task, output = UNSTORED
    store.put(CacheEntry(key, task, output, stored=False), None)
    for task, key in HEADS.items():
        store.set_head(task, key)
    for hit in HITS:
        store.touch([hit])
    store.close()
    compact(target / "meta.sqlite")
    print(f"wrote {target}: " + ", ".join(f"{p.relative_to(target)} ({p.stat().st_size} B)"
                                          for p in sorted(target.rglob("*")) if p.is_file()))


if __name__ == "__main__":
    main()
