"""One contract for every store, then what only the disk store promises."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dagnb.cache import dumping
from dagnb.cache.store import CacheEntry, CacheMiss, DiskStore, MemoryStore, NoHistory, Store, TaskRecord, parse_size
from dagnb.errors import DagnbCacheWarning
from dagnb.fingerprints.values import fingerprint


@pytest.fixture(params=["memory", "disk"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """Each contract test runs against a fresh store of each kind."""
    made: Store = MemoryStore() if request.param == "memory" else DiskStore(tmp_path / "cache")
    yield made
    made.close()


def _entry(key: str, task: str, value: Any, **extra: Any) -> CacheEntry:
    return CacheEntry(key=key, task=task, fingerprint=fingerprint(value), **extra)


def _blob_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "blobs").rglob("*") if p.is_file())


# ----------------------------------------------------------------- contract


@pytest.mark.parametrize("store", ["memory", "disk"], indirect=True)
class TestStoreContract:
    def test_put_entry_load_round_trip(self, store: Store) -> None:
        value = {"rows": [1, 2, 3], "arr": np.arange(5.0)}
        entry = _entry("k1", "clean", value, parts={"code": "c1"}, inputs={"raw": "upstream x"}, duration=1.5)
        store.put(entry, value)
        back = store.entry("k1")
        assert back is not None
        assert (back.key, back.task, back.fingerprint) == ("k1", "clean", entry.fingerprint)
        assert back.parts == {"code": "c1"} and back.inputs == {"raw": "upstream x"}
        assert back.duration == 1.5
        loaded = store.load(back)
        assert loaded["rows"] == [1, 2, 3]
        np.testing.assert_array_equal(loaded["arr"], np.arange(5.0))
        assert store.has_value(entry.fingerprint)

    def test_an_unknown_key_has_no_entry(self, store: Store) -> None:
        assert store.entry("nope") is None
        assert store.head("nope") is None

    def test_loading_an_entry_without_a_value_is_a_miss(self, store: Store) -> None:
        entry = _entry("k1", "t", "value")
        with pytest.raises(CacheMiss):
            store.load(entry)

    def test_an_unstored_entry_keeps_its_metadata_but_no_value(self, store: Store) -> None:
        entry = _entry("k1", "t", "value", stored=False)
        store.put(entry, None)
        back = store.entry("k1")
        assert back is not None and back.stored is False
        assert not store.has_value(entry.fingerprint)
        assert store.info().blobs == 0

    def test_identical_outputs_are_stored_once(self, store: Store) -> None:
        value = list(range(100))
        store.put(_entry("k1", "a", value), value)
        store.put(_entry("k2", "b", list(range(100))), list(range(100)))
        info = store.info()
        assert (info.entries, info.blobs) == (2, 1)
        assert store.load(store.entry("k2")) == value  # type: ignore[arg-type]

    def test_every_key_a_task_had_is_kept(self, store: Store) -> None:
        store.put(_entry("k1", "a", 1), 1)
        store.put(_entry("k2", "a", 2), 2)
        assert store.load(store.entry("k1")) == 1  # type: ignore[arg-type]
        assert store.load(store.entry("k2")) == 2  # type: ignore[arg-type]

    def test_head_follows_set_head(self, store: Store) -> None:
        store.put(_entry("k1", "a", 1), 1)
        store.put(_entry("k2", "a", 2), 2)
        assert store.head("a") is None
        store.set_head("a", "k1")
        assert store.head("a").key == "k1"  # type: ignore[union-attr]
        store.set_head("a", "k2")
        assert store.head("a").key == "k2"  # type: ignore[union-attr]

    def test_clear_one_task_removes_only_that_task(self, store: Store) -> None:
        """a and b share one value; c has its own. Clearing a keeps b's (shared) value."""
        store.put(_entry("ka", "a", "shared"), "shared")
        store.put(_entry("kb", "b", "shared"), "shared")
        store.put(_entry("kc", "c", "own"), "own")
        for task, key in (("a", "ka"), ("b", "kb"), ("c", "kc")):
            store.set_head(task, key)
        assert store.clear("a") == 1
        assert store.entry("ka") is None and store.head("a") is None
        assert store.load(store.entry("kb")) == "shared"  # type: ignore[arg-type]
        assert store.load(store.entry("kc")) == "own"  # type: ignore[arg-type]
        assert store.head("b").key == "kb"  # type: ignore[union-attr]
        assert store.info().tasks == {"b": 1, "c": 1}

    def test_clear_a_task_drops_its_orphaned_values(self, store: Store) -> None:
        store.put(_entry("kc", "c", "own"), "own")
        store.clear("c")
        assert not store.has_value(fingerprint("own"))
        assert store.info().blobs == 0

    def test_clear_everything(self, store: Store) -> None:
        store.put(_entry("k1", "a", 1), 1)
        store.put(_entry("k2", "b", 2), 2)
        store.set_head("a", "k1")
        assert store.clear() == 2
        info = store.info()
        assert (info.entries, info.blobs, info.tasks) == (0, 0, {})
        assert store.head("a") is None

    def test_hits_add_up_per_task_over_all_its_keys(self, store: Store) -> None:
        for key, task, value in (("k1", "a", 1), ("k2", "a", 2), ("k3", "b", 3)):
            store.put(_entry(key, task, value), value)
        assert store.hit_totals() == {}
        store.touch([("k1", 1.5), ("k2", 0.25)])
        store.touch([("k1", 1.5), ("k3", 2.0)])
        assert store.hit_totals() == {"a": (3, 3.25), "b": (1, 2.0)}

    @pytest.mark.parametrize("later", [False, True], ids=["now", "later"])
    def test_the_end_of_a_run_counts_its_hits_and_records_it(self, store: Store, later: bool) -> None:
        """``settle_run`` is ``touch`` then ``record_run`` (one transaction in a disk store); with ``later``
        (a disk store writes it on its settler thread) every read sees it all the same."""
        store.put(_entry("k1", "a", 1), 1)
        store.settle_run([("k1", 1.5)], 1.0, 2.0, [], later=later)
        store.settle_run([("k1", 0.5)], 3.0, 4.0, [], later=later)
        assert store.hit_totals() == {"a": (2, 2.0)}
        recorded = store.runs()
        run_id = store.last_run_id
        if run_id:  # a store that keeps history
            assert [(r.id, r.started, r.finished) for r in recorded] == [(run_id, 3.0, 4.0), (run_id - 1, 1.0, 2.0)]
        else:
            assert recorded == []

    def test_clearing_a_task_forgets_its_hits(self, store: Store) -> None:
        store.put(_entry("k1", "a", 1), 1)
        store.put(_entry("k2", "b", 2), 2)
        store.touch([("k1", 1.0), ("k2", 1.0)])
        store.clear("a")
        assert store.hit_totals() == {"b": (1, 1.0)}

    def test_costs_round_trip_with_the_entry(self, store: Store) -> None:
        entry = _entry("k1", "a", 1, duration=2.0, cpu_time=1.5, peak_memory=2**20, value_bytes=28)
        store.put(entry, 1)
        back = store.entry("k1")
        assert back is not None
        assert (back.duration, back.cpu_time, back.peak_memory, back.value_bytes) == (2.0, 1.5, 2**20, 28)

    def test_info_counts_keys_per_task(self, store: Store) -> None:
        store.put(_entry("k1", "a", 1), 1)
        store.put(_entry("k2", "a", 2), 2)
        store.put(_entry("k3", "b", 3), 3)
        info = store.info()
        assert (info.entries, info.blobs) == (3, 3)
        assert info.tasks == {"a": 2, "b": 1}
        assert "keys per task: a (2), b (1)" in str(info)


    def test_the_history_keeps_each_run_newest_first(self, store: Store) -> None:
        first = store.record_run(1.0, 2.0, [TaskRecord("a", "done", "new", "k1", "f1", 0.5, "main")])
        second = store.record_run(3.0, 4.0, [TaskRecord("a", "cached", key="k1", fingerprint="f1"),
                                             TaskRecord("b", "failed", "ValueError: no")])
        assert 0 < first < second
        assert [(r.id, r.started, r.finished) for r in store.runs()] == [(second, 3.0, 4.0), (first, 1.0, 2.0)]
        assert [r.id for r in store.runs(1)] == [second]
        back = store.run(first)
        assert back is not None and back.tasks == [TaskRecord("a", "done", "new", "k1", "f1", 0.5, "main")]
        assert store.run(second).count("failed") == 1  # type: ignore[union-attr]
        assert store.run(second + 1) is None


