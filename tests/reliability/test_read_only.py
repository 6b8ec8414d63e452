"""A cache opened read-only on purpose (``DiskStore(dir, read_only=True)``, ``dagnb check --plan``) changes nothing.

Each test fills a real cache, takes every file's bytes and modification
time (and the folder's), opens it read-only, reads everything there is to
read, and compares: no file created (no ``-wal``, ``-shm`` or lock file,
no secret), none changed, none moved, no format upgraded. A write asked
of it raises, with its message. The chmod -w copy is read as well; the
suite may run as root, which writes through ``chmod -w``, so the times
and bytes are what prove nothing was written.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import faultlib
import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook

import dagnb
from dagnb.cache.records import CacheEntry, TaskRecord
from dagnb.cache.store import CacheFormatError, CacheOpenedReadOnly, CacheReadOnly, DiskStore
from dagnb.scope import Scope

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SMALL, LARGE = {"rows": [1, 2, 3]}, np.arange(40_000, dtype=np.float64)  # a row, and a file of 320 kB


def stat_snapshot(root: Path) -> dict[str, Any]:
    """Every path under ``root`` (and ``root`` itself) with its modification time, and a file's bytes."""
    found: dict[str, Any] = {".": root.stat().st_mtime_ns}
    for path in sorted(root.rglob("*")):
        found[str(path.relative_to(root))] = (path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else None)
    return found


def filled(root: Path) -> Path:
    """A cache with a small and a large value, a head, hits and a run; closed."""
    store = DiskStore(root)
    for key, task, value in (("k-small", "small", SMALL), ("k-large", "large", LARGE)):
        store.put(CacheEntry(key, task, dagnb.fingerprint(value), parts={"code": task}), value)
        store.set_head(task, key)
    store.touch([("k-small", 1.5)])
    store.record_run(1.0, 2.0, [TaskRecord("small", "done", "new", "k-small", dagnb.fingerprint(SMALL))])
    store.close()
    return root


def read_everything(store: DiskStore, entries: int = 2) -> None:
    """What a plan (and more) reads: entries, heads, both values, hits, runs, info, verify."""
    for task, value in (("small", SMALL), ("large", LARGE)):
        head = store.head(task)
        assert head is not None and store.entries_of(task)[0].key == head.key
        assert faultlib.same(store.load(head), value)
    assert store.hit_totals() == {"small": (1, 1.5)}
    assert [r.tasks[0].task for r in store.runs()] == ["small"]
    assert (store.info().entries, store.info().blobs) == (entries, entries)
    assert store.verify().ok


