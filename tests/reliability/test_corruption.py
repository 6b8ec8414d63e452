"""Damaged, replaced and foreign cache files: each is a miss with a warning that says why, never a wrong value.

A notebook computes ``data`` (an array) and ``total`` (its sum) into a disk
cache; the test damages the cache the way a disk, a careless copy or
another user could; a new session (a new Graph over the same directory)
then runs again. It must warn, naming the reason, recompute ``data`` (the
log file counts executions), end with the right values, and leave a cache
that serves them: a third session loads everything and runs nothing.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faultlib
import joblib
import numpy as np
import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.cache.store import CacheEntry, CacheMiss, DiskStore
from dagnb.cache.trust import sign
from dagnb.errors import DagnbCacheWarning

DATA = """
def data():
    note("data")
    import numpy as np
    return np.random.default_rng(5).standard_normal(20_000)
"""
TOTAL = """
def total(data):
    note("total")
    return float(data.sum())
"""
EXPECTED = np.random.default_rng(5).standard_normal(20_000)

BLOB_REASON = (
    "The cached value of task `data` cannot be used: its value file does not match its signature (it was altered "
    "or truncated, or written with another secret). dagnb recomputes it."
)


def entry_reason(root: Path, task: str = "data") -> str:
    return (
        f"A cache entry of task `{task}` in {root.resolve()} is not signed with your secret, so dagnb ignores it "
        f"and recomputes (it may come from someone else's cache; see 'A cache you can trust' in dagnb's "
        f"docs/cache.md to share a cache on purpose)."
    )


def session(tmp_path: Path, store: DiskStore | None = None) -> Notebook:
    nb = Notebook(tmp_path)
    if store is not None:
        nb.graph = dagnb.Graph(namespace=nb.ns, store=store)
    nb.task(DATA)
    nb.task(TOTAL)
    return nb


def run_and_check(nb: Notebook) -> tuple[list[str], list[str]]:
    """Run; the values must be right. Returns what executed and the warning messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report, ran = nb.run()
    assert report.ok, report.render_text()
    assert faultlib.same(nb.graph["data"], EXPECTED), "a wrong value of `data`"
    assert nb.graph["total"] == float(EXPECTED.sum()), "a wrong value of `total`"
    assert faultlib.same(nb.ns["data"], EXPECTED)
    return ran, [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)]


def blob_of(root: Path, task: str) -> Path:
    store = DiskStore(root)
    try:
        head = store.head(task)
        assert head is not None and head.stored
        return store._blob_path(head.fingerprint)
    finally:
        store.close()


def _flip(offset: int) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        path = blob_of(root, "data")
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x10
        path.write_bytes(bytes(data))

    return damage


def _truncate(root: Path) -> None:
    path = blob_of(root, "data")
    path.write_bytes(path.read_bytes()[:-100])


def _other_pickle(root: Path) -> None:
    joblib.dump(np.zeros(20_000), blob_of(root, "data"))  # a valid pickle of another value, same path


def _swapped(root: Path) -> None:
    shutil.copyfile(blob_of(root, "total"), blob_of(root, "data"))  # signed by us, but for another fingerprint


def _deleted(root: Path) -> None:
    blob_of(root, "data").unlink()


def _edit_record(change: Callable[[dict[str, Any], Path], None]) -> Callable[[Path], None]:
    def damage(root: Path) -> None:
        db = sqlite3.connect(root / "meta.sqlite")
        with db:
            key, record = db.execute("SELECT key, record FROM entries WHERE task = 'data'").fetchone()
            fields = json.loads(record)
            change(fields, root)
            db.execute("UPDATE entries SET record = ? WHERE key = ?", (json.dumps(fields, sort_keys=True), key))
        db.close()

    return damage


def _point_at_total(fields: dict[str, Any], root: Path) -> None:
    fields["output"] = blob_of(root, "total").stem  # a value that exists and is signed, but is another task's


def _fake_outputs(fields: dict[str, Any], root: Path) -> None:
    fields["outputs"] = [{"name": "stdout", "text": "forged\n"}]


CASES = {
    "truncated blob": (_truncate, BLOB_REASON),
    "bit flip in the pickle header": (_flip(5), BLOB_REASON),
    "bit flip in the array data": (_flip(-1000), BLOB_REASON),
    "blob replaced by another valid pickle": (_other_pickle, BLOB_REASON),
    "blob replaced by another signed blob": (_swapped, BLOB_REASON),
    "blob deleted": (_deleted, ("The cached value of task `data` cannot be used: its value file cannot be read "
                                "(No such file or directory). dagnb recomputes it.")),
    "entry record edited: output": (_edit_record(_point_at_total), None),
    "entry record edited: outputs list": (_edit_record(_fake_outputs), None),
}


