"""Build ``format-5/``: a small cache written by the current DiskStore (format 5, signed with the test key).

Two notebooks beside the cache folder share it: ``a.ipynb`` holds the heads,
hit counts and run of ``golden_values`` (those format 4 held for the whole
cache), ``b.ipynb`` its own head of ``raw`` and a run of its own; no folder's
scope holds anything. Scopes are named relative to the folder that holds the
cache, so the copy a test makes keeps them. As in format 4, every value
lives in its row: the fixture has no value files.

Run ``python tests/golden/make_format5.py`` only when format 5 itself is
meant to change (it never should: old caches must keep loading). The files
are committed; tests copy them and never regenerate them.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from golden_values import B_HEAD, B_RUN, FINGERPRINTS, HEADS, HITS, KEY, RUN, UNSTORED, values
from make_format2 import compact  # same rows, smaller pages, back to WAL

from dagnb.cache.disk import FORMAT_VERSION, DiskStore
from dagnb.cache.store import CacheEntry, TaskRecord
from dagnb.scope import Scope

Run = tuple[float, float, list[tuple[str, str, str, "str | None", float, str]]]


def record(store: DiskStore, run: Run) -> None:
    started, finished, rows = run
    tasks = [TaskRecord(t, status, reason, key, FINGERPRINTS[key] if key else None, duration, worker)
             for t, status, reason, key, duration, worker in rows]
    store.record_run(started, finished, tasks)


def main(target: Path = HERE / "format-5") -> None:
    assert FORMAT_VERSION == 5, "this script writes format 5 with the DiskStore of a dagnb that writes it"
    shutil.rmtree(target, ignore_errors=True)
    store = DiskStore(target, secret=KEY, scope=Scope.of_notebook(target.parent / "a.ipynb"))
    for key, (task, value, meta) in values().items():
        fields = {("captured" if name == "outputs" else name): want for name, want in meta.items()}  # its attr name
        store.put(CacheEntry(key, task, FINGERPRINTS[key], created=1_700_000_000.0, **fields), value)
    key, task, output = UNSTORED
    store.put(CacheEntry(key, task, output, stored=False), None)
    for task, key in HEADS.items():
        store.set_head(task, key)
    for hit in HITS:
        store.touch([hit])
    record(store, RUN)
    store.use_scope(Scope.of_notebook(target.parent / "b.ipynb"))
    store.set_head(*B_HEAD)
    record(store, B_RUN)
    store.close()
    compact(target / "meta.sqlite")
    (target / ".dagnb.lock").unlink(missing_ok=True)  # the opening lock: no part of the cache
    print(f"wrote {target}: " + ", ".join(f"{p.relative_to(target)} ({p.stat().st_size} B)"
                                          for p in sorted(target.rglob("*")) if p.is_file()))


if __name__ == "__main__":
    main()
