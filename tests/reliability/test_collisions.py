"""Hand-made xxh3 collisions against a shared cache, where fingerprints are keyed BLAKE3.

xxh3_128 is fast but not collision-resistant: two inputs that differ only
in the high halves of two 8-byte words, chosen against XXH3's public
default secret so that those words add nothing but themselves to the
accumulators, hash alike (no search: they are written down). With such a
pair, a changed ``dagnb.file`` input looks unchanged, and two different
outputs share one stored value. Where a cache is shared
(``DAGNB_CACHE_KEY`` set), dagnb fingerprints with keyed BLAKE3: each
session runs in a fresh process with the team key, changes the file, and
must rerun; two tasks returning the colliding values must each load their
own value after a restart. The default (xxh3) is run the same way for
contrast: there the collision goes unseen, the documented price of speed
for a cache nobody else writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import faultlib
import xxhash

import dagnb
from dagnb.fingerprints.values import FORMAT

# The first 24 bytes of XXH3's default secret (XXH3_kSecret in the xxHash specification).
SECRET = bytes.fromhex("b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db")


def colliding(prefix: int, size: int) -> tuple[bytes, bytes]:
    """Two ``size``-byte strings that collide in xxh3_128 after a fixed ``prefix`` of that many bytes.

    In stripes 1 and 2 (bytes 64-71 and 128-135 of the hashed stream), the
    low half of each word equals the secret's, so the multiplication that
    mixes it is zero and the word is only added to an accumulator; adding 1
    to one high half and subtracting 1 from the other leaves the sum alike.
    """
    streams = [bytearray(prefix + size), bytearray(prefix + size)]
    for stripe, delta in ((1, 1), (2, -1)):
        secret = int.from_bytes(SECRET[8 * stripe : 8 * stripe + 8], "little")
        for stream, shift in zip(streams, (0, delta)):
            word = (secret & 0xFFFFFFFF) | (((0x1234 + shift) & 0xFFFFFFFF) << 32)
            stream[64 * stripe : 64 * stripe + 8] = word.to_bytes(8, "little")
    first, second = (bytes(s[prefix:]) for s in streams)
    assert first != second
    return first, second


FILE_A, FILE_B = colliding(0, 1000)
VALUE_A, VALUE_B = colliding(len(FORMAT) + 1 + 8, 1000)  # fingerprint(bytes): FORMAT, b"b", the length, the bytes

SESSION = """
import json, linecache, os, sys
import dagnb
cells = json.loads(os.environ["CELLS"])
namespace = {"__name__": "__main__", "LOG": os.environ["LOG"], "dagnb": dagnb, "DATA": os.environ["DATA"]}
graph = dagnb.Graph(cache_dir=os.environ["CACHE"], namespace=namespace)
for number, cell in enumerate(cells):
    filename = f"<cell-{number}>"
    linecache.cache[filename] = (len(cell), None, cell.splitlines(True), filename)
    exec(compile(cell, filename, "exec"), namespace)
    graph.task(namespace[cell.split("def ", 1)[1].split("(", 1)[0]])
report = graph.run()
print(json.dumps({"executed": report.executed, "values": {t: graph[t].hex() for t in graph.tasks.specs},
                  "digest": dagnb.fingerprints.values.digest_name()}))
"""

RAW = """
def raw(path=dagnb.file(DATA)):
    open(LOG, "a").write("raw\\n")
    with open(path, "rb") as handle:
        return handle.read()
"""
FIRST = f"""
def first():
    open(LOG, "a").write("first\\n")
    return bytes.fromhex("{VALUE_A.hex()}")
"""
SECOND = f"""
def second():
    open(LOG, "a").write("second\\n")
    return bytes.fromhex("{VALUE_B.hex()}")
"""


def session(tmp_path: Path, cells: list[str], shared: bool) -> Any:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGNB_CACHE_KEY", "DAGNB_FINGERPRINT")}
    if shared:
        env["DAGNB_CACHE_KEY"] = "a team key of at least 32 characters, shared on purpose"
    env.update(CELLS=json.dumps(cells), LOG=str(tmp_path / "log.txt"), DATA=str(tmp_path / "data.bin"),
               CACHE=str(tmp_path / ("shared-cache" if shared else "cache")))
    done = subprocess.run([sys.executable, "-c", SESSION], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_inputs_really_collide_in_xxh3() -> None:
    assert xxhash.xxh3_128_digest(FILE_A) == xxhash.xxh3_128_digest(FILE_B)
    assert dagnb.fingerprint(VALUE_A) == dagnb.fingerprint(VALUE_B), "this process fingerprints with xxh3"


def _changed_file(tmp_path: Path, shared: bool) -> tuple[Any, Any]:
    (tmp_path / "data.bin").write_bytes(FILE_A)
    first = session(tmp_path, [RAW], shared)
    (tmp_path / "data.bin").write_bytes(FILE_B)
    return first, session(tmp_path, [RAW], shared)


def test_a_changed_file_is_seen_in_a_shared_cache(tmp_path: Path) -> None:
    first, second = _changed_file(tmp_path, shared=True)
    assert (first["digest"], first["executed"]) == ("blake3", ["raw"])
    assert second["executed"] == ["raw"] and bytes.fromhex(second["values"]["raw"]) == FILE_B
    contrast = tmp_path / "default"
    contrast.mkdir()
    first, second = _changed_file(contrast, shared=False)
    assert (first["digest"], second["executed"]) == ("xxh3", []), "the default misses it: the documented limit"
    assert bytes.fromhex(second["values"]["raw"]) == FILE_A
    faultlib.record_case("test_collisions", "a dagnb.file input changed to an xxh3 twin: rerun in a shared cache "
                                            "(keyed BLAKE3); unseen with the default xxh3, as documented")


def test_two_colliding_outputs_keep_their_own_values_in_a_shared_cache(tmp_path: Path) -> None:
    for shared in (True, False):
        folder = tmp_path / ("shared" if shared else "default")
        folder.mkdir()
        session(folder, [FIRST, SECOND], shared)
        again = session(folder, [FIRST, SECOND], shared)  # a restart: both load from the cache
        loaded = {t: bytes.fromhex(v) for t, v in again["values"].items()}
        assert again["executed"] == []
        if shared:
            assert loaded == {"first": VALUE_A, "second": VALUE_B}, "a wrong value was served"
        else:
            assert loaded["first"] == loaded["second"], "the default stores the twins once: the documented limit"
    faultlib.record_case("test_collisions", "two tasks returning xxh3 twins, after a restart: each its own value in "
                                            "a shared cache; one stored value for both with the default xxh3")