@pytest.mark.value_files
@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_cache_is_a_warned_miss_and_is_recomputed(tmp_path: Path, case: str) -> None:
    damage, reason = CASES[case]
    root = tmp_path / "cache"
    ran, _ = run_and_check(session(tmp_path))
    assert ran == ["data", "total"]
    damage(root)

    ran, warned = run_and_check(session(tmp_path))
    assert ran == ["data"], f"only `data` recomputes (`total` keeps its key: same output): {ran}"
    assert (reason or entry_reason(root)) in warned, warned

    ran, warned = run_and_check(session(tmp_path))
    assert (ran, warned) == ([], []), "the recomputed value is stored again"
    faultlib.assert_usable(root)
    faultlib.record_case("test_corruption", case)


def test_a_whole_cache_written_with_another_key_is_recomputed(tmp_path: Path) -> None:
    """Entries and blobs signed with another ``DAGNB_CACHE_KEY``: nothing of it is used."""
    root = tmp_path / "cache"
    ran, _ = run_and_check(session(tmp_path, DiskStore(root, secret=b"other")))
    assert ran == ["data", "total"]

    ran, warned = run_and_check(session(tmp_path))
    assert ran == ["data", "total"]
    assert entry_reason(root, "data") in warned and entry_reason(root, "total") in warned, warned
    faultlib.record_case("test_corruption", "whole cache signed with another key")


def test_after_a_foreign_cache_is_recomputed_the_next_session_loads_everything(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    run_and_check(session(tmp_path, DiskStore(root, secret=b"other")))
    run_and_check(session(tmp_path))
    ran, warned = run_and_check(session(tmp_path))
    assert (ran, warned) == ([], []), f"ran {ran}, warned {warned}"


# ---------------------------------------------------------- a malicious pickle


class Evil:
    """Unpickling this creates a file: proof that it was unpickled."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))


def _plant(root: Path, target: Path, pad_to: int = 0) -> tuple[str, int]:
    """An evil pickle as a blob with a forged-looking row; returns its fingerprint and size."""
    fp = "e" * 32
    path = root / "blobs" / fp[:2] / f"{fp}.pkl"
    path.parent.mkdir(exist_ok=True)
    joblib.dump(Evil(target), path)
    if pad_to:  # trailing bytes after the pickle's STOP: still loads, and takes the memory-mapped path
        with open(path, "ab") as handle:
            handle.truncate(pad_to)
    nbytes = path.stat().st_size
    forged = sign(b"attacker", ("blob", fp, str(nbytes)), [b"\0" * 32])
    db = sqlite3.connect(root / "meta.sqlite")
    with db:
        db.execute("INSERT OR REPLACE INTO blobs (fingerprint, signature, nbytes, created, last_used) "
                   "VALUES (?, ?, ?, 0, 0)", (fp, forged, nbytes))
    db.close()
    return fp, nbytes


MALICIOUS = ["forged entry, new key", "forged entry for the key of data", "value file of data swapped",
             "value file of data swapped, large (memory-mapped path)"]


@pytest.mark.parametrize("where", MALICIOUS)
def test_a_malicious_pickle_is_never_unpickled(tmp_path: Path, where: str) -> None:
    root, target = tmp_path / "cache", tmp_path / "pwned"
    run_and_check(session(tmp_path))
    head = DiskStore(root).head("data")
    assert head is not None
    large = where.endswith("(memory-mapped path)")
    fp, nbytes = _plant(root, target, pad_to=64 * 2**20 + 4096 if large else 0)
    evil = root / "blobs" / fp[:2] / f"{fp}.pkl"
    ours = DiskStore(root)._blob_path(head.fingerprint)

    db = sqlite3.connect(root / "meta.sqlite")
    with db:
        if where.startswith("forged entry"):  # an entry row that looks right, with a forged signature
            key = "k-evil" if where.endswith("new key") else head.key
            record = CacheEntry(key, "data", fp, nbytes=nbytes).to_json()
            db.execute("INSERT OR REPLACE INTO entries VALUES (?, 'data', ?, ?, ?, 0, 0)",
                       (key, fp, record, sign(b"attacker", ("entry", key, record))))
        else:  # our own signed entry and row; the value file swapped for the evil one
            shutil.copyfile(evil, ours)
            if large:  # the size matches: only the signature stands in the way
                db.execute("UPDATE blobs SET nbytes = ? WHERE fingerprint = ?", (nbytes, head.fingerprint))
    db.close()

    copy = tmp_path / "copy"  # straight at the store first (on a copy), past every check a Graph makes
    shutil.copytree(root, copy)
    store = DiskStore(copy)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert store.entry("k-evil") is None
        suspects = [CacheEntry("k-evil", "data", fp, nbytes=nbytes)]
        if where.startswith("value file"):
            suspects.append(head)
        else:
            assert store.entry(head.key) is None or store.entry(head.key).fingerprint == head.fingerprint  # type: ignore[union-attr]
        for entry in suspects:
            with pytest.raises(CacheMiss):
                store.load(entry)
    store.close()
    assert not target.exists(), "the malicious pickle was unpickled"

    ran, _ = run_and_check(session(tmp_path))
    assert not target.exists(), "the malicious pickle was unpickled"
    assert ran == ([] if where.endswith("new key") else ["data"]), ran
    run_and_check(session(tmp_path))
    faultlib.assert_usable(root)
    assert not target.exists()
    faultlib.record_case("test_corruption (malicious pickle)", where)
