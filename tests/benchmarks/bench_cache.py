"""Cache hits on a 10 MB numpy input: ``joblib.Memory`` vs a dagnb task.

``joblib.Memory(location).cache(f)(data)`` is the usual way to memoize a
notebook computation on disk. The same function as a dagnb task reading
``data`` from the namespace (an external input, hashed by value) is timed
twice: as a disk hit from a *new* Graph over the same cache directory (what
a kernel restart costs) and as an in-memory hit in the same Graph. Every
timed call includes hashing the input and, for disk hits, loading the 10 MB
result; construction of the Memory or Graph object is included on both
sides of the disk comparison, since a restarted kernel pays it too.
"""

from __future__ import annotations

import tempfile
from typing import Any

import joblib
import numpy as np
from _common import Row, Sizes, best_of, best_of_call, ms, ratio

import dagnb

TASK_SOURCE = "def doubled(data):\n    return data * 2.0\n"


def doubled(data: np.ndarray) -> np.ndarray:
    return data * 2.0


def _task_function() -> Any:
    namespace: dict[str, Any] = {}
    exec(TASK_SOURCE, namespace)  # noqa: S102 - the task source is ours
    return namespace["doubled"]


def _dagnb_graph(directory: str, data: np.ndarray) -> dagnb.Graph:
    graph = dagnb.Graph(cache_dir=directory, namespace={"data": data})
    graph.task(_task_function())
    return graph


def _dagnb_hit(graph: dagnb.Graph) -> np.ndarray:
    report = graph.run()
    if report.cached != ["doubled"]:
        raise RuntimeError(f"expected a cache hit, got: {report.summary()}")
    return graph["doubled"]


def time_joblib(directory: str, data: np.ndarray, repeat: int) -> float:
    joblib.Memory(directory, verbose=0).cache(doubled)(data)  # the miss that fills the cache

    def hit(_: None) -> np.ndarray:
        return joblib.Memory(directory, verbose=0).cache(doubled)(data)

    return best_of(hit, lambda: None, repeat)


def time_dagnb(directory: str, data: np.ndarray, repeat: int) -> tuple[float, float]:
    """(disk hit in a new Graph incl. its construction, in-memory hit)."""
    warm = _dagnb_graph(directory, data)
    warm.run()  # the miss that fills the cache

    def restart(_: None) -> np.ndarray:
        return _dagnb_hit(_dagnb_graph(directory, data))

    disk = best_of(restart, lambda: None, repeat)
    memory = best_of_call(lambda: _dagnb_hit(warm), repeat)
    return disk, memory


def time_verified_load(directory: str, nbytes: int, repeat: int) -> tuple[float, float, float]:
    """One value of ``nbytes`` float64 in a DiskStore: (joblib.load of its file, xxh3 of its bytes, store.load)."""
    import io
    from pathlib import Path

    import xxhash

    from dagnb.cache.store import CacheEntry, DiskStore
    from dagnb.fingerprints.values import fingerprint

    data = np.random.default_rng(3).random(nbytes // 8)
    store = DiskStore(directory)
    entry = CacheEntry("k", "t", fingerprint(data))
    store.put(entry, data)
    path = store._blob_path(entry.fingerprint)
    raw = best_of(lambda _: joblib.load(io.BytesIO(Path(path).read_bytes())), lambda: None, repeat)
    blob = Path(path).read_bytes()
    xxh3 = best_of(lambda _: xxhash.xxh3_128_hexdigest(blob), lambda: None, repeat)
    verified = best_of(lambda _: store.load(entry), lambda: None, repeat)
    store.close()
    return raw, xxh3, verified


def rows(sizes: Sizes) -> list[Row]:
    data = np.random.default_rng(2).random(sizes.memory_input_bytes // 8)
    with tempfile.TemporaryDirectory(prefix="bench-joblib-") as jdir, \
            tempfile.TemporaryDirectory(prefix="bench-dagnb-") as ddir:
        joblib_hit = time_joblib(jdir, data, sizes.repeat)
        disk, memory = time_dagnb(ddir, data, sizes.repeat)
    size = f"{data.nbytes / 1e6:.0f} MB"
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as vdir:
        # more repetitions than elsewhere: a load's time swings with the allocator's state after earlier rows
        raw, xxh3, verified = time_verified_load(vdir, 60 * 2**20 if not sizes.quick else 8 * 2**20, 3 * sizes.repeat)
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as vdir:
        big_raw, _, big = time_verified_load(vdir, 128 * 2**20 if not sizes.quick else 65 * 2**20, sizes.repeat)
    peer = f"joblib.Memory hit: {ms(joblib_hit)}"
    vsize = "60 MiB" if not sizes.quick else "8 MiB"
    bsize = "128 MiB" if not sizes.quick else "65 MiB"
    return [
        Row(f"load a {vsize} float64 value from the disk cache, signature verified, vs reading + joblib.load alone",
            ms(verified), f"unverified: {ms(raw)}", ratio(raw, verified), "—", None),
        Row(f"signature check (BLAKE3 chunk digests, hashed as the unpickler reads; HMAC-SHA256) as a share of the unverified "
            f"load of {vsize}", f"{100 * (verified - raw) / raw:.0f}%", f"unverified: {ms(raw)}", None,
            "< 15% of load time", (verified - raw) / raw < 0.15),
        Row(f"load a {bsize} value, verified from a private copy and memory-mapped from it, vs reading + "
            f"joblib.load (info)", ms(big), f"unverified: {ms(big_raw)}", ratio(big_raw, big), "—", None),
        Row(f"for scale: a checksum only (xxh3_128 of the {vsize} in memory), no signature (info)",
            f"{100 * xxh3 / raw:.0f}% of the load", f"xxh3: {ms(xxh3)}", None, "—", None),
        Row(f"cached call on a {size} array: dagnb disk hit in a new Graph vs joblib.Memory",
            ms(disk), peer, ratio(joblib_hit, disk), "—", None),
        Row(f"cached call on a {size} array: dagnb in-memory hit vs joblib.Memory",
            ms(memory), peer, ratio(joblib_hit, memory), "—", None),
    ]
