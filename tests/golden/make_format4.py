"""Build ``format-4/``: a small cache written by the DiskStore of format 4 (signed with the test key).

Every value here pickles to less than 64 KiB, so each lives in its row
(``blobs.data``): the fixture has no value files.

It needs the dagnb of that time (format 5 migrates such a cache in place);
the fixture must never change: old caches must keep loading. The files are
committed; tests copy them and never regenerate them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from golden_values import HEADS, HITS, KEY, RUN, UNSTORED, values
from make_format2 import compact  # same rows, smaller pages, back to WAL

from dagnb.cache.disk import FORMAT_VERSION, DiskStore
from dagnb.cache.store import CacheEntry, TaskRecord
from dagnb.fingerprints.values import fingerprint


def main(target: Path = HERE / "format-4") -> None:
    assert FORMAT_VERSION == 4, "this script writes format 4 with the DiskStore of a dagnb that writes it"
    shutil.rmtree(target, ignore_errors=True)
    store = DiskStore(target, secret=KEY)
    for key, (task, value, meta) in values().items():
        store.put(CacheEntry(key, task, fingerprint(value), created=1_700_000_000.0, **meta), value)
    key, task, output = UNSTORED
    store.put(CacheEntry(key, task, output, stored=False), None)
    for task, key in HEADS.items():
        store.set_head(task, key)
    for hit in HITS:
        store.touch([hit])
    started, finished, rows = RUN
    tasks = [TaskRecord(t, status, reason, key, fingerprint(values()[key][1]) if key else None, duration, worker)
             for t, status, reason, key, duration, worker in rows]
    store.record_run(started, finished, tasks)
    store.close()
    compact(target / "meta.sqlite")
    print(f"wrote {target}: " + ", ".join(f"{p.relative_to(target)} ({p.stat().st_size} B)"
                                          for p in sorted(target.rglob("*")) if p.is_file()))


if __name__ == "__main__":
    main()