# ---------------------------------------------------- the protocol itself


class _Forgetful(Store):
    """Every method of a store but the history, as a new store might be written."""

    def entry(self, key: str) -> None:
        return None

    has_value = put = load = head = set_head = info = clear = entry  # type: ignore[assignment]


def test_a_store_that_does_not_implement_the_history_cannot_be_made() -> None:
    with pytest.raises(TypeError) as refused:
        _Forgetful()  # type: ignore[abstract]
    assert "record_run" in str(refused.value) and "runs" in str(refused.value)


def test_a_store_says_it_keeps_no_history_by_mixing_in_no_history() -> None:
    class Historyless(NoHistory, _Forgetful):
        pass

    store = Historyless()
    assert store.record_run(1.0, 2.0, [TaskRecord("a", "done")]) == 0
    assert store.runs() == [] and store.run(1) is None


# ------------------------------------------------------------- disk only


@pytest.fixture()
def disk(tmp_path: Path) -> Any:
    made = DiskStore(tmp_path / "cache")
    yield made
    made.close()


@pytest.mark.value_files
def test_disk_store_leaves_no_temporary_files(disk: DiskStore) -> None:
    for i in range(5):
        disk.put(_entry(f"k{i}", "t", i), i)
    names = [p.name for p in _blob_files(disk.root)]
    assert len(names) == 5
    assert not [n for n in names if n.startswith(".tmp-")]


