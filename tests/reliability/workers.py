"""Worker processes of the concurrency tests, run as ``python workers.py ROLE ...``.

Each waits for a ``go`` file so that all start at once, prints one JSON
line of counts on stdout, and exits non-zero (traceback on stderr) on any
exception. Values come from :func:`faultlib.entry_value`, so every process
agrees on what each key must hold.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "unit")]

import faultlib

SHARED = [f"s{i}" for i in range(12)]  # every writer writes these, with the same values


def own(writer: int) -> list[str]:
    return [f"w{writer}-{i}" for i in range(4)]


def all_keys(writers: int) -> list[str]:
    return SHARED + [k for w in range(writers) for k in own(w)]


def wait_for(go: Path) -> None:
    deadline = time.monotonic() + 120
    while not go.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{go} never appeared")
        time.sleep(0.001)


def writer(root: str, go: str, index: str, rounds: str) -> dict[str, int]:
    from dagnb.cache.store import CacheEntry, CacheMiss, DiskStore
    from dagnb.fingerprints.values import fingerprint

    me = int(index)
    order = random.Random(me)
    counts = dict.fromkeys(["puts", "loads", "misses", "wrong"], 0)
    wait_for(Path(go))
    store = DiskStore(root)
    for _ in range(int(rounds)):
        keys = SHARED + own(me)
        order.shuffle(keys)
        for key in keys:
            value = faultlib.entry_value(key)
            store.put(CacheEntry(key, f"task-{key[0]}", fingerprint(value), duration=0.1), value)
            store.set_head(f"task-{key[0]}", key)
            store.touch([(key, 0.1)])
            counts["puts"] += 1
            entry = store.entry(key)
            try:
                back = store.load(entry)  # type: ignore[arg-type]
            except CacheMiss:
                counts["misses"] += 1
                continue
            counts["loads"] += 1
            counts["wrong"] += not faultlib.same(back, value)
    store.close()
    return counts


def reader(root: str, go: str, stop: str, writers: str) -> dict[str, int]:
    from dagnb.cache.store import CacheMiss, DiskStore

    counts = dict.fromkeys(["passes", "loads", "misses", "wrong", "absent"], 0)
    wait_for(Path(go))
    store = DiskStore(root)
    keys = all_keys(int(writers))
    while True:
        last = Path(stop).exists()  # one more full pass after the writers are done
        for key in keys:
            entry = store.entry(key)
            if entry is None or not entry.stored:
                counts["absent"] += 1
                continue
            try:
                value = store.load(entry)
            except CacheMiss:
                counts["misses"] += 1
                continue
            counts["loads"] += 1
            counts["wrong"] += not faultlib.same(value, faultlib.entry_value(key))
        counts["passes"] += 1
        if last:
            break
    store.close()
    return counts


DAG = [
    """
def base():
    note("base")
    import time
    import numpy as np
    time.sleep(0.2)  # both sessions are inside the run together
    return np.arange(200_000) % 7
""",
    """
def left(base):
    note("left")
    return base * 2
""",
    """
def right(base):
    note("right")
    return {"sum": int(base.sum()), "n": len(base)}
""",
    """
def joined(left, right):
    note("joined")
    return int(left.sum()) + right["sum"]
""",
]


def expected() -> dict[str, object]:
    import numpy as np

    base = np.arange(200_000) % 7
    right = {"sum": int(base.sum()), "n": len(base)}
    return {"base": base, "left": base * 2, "right": right, "joined": int((base * 2).sum()) + right["sum"]}


def session(folder: str) -> object:
    from notebook_cells import Notebook

    nb = Notebook(Path(folder))
    for source in DAG:
        nb.task(source)
    return nb


def graph(folder: str, go: str) -> dict[str, object]:
    nb = session(folder)
    wait_for(Path(go))
    report, ran = nb.run()  # type: ignore[attr-defined]
    want = expected()
    wrong = [t for t, v in want.items() if not faultlib.same(nb.graph[t], v)]  # type: ignore[attr-defined]
    nb.graph.store.close()  # type: ignore[attr-defined]
    return {"ok": report.ok, "ran": ran, "wrong": wrong}


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    result = {"writer": writer, "reader": reader, "graph": graph}[role](*args)
    print(json.dumps(result))
