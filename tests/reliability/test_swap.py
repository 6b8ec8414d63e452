"""A writer without the key swaps a value file while dagnb checks and loads it: its code never runs.

A second process, which may write the cache folder but does not hold the
key, keeps replacing a value file with a malicious pickle of the same size
(and putting the good file back), by rename or by rewriting the file in
place, while this process loads the value over and over. The value must
load equal to what was stored, or be a miss (and be stored again); the
malicious pickle must never be unpickled. Large values (64 MiB and more,
memory-mapped after loading) are the case that once verified one open of
the file and loaded another.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from pathlib import Path
from typing import Any

import faultlib
import joblib
import numpy as np
import pytest

from dagnb.cache.store import CacheEntry, CacheMiss, DiskStore
from dagnb.fingerprints.values import fingerprint

pytestmark = pytest.mark.slow


class Evil:
    """Unpickling this creates a file: proof that it was unpickled."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))


def evil_file(path: Path, target: Path, size: int) -> None:
    """A pickle of :class:`Evil`, padded to ``size`` bytes (the unpickler stops at its STOP opcode)."""
    joblib.dump(Evil(target), path)
    with open(path, "ab") as handle:
        handle.truncate(size)


def swapper(path: str, good: str, evil: str, how: str, stop: Any) -> None:
    """Alternate the file at ``path`` between ``evil`` and ``good`` until ``stop`` is set."""
    tmp = path + ".swap"
    sources = [evil, good]
    turn = 0
    while not stop.is_set():
        source = sources[turn % 2]
        turn += 1
        try:
            if how == "rename":
                os.link(source, tmp)
                os.replace(tmp, path)
            else:  # the same file (inode), rewritten in place
                with open(source, "rb") as src, open(path, "r+b") as dst:
                    shutil.copyfileobj(src, dst, 4 * 2**20)
        except OSError:
            pass  # dagnb removed the file it found altered; it is stored again in a moment
        time.sleep(0.001)


@pytest.mark.parametrize("how", ["rename", "in place"])
@pytest.mark.parametrize("size", ["1 MiB", "72 MiB (memory-mapped)"])
def test_a_value_swapped_while_it_loads_is_never_unpickled(tmp_path: Path, size: str, how: str) -> None:
    count = (2**20 if size == "1 MiB" else 72 * 2**20) // 8
    value = np.random.default_rng(7).standard_normal(count)
    store, target = DiskStore(tmp_path / "cache"), tmp_path / "pwned"
    entry = CacheEntry("k", "t", fingerprint(value))
    store.put(entry, value)
    path = store._blob_path(entry.fingerprint)
    good, evil = tmp_path / "good.pkl", tmp_path / "evil.pkl"
    shutil.copyfile(path, good)
    evil_file(evil, target, good.stat().st_size)

    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    attacker = context.Process(target=swapper, args=(str(path), str(good), str(evil), how, stop))
    attacker.start()
    loads = misses = wrong = 0
    try:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline or loads + misses < 12:
            try:
                back = store.load(entry)
                loads += 1
                wrong += not faultlib.same(np.asarray(back), value)
                del back
            except CacheMiss:
                misses += 1
                store.put(entry, value)  # dagnb stores a recomputed value again
            assert not target.exists(), "the malicious pickle was unpickled"
    finally:
        stop.set()
        attacker.join(30)
    store.close()
    assert (wrong, target.exists()) == (0, False)
    assert misses > 0, "the swapper never got in: the test proved nothing"
    faultlib.record_case("test_swap", f"{size} value swapped {how}: {loads} loads right, {misses} misses, 0 wrong, "
                                      f"never unpickled")