@pytest.mark.value_files
def test_a_write_that_fails_midway_leaves_no_entry_no_blob_and_a_usable_store(
    disk: DiskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def dump_half_then_fail(value: Any, handle: Any, *args: Any, **kwargs: Any) -> None:
        handle.write(b"half a pickle")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(dumping, "dump", dump_half_then_fail)
    with pytest.raises(OSError):
        disk.put(_entry("k1", "t", "value"), "value")
    assert disk.entry("k1") is None
    assert not disk.has_value(fingerprint("value"))
    assert _blob_files(disk.root) == []

    monkeypatch.undo()
    disk.put(_entry("k1", "t", "value"), "value")
    assert disk.load(disk.entry("k1")) == "value"  # type: ignore[arg-type]


def _stored(disk: DiskStore, value: Any) -> tuple[CacheEntry, Path]:
    entry = _entry("k1", "t", value)
    disk.put(entry, value)
    (path,) = _blob_files(disk.root)
    return entry, path


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-50])


def _flip_a_bit(path: Path) -> None:
    """Inside an int64 array's raw bytes: the file still unpickles, to the wrong numbers."""
    data = bytearray(path.read_bytes())
    data[-100] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("value", "damage", "reason"),
    [
        pytest.param(list(range(1000)), _truncate, "does not match its signature", id="truncated"),
        pytest.param(np.arange(1000, dtype=np.int64), _flip_a_bit, "does not match its signature", id="bit-flipped"),
        pytest.param("value", Path.unlink, "cannot be read", id="deleted"),
    ],
)
@pytest.mark.value_files
def test_a_damaged_blob_is_a_miss_never_wrong_data_and_is_forgotten(
    disk: DiskStore, value: Any, damage: Callable[[Path], None], reason: str
) -> None:
    entry, path = _stored(disk, value)
    damage(path)
    with pytest.raises(CacheMiss) as info:
        disk.load(entry)
    assert reason in info.value.reason
    assert not disk.has_value(entry.fingerprint)
    assert not path.exists()


