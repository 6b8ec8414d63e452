"""Values on the user's path: Python containers fingerprinted, a large array through the disk cache.

1. ``dagnb.fingerprint`` of a list of 1M floats and of a dict of 100k
   ``str -> float``, against the obvious alternative: ``pickle.dumps``
   (protocol 5) and ``xxh3_128`` of the bytes. dagnb fingerprints every
   task output and every notebook input a task reads, so this is paid per
   value on every run that produces or reads one.
2. A 256 MiB float64 array stored in and loaded from the default disk
   cache (``open_store(dir)``, the store a kernel opens at
   ``DAGNB_CACHE_DIR``): store = the value written through joblib to a
   temporary file, fsynced, signed, renamed, its rows committed; load = the
   signature verified over the file, then the array memory-mapped. Against
   ``np.save`` to a file plus ``fsync``, and ``np.load(mmap_mode="r")``
   (which reads only the header; ``np.load`` reading it all is shown too).

These run in this process rather than in a kernel: a kernel runs the very
same calls (the executor fingerprints each output, then ``Store.put``; a
cache hit is ``Store.load``), and the kernel's messaging would only add
noise. Each timing is the median of interleaved runs (dagnb, peer; peer,
dagnb; ...), 5 by default; every store writes a new value (one element
changed, so a new fingerprint and file), as a task producing new output does.
"""

from __future__ import annotations

import gc
import os
import pickle
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import Row, Sizes, interleaved, median, ms, ratio

import dagnb
from dagnb.cache.store import CacheEntry, open_store

GOAL_STORE_OVER_SAVE = 1.2
GOAL_LOAD_OVER_MMAP = 2.0


def _timed(work: Callable[[], Any]) -> float:
    gc.collect()
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def _pickle_xxh3(value: Any) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest(pickle.dumps(value, protocol=5))


def fingerprint_rows(sizes: Sizes, repeat: int) -> list[Row]:
    count = 100_000 if sizes.quick else 1_000_000
    rng = random.Random(0)
    values = {
        f"list of {count:,} floats": [rng.random() for _ in range(count)],
        f"dict of {count // 10:,} str -> float": {f"key{i}": rng.random() for i in range(count // 10)},
    }
    out = []
    for label, value in values.items():
        times: dict[str, list[float]] = {"dagnb": [], "peer": []}
        for order in interleaved(repeat, "dagnb", "peer"):
            for who in order:
                work = dagnb.fingerprint if who == "dagnb" else _pickle_xxh3
                times[who].append(_timed(lambda w=work: w(value)))  # type: ignore[misc]
        d, p = median(times["dagnb"]), median(times["peer"])
        out.append(Row(f"fingerprint a {label} vs `pickle.dumps` + xxh3_128 (median of {repeat})", ms(d),
                       f"pickle + xxh3: {ms(p)}", ratio(p, d), "at least as fast (>= 1x)", d <= p))
    return out


def _np_save_fsync(array: Any, path: Path) -> None:
    import numpy as np

    with open(path, "wb") as handle:
        np.save(handle, array)
        handle.flush()
        os.fsync(handle.fileno())


def _new_value(array: Any, round_: int) -> CacheEntry:
    """Change ``array`` in one element and make its cache entry: a new fingerprint, so a new file."""
    array[0] = float(round_)
    return CacheEntry(key=f"bench-{round_}", task="big", fingerprint=dagnb.fingerprint(array))


def array_rows(sizes: Sizes, repeat: int) -> list[Row]:
    import numpy as np

    nbytes = sizes.array_bytes
    array = np.random.default_rng(0).random(nbytes // 8)
    times: dict[str, list[float]] = {k: [] for k in ("put", "save", "load", "mmap", "read")}
    with tempfile.TemporaryDirectory(prefix="dagnb-bench-values-") as tmp:
        store = open_store(Path(tmp) / "cache")
        try:
            for r, order in enumerate(interleaved(repeat, "dagnb", "peer")):
                entry = _new_value(array, r)  # fingerprinting is not timed here (see bench_hashing)
                # a new file each round, kept, as the cache keeps each value: rewriting one file reuses the
                # page cache its last version freed, several times faster than new pages on this machine
                saved = Path(tmp) / f"array-{r}.npy"
                for who in order:
                    if who == "dagnb":
                        times["put"].append(_timed(lambda: store.put(entry, array)))
                        times["load"].append(_timed(lambda: store.load(entry)))
                    else:
                        times["save"].append(_timed(lambda: _np_save_fsync(array, saved)))
                        times["mmap"].append(_timed(lambda: np.load(saved, mmap_mode="r")))
                        times["read"].append(_timed(lambda: np.load(saved)))
        finally:
            store.close()
    put, save, load, mmap, read = (median(times[k]) for k in ("put", "save", "load", "mmap", "read"))
    label = f"{nbytes / 2**20:,.0f} MiB float64 array, default disk cache"
    return [
        Row(f"store a {label} vs `np.save` + fsync (median of {repeat})", ms(put), f"np.save + fsync: {ms(save)}",
            ratio(save, put), f"<= {GOAL_STORE_OVER_SAVE}x np.save (ratio >= {1 / GOAL_STORE_OVER_SAVE:.2f})",
            put <= GOAL_STORE_OVER_SAVE * save),
        Row(f"load a {label} (signature verified) vs `np.load(mmap_mode='r')` (median of {repeat})", ms(load),
            f"np.load mmap: {ms(mmap)} (reading it all: {ms(read)})", ratio(mmap, load),
            f"<= {GOAL_LOAD_OVER_MMAP:.0f}x np.load mmap (ratio >= {1 / GOAL_LOAD_OVER_MMAP:.2f})",
            load <= GOAL_LOAD_OVER_MMAP * mmap),
    ]


def rows(sizes: Sizes) -> list[Row]:
    repeat = 3 if sizes.quick else 5
    return fingerprint_rows(sizes, repeat) + array_rows(sizes, repeat)
