"""Fingerprints name dagnb's own modules as they were named before the package had rooms.

Grouping the package into rooms, and splitting the fingerprint room into
smaller modules, must change no key and no digest: wherever a dagnb module's
name reaches a fingerprint (a task that reads ``dagnb.fingerprint`` as a
global, the pickle stream of a value that carries notebook code), it is the
name from before (``dagnb.hashing``, ``dagnb.codehash``). Old module paths
still import, because a cached value may name a class by them, and every name
the other rooms import from the fingerprint room is still found where they
import it from.
"""

from __future__ import annotations

import importlib
import pickle
from typing import Any

import pytest
from notebook_cells import define

import dagnb
from dagnb.fingerprints import values
from dagnb.fingerprints.code import code_fingerprint, module_version


class _Stream:
    """Stands in for a hash object and keeps every byte written to it."""

    def __init__(self) -> None:
        self.data = bytearray()

    def update(self, data: Any) -> None:
        self.data += bytes(data)


def test_a_value_carrying_notebook_code_names_dagnb_in_its_stream_as_before_the_rooms() -> None:
    ns = define({}, "def neg(v):\n    return -v\nclass Model:\n    def __init__(self):\n        self.k = 2\n")
    for value in ({"neg": ns["neg"]}, ns["Model"](), [ns["Model"]]):
        stream = _Stream()
        values._HashingPickler(stream, value).dump(value)
        assert b"dagnb.hashing" in stream.data
        assert b"dagnb.fingerprints" not in stream.data


def test_a_task_reading_dagnb_functions_names_their_module_as_before_the_rooms() -> None:
    from dagnb.fingerprints.code import source_digest

    read = {"fingerprint": dagnb.fingerprint, "file": dagnb.file, "FileRef": dagnb.FileRef,
            "register_fingerprint": dagnb.register_fingerprint, "digest_name": values.digest_name,
            "source_digest": source_digest}
    ns = define(dict(read), f"def t():\n    return {', '.join(read)}\n")
    parts = code_fingerprint(ns["t"]).parts
    version = module_version("dagnb")
    assert {name: parts[f"module {name}"] for name in read} == {
        name: f"dagnb.codehash {version}" if name == "source_digest" else f"dagnb.hashing {version}" for name in read
    }


def test_a_value_pickled_under_the_old_module_path_loads_as_the_class_of_today() -> None:
    today = pickle.dumps(dagnb.file("a.csv"), protocol=2)  # protocol 2 names a class as `c<module>\n<name>`
    old = today.replace(b"cdagnb.fingerprints.values\nFileRef", b"cdagnb.hashing\nFileRef")  # as dagnb wrote it before
    assert old != today
    loaded = pickle.loads(old)
    assert type(loaded) is dagnb.FileRef
    assert loaded == dagnb.file("a.csv")


OLD_PATHS = [
    ("dagnb.hashing", "FileRef"),
    ("dagnb.hashing", "fingerprint"),
    ("dagnb.hashing", "register_fingerprint"),
    ("dagnb.codehash", "code_fingerprint"),
    ("dagnb.codehash", "function_digest"),
    ("dagnb.untracked", "find_untracked"),
    ("dagnb._scopes", "RuntimeScope"),
]


@pytest.mark.parametrize(("old", "name"), OLD_PATHS, ids=[f"{o}.{n}" for o, n in OLD_PATHS])
def test_old_module_paths_give_the_same_objects(old: str, name: str) -> None:
    from dagnb._moved import MOVED

    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(MOVED[old]), name)


#: What other rooms (and tests, benchmarks, library handlers) import from the fingerprint room, by module.
IMPORTED = {
    "dagnb.fingerprints.values": [
        "FORMAT", "FileRef", "UNTRACKED", "connect", "digest_name", "file", "fingerprint", "register_fingerprint",
        "value_digest", "_blob", "_feed", "_feed_pickle", "_hasher", "_qualname", "_text",
    ],
    "dagnb.fingerprints.code": [
        "PYTHON", "CodeFingerprint", "Untracked", "code_fingerprint", "fixed_code_fingerprint", "function_digest",
        "global_reads", "helper_sources", "is_immutable", "is_user_module", "module_version",
        "same_key_while_bound", "source_digest", "normalize_source", "untracked_value", "user_modules",
        "value_code_token",
    ],
    "dagnb.fingerprints.untracked": ["Scope", "Untracked", "find_untracked", "task_findings"],
}


@pytest.mark.parametrize("module", list(IMPORTED))
def test_names_other_rooms_import_are_still_there(module: str) -> None:
    found = importlib.import_module(module)
    assert [name for name in IMPORTED[module] if not hasattr(found, name)] == []