@pytest.mark.value_files
def test_a_forgotten_blob_is_written_again_on_the_next_put(disk: DiskStore) -> None:
    entry, path = _stored(disk, "value")
    path.unlink()
    with pytest.raises(CacheMiss):
        disk.load(entry)
    disk.put(_entry("k2", "t", "value"), "value")
    assert disk.load(entry) == "value"


def test_reopening_the_directory_sees_everything(tmp_path: Path) -> None:
    first = DiskStore(tmp_path / "cache")
    first.put(_entry("k1", "a", [1, 2]), [1, 2])
    first.put(_entry("k2", "b", "x", parts={"code": "c"}), "x")
    first.set_head("a", "k1")
    first.close()

    again = DiskStore(tmp_path / "cache")
    try:
        assert again.load(again.entry("k1")) == [1, 2]  # type: ignore[arg-type]
        assert again.entry("k2").parts == {"code": "c"}  # type: ignore[union-attr]
        assert again.head("a").key == "k1"  # type: ignore[union-attr]
        info = again.info()
        assert (info.entries, info.blobs, info.tasks) == (2, 2, {"a": 1, "b": 1})
        assert info.nbytes > 0
    finally:
        again.close()


# -------------------------------------------------------------------- prune


def _aged(disk: DiskStore, names: list[str]) -> dict[str, CacheEntry]:
    """One entry per name, each with a 1,000-byte value, last used in list order (oldest first)."""
    entries = {}
    for name in names:
        value = name.encode() * (1000 // len(name))
        entries[name] = _entry(f"k-{name}", name, value)
        disk.put(entries[name], value)
        disk.touch([(f"k-{name}", 0.0)])
        time.sleep(0.002)  # distinct last-used times
    return entries


@pytest.mark.value_files
def test_prune_evicts_least_recently_used_values_first(disk: DiskStore) -> None:
    entries = _aged(disk, ["old", "mid", "new"])
    disk.touch([("k-old", 0.0)])  # `old` used again: now `mid` is the least recently used
    total = disk.info().nbytes
    pruned = disk.prune(total - 1)
    assert pruned.values == 1 and pruned.kept_bytes == total - pruned.nbytes
    assert not disk.has_value(entries["mid"].fingerprint)
    assert disk.has_value(entries["old"].fingerprint) and disk.has_value(entries["new"].fingerprint)
    assert len(_blob_files(disk.root)) == 2


def test_prune_never_evicts_kept_values_and_marks_evicted_entries_unstored(disk: DiskStore) -> None:
    entries = _aged(disk, ["a", "b", "c"])
    pruned = disk.prune(0, keep={entries["a"].fingerprint})
    assert pruned.values == 2
    assert disk.has_value(entries["a"].fingerprint)
    evicted = disk.entry("k-b")
    assert evicted is not None and evicted.stored is False, "the key is remembered, its value is gone"
    with pytest.raises(CacheMiss):
        disk.load(entries["b"])


def test_prune_under_the_limit_evicts_nothing(disk: DiskStore) -> None:
    _aged(disk, ["a"])
    assert disk.prune(10**9).values == 0


@pytest.mark.parametrize(("text", "size"), [("2GB", 2 * 10**9), ("500MiB", 500 * 2**20), ("1.5g", 1_500_000_000),
                                            ("1000", 1000), ("3 kb", 3000)])
def test_sizes_parse_in_decimal_and_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_a_bad_size_says_what_is_accepted() -> None:
    with pytest.raises(ValueError) as caught:
        parse_size("lots")
    assert str(caught.value) == "`lots` is not a size; write a number with an optional unit, like 500MB, 2GB or 1.5GiB"


# -------------------------------------------------------------- trust, format


def test_a_value_signed_with_another_key_is_never_unpickled(tmp_path: Path) -> None:
    theirs = DiskStore(tmp_path / "cache", secret=b"someone else")
    value = np.arange(10)
    entry = _entry("k1", "t", value)
    theirs.put(entry, value)
    theirs.set_head("t", "k1")
    theirs.close()
    ours = DiskStore(tmp_path / "cache", secret=b"me")
    with pytest.warns(DagnbCacheWarning, match="is not signed with your secret"):
        assert ours.entry("k1") is None
    assert ours.head("t") is None
    with pytest.raises(CacheMiss) as info:
        ours.load(entry)
    assert "does not match its signature" in info.value.reason
    ours.close()


@pytest.mark.value_files
def test_verify_removes_what_is_altered_or_foreign_and_keeps_the_rest(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "cache", secret=b"me")
    good, bad = _entry("k1", "a", "kept"), _entry("k2", "b", "flipped")
    store.put(good, "kept")
    store.put(bad, "flipped")
    path = store._blob_path(bad.fingerprint)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    result = store.verify()
    assert (result.entries, result.values, result.bad_values) == (2, 2, [bad.fingerprint])
    assert str(result).startswith("verified 2 entries and 2 values: removed 0 entries and 1 values")
    assert store.load(good) == "kept"
    assert store.verify().ok


def test_the_key_is_created_once_with_mode_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagnb.cache import trust

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    first = trust.load_secret()
    assert len(first) == 32 and trust.load_secret() == first
    assert trust.secret_path() == tmp_path / "dagnb" / "cache.key"
    assert trust.secret_path().stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "dagnb").iterdir()] == ["cache.key"], "no temporary file is left"
    team = "a team secret of at least 32 characters"
    monkeypatch.setenv("DAGNB_CACHE_KEY", team)
    assert trust.load_secret() == team.encode()


