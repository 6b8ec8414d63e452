"""The stored records' codecs: tolerant of what a newer dagnb adds, byte for byte what format 4 writes."""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest

from dagnb.cache.disk import DiskStore
from dagnb.cache.records import CacheEntry, Codec, Field, TaskRecord, decode_entry, decode_task_row, encode_entry
from dagnb.cache.trust import sign

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SECRET = b"a secret of the records tests, 32+ bytes"


def test_an_entry_encodes_exactly_as_format_4_wrote_it() -> None:
    entry = CacheEntry("k1", "clean", "f" * 32, parts={"code": "c1"}, inputs={"raw": "upstream x"},
                       captured=[{"name": "stdout", "text": "hi\n"}], duration=1.5, nbytes=10, created=2.0)
    assert encode_entry(entry) == (
        '{"cpu_time": 0.0, "created": 2.0, "duration": 1.5, "inputs": {"raw": "upstream x"}, "key": "k1", '
        '"nbytes": 10, "output": "' + "f" * 32 + '", "outputs": [{"name": "stdout", "text": "hi\\n"}], '
        '"parts": {"code": "c1"}, "peak_memory": 0, "sources": {}, "stored": true, "task": "clean", '
        '"value_bytes": 0}'
    )


def test_every_record_of_the_format_4_fixture_decodes_and_encodes_to_its_stored_bytes() -> None:
    db = sqlite3.connect(GOLDEN / "format-4" / "meta.sqlite")
    try:
        records = [record for (record,) in db.execute("SELECT record FROM entries")]
    finally:
        db.close()
    assert len(records) == 8
    for record in records:
        assert encode_entry(decode_entry(record)) == record


def test_a_field_a_newer_dagnb_added_is_ignored_and_an_absent_optional_one_takes_its_default() -> None:
    newer = json.dumps({"key": "k", "task": "t", "output": "o", "duration": 2.5, "captured_at": "12:00",
                        "costs": {"io": 1.0}})
    entry = decode_entry(newer)
    assert (entry.key, entry.task, entry.fingerprint, entry.duration) == ("k", "t", "o", 2.5)
    assert (entry.parts, entry.captured, entry.stored, entry.nbytes) == ({}, [], True, 0)


def test_an_optional_field_of_another_kind_takes_its_default() -> None:
    entry = decode_entry(json.dumps({"key": "k", "task": "t", "output": "o", "parts": ["code"], "stored": "yes",
                                     "duration": "slow", "nbytes": 1.5, "peak_memory": True}))
    assert (entry.parts, entry.stored, entry.duration, entry.nbytes, entry.peak_memory) == ({}, True, 0.0, 0, 0)


@pytest.mark.parametrize(("text", "message"), [
    ('["k", "t", "o"]', "a CacheEntry record is a JSON object"),
    ('{"key": "k", "task": "t"}', "not a CacheEntry record (`output` is missing or not a str)"),
    ('{"key": "k", "task": 3, "output": "o"}', "not a CacheEntry record (`task` is missing or not a str)"),
])
def test_a_record_without_its_required_fields_is_no_entry(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        decode_entry(text)
    assert str(refused.value) == message


def test_python_names_are_free_to_differ_from_stored_names() -> None:
    @dataclass
    class Renamed:
        fingerprint: str
        captured: list[str]

    codec = Codec(Renamed, [Field("output", "str", attr="fingerprint", required=True),
                            Field("outputs", "list", attr="captured")])
    assert codec.encode(Renamed("abc", ["x"])) == {"output": "abc", "outputs": ["x"]}
    assert codec.decode({"output": "abc", "outputs": ["x"], "new": 1}) == Renamed("abc", ["x"])


def test_a_history_row_decodes_empty_key_and_output_as_none() -> None:
    row = ("t", "failed", "ValueError: no", "", "", 0.5, "main")
    assert decode_task_row(row) == TaskRecord("t", "failed", "ValueError: no", None, None, 0.5, "main")
    assert decode_task_row(row).stored() == row


def _signed_record(root: Path, key: str, record: str) -> None:
    db = sqlite3.connect(root / "meta.sqlite")
    with db:
        db.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, 0, 0)",
                   (key, "t", "o", record, sign(SECRET, ("entry", key, record))))
    db.close()


def test_a_disk_store_reads_a_signed_record_a_newer_dagnb_wrote(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    DiskStore(root, secret=SECRET).close()
    newer = {**json.loads(encode_entry(CacheEntry("k-new", "t", "o", parts={"code": "c"}))), "lineage": ["a", "b"]}
    _signed_record(root, "k-new", json.dumps(newer, sort_keys=True))
    _signed_record(root, "k-broken", json.dumps({"key": "k-broken", "task": "t"}))  # no output: no entry
    store = DiskStore(root, secret=SECRET)
    try:
        entry = store.entry("k-new")
        assert entry is not None and (entry.task, entry.fingerprint, entry.parts) == ("t", "o", {"code": "c"})
        assert store.entry("k-broken") is None
        assert [e.key for e in store.entries_of("t")] == ["k-new"]
    finally:
        store.close()


def test_the_format_4_fixture_still_reads_through_the_codec(tmp_path: Path) -> None:
    root = tmp_path / "format-4"
    shutil.copytree(GOLDEN / "format-4", root)
    store = DiskStore(root)
    try:
        entry = store.entry("key-clean")
        assert entry is not None and entry.captured == [{"name": "stdout", "text": "cleaned 3 rows\n"}]
        assert entry.inputs == {"raw": "upstream fp"}
    finally:
        store.close()
