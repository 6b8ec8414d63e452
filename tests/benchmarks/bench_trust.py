"""What trust costs: the digest of a shared cache, and checking a value's signature on load.

Where a cache is shared (``DAGNB_CACHE_KEY`` set), fingerprints use keyed
BLAKE3 instead of xxh3_128, since xxh3 has hand-made collisions. The
candidates were measured on the same 256 MiB array and 2M-row frame as the
fingerprint rows: raw hash throughput (xxh3_128, BLAKE3 on one thread and
on all cores, BLAKE2b, SHA-256), then ``dagnb.fingerprint`` with each
collision-resistant choice swapped in. Loading a value checks its
signature over BLAKE3 digests of its chunks, hashed on a thread pool while
the next chunk is read; the load rows (in ``bench_cache.py``) give its
share of a load.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

import blake3
import xxhash
from _common import Row, Sizes, best_of_call, gb_per_s, ms, ratio
from bench_hashing import make_array, make_frame

import dagnb
from dagnb.fingerprints import stream

KEY = blake3.blake3(b"a team key", derive_key_context="dagnb benchmarks").digest()

FINGERPRINT_HASHES: dict[str, Callable[..., Any]] = {
    "xxh3_128 (default)": xxhash.xxh3_128,
    "keyed BLAKE3 (shared caches)": functools.partial(blake3.blake3, key=KEY, max_threads=blake3.blake3.AUTO),
    "keyed BLAKE2b-256 (not chosen)": functools.partial(hashlib.blake2b, digest_size=32, key=KEY),
}


def raw_rows(sizes: Sizes) -> list[Row]:
    """Throughput of each hash over the array's buffer: the ceiling for fingerprints and signatures."""
    data = make_array(sizes.array_bytes).data.cast("B")
    hashes = {
        "xxh3_128": lambda: xxhash.xxh3_128(data).digest(),
        "BLAKE3, 1 thread": lambda: blake3.blake3(data).digest(),
        "BLAKE3, all cores": lambda: blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest(),
        "BLAKE2b": lambda: hashlib.blake2b(data).digest(),
        "SHA-256": lambda: hashlib.sha256(data).digest(),
    }
    times = {name: best_of_call(run, sizes.slow_repeat) for name, run in hashes.items()}
    size = f"{sizes.array_bytes // 2**20} MiB"
    return [Row(f"raw {name} of {size} (info)", f"{ms(t)} ({gb_per_s(data.nbytes, t)})",
                f"xxh3_128: {ms(times['xxh3_128'])}", ratio(times["xxh3_128"], t), "—", None)
            for name, t in times.items() if name != "xxh3_128"]


def _with_hash(make: Callable[..., Any], value: Any, repeat: int) -> float:
    chosen = stream._new_hash
    stream._new_hash = make
    try:
        return best_of_call(lambda: dagnb.fingerprint(value), repeat)
    finally:
        stream._new_hash = chosen


def fingerprint_rows(sizes: Sizes) -> list[Row]:
    """``dagnb.fingerprint`` with each collision-resistant hash, against the default (xxh3_128)."""
    arr, frame = make_array(sizes.array_bytes), make_frame(sizes.frame_rows)
    times = {name: (_with_hash(make, arr, sizes.repeat), _with_hash(make, frame, sizes.slow_repeat))
             for name, make in FINGERPRINT_HASHES.items()}
    default_array, default_frame = times.pop("xxh3_128 (default)")
    label = f"fingerprint {sizes.array_bytes // 2**20} MiB float64 array"
    rows = []
    for name, (on_array, on_frame) in times.items():
        rows.append(Row(f"{label}, {name}, vs the default xxh3_128 (info)",
                        f"{ms(on_array)} ({gb_per_s(arr.nbytes, on_array)})", f"xxh3_128: {ms(default_array)}",
                        ratio(default_array, on_array), "—", None))
        rows.append(Row(f"fingerprint {sizes.frame_rows:,}-row mixed DataFrame, {name}, vs the default xxh3_128 "
                        f"(info)", ms(on_frame), f"xxh3_128: {ms(default_frame)}", ratio(default_frame, on_frame),
                        "—", None))
    return rows


def rows(sizes: Sizes) -> list[Row]:
    return raw_rows(sizes) + fingerprint_rows(sizes)