# ------------------------------------------------------- values in rows, batches


def _value_row(root: Path, fingerprint_: str) -> tuple[Any, ...] | None:
    import sqlite3

    db = sqlite3.connect(root / "meta.sqlite")
    try:
        return db.execute("SELECT nbytes, data FROM blobs WHERE fingerprint = ?", (fingerprint_,)).fetchone()
    finally:
        db.close()


def _set_row(root: Path, fingerprint_: str, sql: str, args: tuple[Any, ...]) -> None:
    import sqlite3

    db = sqlite3.connect(root / "meta.sqlite")
    with db:
        db.execute(sql + " WHERE fingerprint = ?", (*args, fingerprint_))
    db.close()


def test_a_small_value_lives_in_its_row_and_a_large_one_in_a_file(disk: DiskStore) -> None:
    small, large = {"rows": list(range(100))}, np.arange(20_000, dtype=np.float64)  # ~0.3 KiB and 160 KB pickled
    disk.put(_entry("small", "t", small), small)
    assert _blob_files(disk.root) == []
    row = _value_row(disk.root, fingerprint(small))
    assert row is not None and row[1] is not None and row[0] == len(row[1])
    disk.put(_entry("large", "t", large), large)
    (path,) = _blob_files(disk.root)
    assert path.name == f"{fingerprint(large)}.pkl" and _value_row(disk.root, fingerprint(large))[1] is None  # type: ignore[index]
    reopened = DiskStore(disk.root)
    assert reopened.load(reopened.entry("small")) == small  # type: ignore[arg-type]
    np.testing.assert_array_equal(reopened.load(reopened.entry("large")), large)  # type: ignore[arg-type]
    reopened.close()


def _blob_reads(statements: list[str]) -> list[str]:
    return [sql for sql in statements if "FROM blobs" in sql or "JOIN blobs" in sql]