def test_a_read_only_open_reads_everything_and_touches_no_file(tmp_path: Path) -> None:
    root = filled(tmp_path / "cache")
    before = stat_snapshot(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about either
        store = DiskStore(root, read_only=True)
        read_everything(store)
        store.close()
    assert stat_snapshot(root) == before, "a read-only open created or changed a file"
    faultlib.record_case("test_read_only", "a closed cache read whole (values, heads, hits, runs, verify): no file "
                                           "created or changed")


def test_a_read_only_open_sees_what_a_live_writer_committed(tmp_path: Path) -> None:
    root = filled(tmp_path / "cache")
    writer = DiskStore(root)  # a kernel with the cache open: its commits sit in the -wal file
    writer.put(CacheEntry("k-new", "new", dagnb.fingerprint([7]), parts={"code": "new"}), [7])
    writer.set_head("new", "k-new")
    names = sorted(p.name for p in root.iterdir())
    try:
        store = DiskStore(root, read_only=True)
        assert store.load(store.head("new")) == [7]  # type: ignore[arg-type]
        read_everything(store, entries=3)
        store.close()
        assert sorted(p.name for p in root.iterdir()) == names, "a read-only open created a file beside a writer"
    finally:
        writer.close()
    faultlib.record_case("test_read_only", "beside a live writer: its last commit read, no file created")


def test_a_chmod_w_copy_is_read_and_left_as_it_was(tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(filled(tmp_path / "cache"), root)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)
    before = stat_snapshot(root)
    try:
        store = DiskStore(root, read_only=True)
        read_everything(store)
        store.close()
        assert stat_snapshot(root) == before
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    faultlib.record_case("test_read_only", "a chmod -w copy read whole, left as it was")


def test_every_write_asked_of_a_read_only_store_raises(tmp_path: Path) -> None:
    root = filled(tmp_path / "cache")
    before = stat_snapshot(root)
    store = DiskStore(root, read_only=True)
    entry = CacheEntry("k-other", "other", dagnb.fingerprint(3))
    writes = {"put (task `other`)": lambda: store.put(entry, 3), "set_head": lambda: store.set_head("small", "k"),
              "touch": lambda: store.touch([("k-small", 1.0)]), "record_run": lambda: store.record_run(1.0, 2.0, []),

              "clear": lambda: store.clear(), "prune": lambda: store.prune(0)}
    for action, write in writes.items():
        with pytest.raises(CacheOpenedReadOnly) as refused:
            write()
        assert isinstance(refused.value, CacheReadOnly)
        assert str(refused.value) == (
            f"The cache at {root.resolve()} was opened read-only (`read_only=True`, as `dagnb check --plan` opens "
            f"it), so `{action}` cannot change it; nothing was written. Open it without `read_only` to write to it.")
    for hits, action in (([("k-small", 1.0)], "touch"), ([], "record_run")):  # the end of a run: both in one
        with pytest.raises(CacheOpenedReadOnly, match=f"so `{action}` cannot change it"):
            store.settle_run(hits, 1.0, 2.0, [])
    store.begin_batch()  # a batch of no writes: nothing to refuse, no writer thread
    assert store.flush() == []
    read_everything(store)
    store.close()
    assert stat_snapshot(root) == before
    faultlib.record_case("test_read_only", "put, set_head, touch, record_run, clear, prune each refused with its "
                                           "message, nothing written")


def test_a_read_only_open_creates_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = filled(tmp_path / "cache")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # a user with no secret yet
    before = stat_snapshot(root)
    with pytest.warns(Warning) as caught:
        store = DiskStore(root, read_only=True)
    assert [str(w.message) for w in caught] == [
        f"There is no dagnb secret at {tmp_path / 'data' / 'dagnb' / 'cache.key'} yet (dagnb creates it on first "
        f"use), so nothing in the cache at {root.resolve()} can be trusted: every task counts as not cached."]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every row fails its check, silently: the warning above said why
        assert store.head("small") is None and store.entry("k-large") is None and store.runs() == []
    store.close()
    assert not (tmp_path / "data").exists(), "a read-only open created a secret"
    assert stat_snapshot(root) == before
    faultlib.record_case("test_read_only", "a user with no secret yet: warned, nothing trusted, no secret created")


def test_a_missing_folder_is_an_empty_cache_and_is_not_created(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "nothing" / "here", read_only=True)
    assert (store.info().entries, store.head("t"), store.runs(), store.entries_of("t")) == (0, None, [], [])
    assert store.verify().ok and store.hit_totals() == {} and not store.has_value("a" * 32)
    store.close()
    assert not (tmp_path / "nothing").exists()
    faultlib.record_case("test_read_only", "a missing folder: an empty cache, the folder not created")


@pytest.mark.parametrize("name", ["format-3", "format-4"])
def test_an_older_format_is_not_used_nor_set_aside_and_formats_3_and_4_are_read_as_they_are(
        tmp_path: Path, name: str) -> None:
    old, three = tmp_path / "format-1", tmp_path / name
    shutil.copytree(GOLDEN / "format-1", old)
    shutil.copytree(GOLDEN / name, three)
    before = stat_snapshot(old), stat_snapshot(three)
    with pytest.warns(Warning) as caught:
        store = DiskStore(old, read_only=True)
    assert [str(w.message) for w in caught] == [
        f"The cache at {old.resolve()} was written by an older dagnb (format 1), whose entries are not signed, so "
        f"they cannot be trusted; nothing in it is used here, and the next run that writes the cache sets it aside "
        f"and recomputes."]
    assert store.info().entries == 0
    store.close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # looking: nothing to say about a format it would migrate
        store = DiskStore(three, read_only=True)
    assert store.load(store.head("clean")) == {"rows": [1, 2, 3], "name": "clean", "nested": (1.5, None, b"bytes")}  # type: ignore[arg-type]
    assert [r.id for r in store.runs()] == [1] and store.hit_totals()["clean"] == (1, 0.75)
    assert store.verify().ok
    store.use_scope(Scope.of_notebook(tmp_path / "analysis.ipynb"))  # its heads are the folder's, as migrated
    assert (store.head("clean"), store.runs(), store.hit_totals()) == (None, [], {})
    store.close()
    assert (stat_snapshot(old), stat_snapshot(three)) == before, "an old cache was set aside or upgraded"
    faultlib.record_case("test_read_only", f"format 1 not used (warned), {name} read as it is (heads the folder's), "
                                           f"neither moved nor upgraded")


def test_a_newer_format_is_refused_read_only_too(tmp_path: Path) -> None:
    root = filled(tmp_path / "cache")
    db = sqlite3.connect(root / "meta.sqlite")
    with db:
        db.execute("UPDATE meta SET value = '6' WHERE name = 'format'")
    db.close()
    before = stat_snapshot(root)
    with pytest.raises(CacheFormatError):
        DiskStore(root, read_only=True)
    assert stat_snapshot(root) == before
    faultlib.record_case("test_read_only", "format 6 refused, left as it was")


def test_dagnb_check_plan_leaves_a_cache_exactly_as_it_was(tmp_path: Path) -> None:
    """Before the read-only open, ``check --plan`` upgraded this format-3 cache and left a lock file behind."""
    cache = tmp_path / "cache"
    shutil.copytree(GOLDEN / "format-3", cache)
    nb = new_notebook()
    nb.cells = [new_code_cell("%%task\ndef clean():\n    return 1\n")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    before = stat_snapshot(cache)
    done = subprocess.run([sys.executable, "-m", "dagnb", "check", "--plan", "nb.ipynb", "--cache-dir", str(cache)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stderr) == (0, "")
    # the notebook's own heads: none until a session of nb.ipynb runs (the cache's are the folder's, as migrated)
    assert done.stdout.splitlines()[-1] == "  clean  run  (new)"
    assert stat_snapshot(cache) == before, "dagnb check --plan changed the cache"
    faultlib.record_case("test_read_only", "`dagnb check --plan` over a format-3 cache: planned, nothing upgraded, "
                                           "no lock file")
