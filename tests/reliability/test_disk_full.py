"""A full disk: the run goes on, the value stays in memory, the cache says what it could not keep.

First on a real 2 MB tmpfs (mounted here when the test runs as root and
``mount`` works; skipped otherwise), then, always, with the value file's
write made to fail with ENOSPC (or the fsync, or the rename) midway.
"""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import Any

import faultlib
import numpy as np
import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.cache import dumping
from dagnb.cache.store import CacheEntry, DiskStore
from dagnb.errors import DagnbCacheWarning
from dagnb.fingerprints.values import fingerprint

BIG = """
def big():
    note("big")
    import numpy as np
    return np.arange(400_000, dtype=np.float64)  # 3.2 MB: more than the disk holds
"""
SMALL = """
def small(big):
    note("small")
    return float(big.sum())
"""
TINY = """
def tiny():
    note("tiny")
    return list(range(3_000))
"""
EXPECTED_BIG = np.arange(400_000, dtype=np.float64)
NOT_WRITTEN = (
    "The value of task `big` could not be written to the cache (No space left on device); it is kept in "
    "memory only and recomputed after a restart."
)


def session(folder: Path, cache: Path | None = None, tasks: tuple[str, ...] = (BIG, SMALL)) -> Notebook:
    """A notebook whose log is in ``folder`` and whose cache is ``cache`` (default ``folder/cache``)."""
    nb = Notebook(folder)
    if cache is not None:
        nb.graph.store.close()
        nb.graph = dagnb.Graph(cache_dir=str(cache), namespace=nb.ns)
    for source in tasks:
        nb.task(source)
    return nb


def cache_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)]


def test_a_value_bigger_than_the_disk_stays_in_memory(tmp_path: Path, small_disk: Path) -> None:
    root = small_disk / "cache"
    nb = session(tmp_path, root)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, ran = nb.run()
    assert report.ok and ran == ["big", "small"]
    assert faultlib.same(nb.graph["big"], EXPECTED_BIG) and nb.graph["small"] == float(EXPECTED_BIG.sum())
    assert cache_warnings(caught) == [NOT_WRITTEN]
    assert faultlib.tmp_files(root) == []
    entry = nb.graph.store.head("big")
    assert entry is not None and not entry.stored

    report, ran = nb.run()  # the same session: in memory, nothing reruns
    assert ran == [] and faultlib.same(nb.graph["big"], EXPECTED_BIG)
    nb.graph.store.close()

    again = session(tmp_path, root)  # a restart: `big` recomputes, `small` (stored, same input) loads
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, ran = again.run()
    assert report.ok and ran == ["big"]
    assert faultlib.same(again.graph["big"], EXPECTED_BIG) and again.graph["small"] == float(EXPECTED_BIG.sum())
    assert len(cache_warnings(caught)) == 1 and faultlib.tmp_files(root) == []
    again.graph.store.close()

    faultlib.assert_usable(root)  # small values still fit
    assert faultlib.integrity(root) == "ok"
    faultlib.record_case("test_disk_full", "real 2 MB tmpfs, a 3.2 MB value")


def test_a_disk_too_full_even_for_the_metadata_still_runs(tmp_path: Path, small_disk: Path) -> None:
    nb = session(tmp_path, small_disk / "cache", (TINY,))
    nb.graph.store.set_head("warm", "up")  # the cache exists, its log holds a little
    faultlib.fill(small_disk)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        report, ran = nb.run()
    assert report.ok and ran == ["tiny"] and nb.graph["tiny"] == list(range(3_000))


# ------------------------------------------------------- patched failures


def _fail_midway(monkeypatch: pytest.MonkeyPatch, where: str) -> list[int]:
    """Make the next value file's write, fsync or rename fail with ENOSPC; returns a list the failures count into."""
    failures: list[int] = []
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_dump, real_rename = dumping.dump, os.rename

    class HalfFull:
        """Takes half the pickle's bytes, then the disk is full."""

        def __init__(self, handle: Any, limit: int) -> None:
            self._handle, self._left = handle, limit

        def write(self, data: Any, **how: Any) -> int:
            size = memoryview(data).nbytes
            if size > self._left:
                failures.append(1)
                raise full
            self._left -= size
            return self._handle.write(data, **how)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._handle, name)

    def dump(value: Any, handle: Any, *args: Any, **kwargs: Any) -> Any:
        return real_dump(value, HalfFull(handle, getattr(value, "nbytes", 0) // 2), *args, **kwargs)

    def fsync(fd: int) -> None:
        failures.append(1)
        raise full

    def rename(src: Any, dst: Any, **where: Any) -> None:  # a value file goes into place with renameat()
        if str(dst).endswith(".pkl"):
            failures.append(1)
            raise full
        real_rename(src, dst, **where)

    patch = {"write": (dumping, "dump", dump), "fsync": (os, "fsync", fsync), "rename": (os, "rename", rename)}[where]
    monkeypatch.setattr(*patch)
    return failures


@pytest.mark.parametrize("where", ["write", "fsync", "rename"])
def test_enospc_midway_keeps_the_value_in_memory_and_recomputes_after_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    root = tmp_path / "cache"
    nb = session(tmp_path)
    failures = _fail_midway(monkeypatch, where)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, ran = nb.run("big")
    monkeypatch.undo()
    assert failures, "the failure was injected"
    assert report.ok and ran == ["big"] and faultlib.same(nb.graph["big"], EXPECTED_BIG)
    assert cache_warnings(caught) == [NOT_WRITTEN]
    assert faultlib.tmp_files(root) == [] and faultlib.blob_files(root) == []

    report, ran = nb.run()  # space again: `small` is stored; `big` stays in memory
    assert ran == ["small"] and nb.graph["small"] == float(EXPECTED_BIG.sum())
    nb.graph.store.close()

    again = session(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report, ran = again.run()
    assert ran == ["big"] and faultlib.same(again.graph["big"], EXPECTED_BIG)
    again.graph.store.close()
    third = session(tmp_path)
    assert third.run()[1] == [], "the value was stored once there was space"
    third.graph.store.close()
    faultlib.assert_usable(root)
    faultlib.record_case("test_disk_full", f"patched ENOSPC in the value file's {where}")


def test_enospc_on_the_store_api_leaves_no_entry_and_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At the store level: the failed put raises OSError and leaves nothing behind."""
    store = DiskStore(tmp_path / "cache")
    value = np.arange(100_000)
    entry = CacheEntry("k", "t", fingerprint(value))
    _fail_midway(monkeypatch, "write")
    with pytest.raises(OSError) as raised:
        store.put(entry, value)
    monkeypatch.undo()
    assert raised.value.errno == errno.ENOSPC
    assert store.entry("k") is None and not store.has_value(entry.fingerprint)
    assert faultlib.tmp_files(store.root) == [] and faultlib.blob_files(store.root) == []
    store.put(entry, value)
    assert faultlib.same(store.load(store.entry("k")), value)  # type: ignore[arg-type]
    store.close()