def test_a_hit_reads_its_entry_and_its_value_row_in_one_statement(disk: DiskStore) -> None:
    value = {"rows": [1, 2, 3]}
    disk.put(_entry("k1", "t", value), value)
    reopened = DiskStore(disk.root)
    read: list[str] = []
    reopened._db.set_trace_callback(read.append)
    assert reopened.load(reopened.entry("k1")) == value  # type: ignore[arg-type]
    reopened._db.set_trace_callback(None)
    assert len(_blob_reads(read)) == 1 and "JOIN blobs" in _blob_reads(read)[0], read
    reopened.close()


def test_a_value_row_read_with_its_entry_is_not_served_once_the_value_is_forgotten_or_written_over(
    disk: DiskStore,
) -> None:
    value, other = ["ours", 1], ["theirs", 2]
    disk.put(_entry("k1", "t", value), value)
    reopened = DiskStore(disk.root)
    entry = reopened.entry("k1")
    assert entry is not None
    reopened.meta.forget_value(entry.fingerprint)
    with pytest.raises(CacheMiss):
        reopened.load(entry)
    reopened.put(_entry("k1", "t", value), value)
    entry = reopened.entry("k1")
    reopened.put(_entry("k2", "t", other), other)  # a write between the entry and its load: the row is read again
    read: list[str] = []
    reopened._db.set_trace_callback(read.append)
    assert reopened.load(entry) == value  # type: ignore[arg-type]
    reopened._db.set_trace_callback(None)
    assert any("FROM blobs WHERE fingerprint" in sql for sql in read), read
    reopened.close()


@pytest.mark.parametrize("damage", ["a flipped byte", "another signed row's bytes", "a forged signature"])
def test_a_damaged_row_is_a_miss_never_wrong_data_and_is_forgotten(disk: DiskStore, damage: str) -> None:
    value, other = ["ours", 1, 2, 3], ["theirs", 4, 5, 6]
    disk.put(_entry("k1", "t", value), value)
    disk.put(_entry("k2", "t", other), other)
    nbytes, data = _value_row(disk.root, fingerprint(value))  # type: ignore[misc]
    if damage == "a flipped byte":
        _set_row(disk.root, fingerprint(value), "UPDATE blobs SET data = ?", (data[:-3] + b"\x00" + data[-2:],))
    elif damage == "another signed row's bytes":
        theirs = _value_row(disk.root, fingerprint(other))[1]  # type: ignore[index]
        _set_row(disk.root, fingerprint(value), "UPDATE blobs SET data = ?", (theirs,))
    else:
        _set_row(disk.root, fingerprint(value), "UPDATE blobs SET signature = ?", ("0" * 64,))
    reopened = DiskStore(disk.root)
    with pytest.raises(CacheMiss) as missed:
        reopened.load(reopened.entry("k1"))  # type: ignore[arg-type]
    assert missed.value.reason == ("its value file does not match its signature (it was altered or truncated, or "
                                   "written with another secret)")
    assert _value_row(disk.root, fingerprint(value)) is None, "the damaged row was not forgotten"
    assert reopened.load(reopened.entry("k2")) == other  # type: ignore[arg-type]
    reopened.put(_entry("k1", "t", value), value)  # written again on the next put
    assert reopened.load(reopened.entry("k1")) == value  # type: ignore[arg-type]
    reopened.close()


def test_a_batch_is_seen_by_its_own_store_at_once_and_by_others_after_flush(disk: DiskStore) -> None:
    small, large = [1, 2, 3], np.arange(30_000)
    other = DiskStore(disk.root)
    disk.begin_batch()
    disk.put(_entry("small", "t", small), small)
    disk.put(_entry("large", "u", large), large)
    disk.put(_entry("again", "v", small), small)  # the same value: stored once
    disk.set_head("t", "small")
    assert disk.head("t").key == "small" and disk.has_value(fingerprint(large))  # type: ignore[union-attr]
    assert disk.load(disk.entry("small")) == small  # type: ignore[arg-type]
    assert [e.key for e in disk.entries_of("u")] == ["large"]
    assert other.entry("small") is None and other.head("t") is None, "a batch not flushed was seen by another store"
    np.testing.assert_array_equal(disk.load(disk.entry("large")), large)  # type: ignore[arg-type]
    assert disk.flush() == []
    for store in (disk, other):
        assert store.head("t").key == "small"  # type: ignore[union-attr]
        assert store.load(store.entry("again")) == small  # type: ignore[arg-type]
        np.testing.assert_array_equal(store.load(store.entry("large")), large)  # type: ignore[arg-type]
    assert disk.info().blobs == 2
    other.close()


