"""Value files written in joblib's format, large arrays straight from their memory, hashed on the way."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import blake3
import joblib
import numpy as np
import pytest

from dagnb.cache import dumping
from dagnb.cache.store import CacheEntry, CacheMiss, DiskStore
from dagnb.cache.trust import CHUNK, ChunkHasher
from dagnb.cache.valuecopy import MAP_FROM
from dagnb.fingerprints.values import fingerprint

RNG = np.random.default_rng(7)
VALUES = {
    "C-contiguous floats, several chunks": RNG.random(3 * CHUNK // 8 + 1234),
    "2-D ints": np.arange(300 * 700, dtype=np.int32).reshape(300, 700),
    "Fortran order": np.asfortranarray(RNG.random((500, 300))),
    "strided view": RNG.random((1000, 400))[::2],
    "empty": np.zeros(0),
    "0-d": np.array(5.0),
    "big-endian": np.arange(100_000, dtype=">i8"),
    "datetimes": np.arange(50_000).astype("M8[s]"),
    "structured": np.zeros(40_000, dtype=[("x", "f4"), ("y", "i8")]),
    "objects": np.array([{"a": 1}, "b", 3.0] * 1000, dtype=object),
    "a scalar": np.float64(3.5),
    "a dict of arrays and a list": {"a": RNG.random(200_000), "b": [np.ones(5), "text", np.arange(3)]},
}


def _dumped(value: Any) -> tuple[bytes, list[bytes]]:
    out = io.BytesIO()
    handle = dumping.HashingFile(out)  # type: ignore[arg-type]
    dumping.dump(value, handle)
    return out.getvalue(), handle.finish()


def _chunk_digests(data: bytes) -> list[bytes]:
    return [blake3.blake3(data[i : i + CHUNK]).digest() for i in range(0, max(len(data), 1), CHUNK)]


@pytest.mark.parametrize("name", list(VALUES))
def test_a_value_file_holds_the_bytes_joblib_writes_and_their_chunk_digests(name: str) -> None:
    value = VALUES[name]
    expected = io.BytesIO()
    joblib.dump(value, expected)
    data, digests = _dumped(value)
    assert data == expected.getvalue()  # so every joblib reads it, and old files read as before
    assert digests == _chunk_digests(data)


def test_a_plain_array_is_written_from_its_memory_without_a_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    array = RNG.random(5 * CHUNK // 8)
    seen: list[Any] = []
    real = dumping.HashingFile.write

    def write(self: dumping.HashingFile, data: Any, stable: bool = False) -> int:
        seen.append((memoryview(data).nbytes, stable, getattr(data, "obj", None)))
        return real(self, data, stable)

    monkeypatch.setattr(dumping.HashingFile, "write", write)
    _dumped(array)
    pieces = [(size, stable) for size, stable, base in seen if base is not None and np.shares_memory(base, array)]
    assert sum(size for size, _ in pieces) == array.nbytes and all(stable for _, stable in pieces)


@pytest.mark.parametrize(
    "pieces",
    [[b"x" * 10, b"y" * (3 * CHUNK + 5), b"z" * 7], [b"a" * (CHUNK - 1), b"b" * (2 * CHUNK + 1)], [b""], []],
)
def test_chunk_digests_are_the_same_hashed_here_or_on_the_pool(pieces: list[bytes]) -> None:
    stable, here = ChunkHasher(), ChunkHasher()
    for piece in pieces:
        stable.update(piece, stable=True)
        here.update(bytearray(piece))
    assert stable.finish() == here.finish() == _chunk_digests(b"".join(pieces))


@pytest.fixture
def disk(tmp_path: Path) -> Any:
    made = DiskStore(tmp_path / "cache")
    yield made
    made.close()


@pytest.mark.parametrize("size", [9 * CHUNK + 77, MAP_FROM + 8 * 1000], ids=["read", "memory-mapped"])
def test_a_large_array_round_trips_bit_exact(disk: DiskStore, size: int) -> None:
    array = RNG.integers(0, 2**63, size // 8, dtype=np.int64)
    entry = CacheEntry("k", "t", fingerprint(array))
    disk.put(entry, array)
    loaded = disk.load(disk.entry("k"))  # type: ignore[arg-type]
    assert loaded.dtype == array.dtype and loaded.tobytes() == array.tobytes()


@pytest.mark.parametrize("size", [9 * CHUNK + 77, MAP_FROM + 8 * 1000], ids=["read", "memory-mapped"])
@pytest.mark.parametrize("where", [0.5, -1])
def test_a_flipped_byte_in_a_large_array_file_is_a_miss(disk: DiskStore, size: int, where: float) -> None:
    array = np.arange(size // 8, dtype=np.float64)
    entry = CacheEntry("k", "t", fingerprint(array))
    disk.put(entry, array)
    path = disk._blob_path(entry.fingerprint)
    with path.open("r+b") as handle:
        offset = int(path.stat().st_size * where) if where > 0 else path.stat().st_size - 1
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0x01]))
    with pytest.raises(CacheMiss):
        disk.load(disk.entry("k"))  # type: ignore[arg-type]
    assert not path.exists() and not disk.has_value(entry.fingerprint)