@pytest.mark.parametrize("where", ["fsync", "rename"])
def test_a_value_a_batch_cannot_write_is_reported_by_flush_and_recorded_unstored(
    disk: DiskStore, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    import errno
    import os

    full = OSError(errno.ENOSPC, "No space left on device")
    large, small = np.arange(30_000), {"fits": True}
    real_rename = os.rename

    def fail(*args: Any, **kwargs: Any) -> None:
        if where == "fsync" or str(args[1]).endswith(".pkl"):
            raise full
        real_rename(*args, **kwargs)

    disk.begin_batch()
    monkeypatch.setattr(os, where, fail)
    disk.put(_entry("large", "t", large), large)
    disk.put(_entry("small", "u", small), small)
    failures = disk.flush()
    monkeypatch.undo()
    assert [(entry.key, exc) for entry, exc in failures] == [("large", full)]
    entry = disk.entry("large")
    assert entry is not None and not entry.stored and not disk.has_value(fingerprint(large))
    assert _blob_files(disk.root) == []
    assert disk.load(disk.entry("small")) == small  # type: ignore[arg-type]


# ------------------------------------------------------------ writer thread


def _writer_threads_started(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the threads started from now on (``threading.Thread.start`` recorded, then called)."""
    import threading

    started: list[str] = []
    real_start = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


def test_a_run_of_cache_hits_starts_no_writer_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a thread costs a cached cell about 1.6 ms; a run that writes no value needs none."""
    import dagnb

    calls = tmp_path / "calls.txt"

    def build() -> dagnb.Graph:
        graph = dagnb.Graph(cache_dir=str(tmp_path / "cache"))

        @graph.task
        def a() -> int:
            with calls.open("a") as log:
                log.write("a\n")
            return 1

        return graph

    first = build()
    first.run()
    first.close()
    started = _writer_threads_started(monkeypatch)
    again = build()
    report = again.run()
    again.close()

    assert report.cached == ["a"]
    assert calls.read_text() == "a\n"
    assert "dagnb-cache-writer" not in started


def test_the_writer_thread_starts_with_the_first_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = _writer_threads_started(monkeypatch)
    store = DiskStore(tmp_path / "cache")
    store.begin_batch()
    assert started == []
    entry = _entry("k1", "t", 1)
    store.put(entry, 1)
    assert started == ["dagnb-cache-writer"]
    assert store.flush() == []
    store.close()
    reopened = DiskStore(tmp_path / "cache")
    assert reopened.load(reopened.entry("k1") or entry) == 1
    reopened.close()


def test_two_tasks_with_equal_values_never_share_one_object_from_the_memory_store() -> None:
    """Found by the mutation oracle: values dedupe by fingerprint, objects must not."""
    import dagnb

    graph = dagnb.Graph()

    def a() -> list[int]:
        return [0]

    def b(a: list[int]) -> list[int]:
        return list(a)

    graph.task(a)
    graph.task(b)
    graph.run()

    def a_other() -> list[int]:
        return [1]

    a_other.__name__ = a_other.__qualname__ = "a"
    graph.task(a_other)
    graph.run()
    graph.task(a)  # the edit undone: both values come back from the memory store
    graph.run()
    graph["a"].append(99)  # a plain cell changes `a` in place

    assert graph["b"] == [0]
