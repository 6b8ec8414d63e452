"""A transient error is not corruption: a value that cannot be read right now is a miss, and stays.

"Too many open files" for real: the soft limit of open files is lowered
and every free descriptor taken, then a session loads from the cache. The
value is a miss with a warning that says why, the task recomputes, and
nothing in the cache is removed, so the next session (with descriptors
again) loads it. ("Permission denied" between two real users is in
``test_shared.py``.)
"""

from __future__ import annotations

import os
import resource
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import faultlib
import numpy as np
import pytest
from notebook_cells import Notebook

from dagnb.cache.store import CacheEntry, CacheMiss, DiskStore
from dagnb.errors import DagnbCacheWarning
from dagnb.fingerprints.values import fingerprint

DATA = """
def data():
    note("data")
    import numpy as np
    return np.arange(50_000)
"""


@contextmanager
def no_free_descriptors(spare: int = 0) -> Iterator[None]:
    """Every file descriptor this process may open but ``spare`` is taken until the block ends.

    Loading a value needs four at once (the cache folder, ``blobs``, the
    shard, the file); two spare let a task body open its log, not that.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    held: list[int] = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError:
                break
        for _ in range(spare):
            os.close(held.pop())
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_too_many_open_files_on_load_is_a_miss_and_the_value_stays(tmp_path: Path) -> None:
    store = DiskStore(tmp_path / "cache")
    value = np.arange(10_000)
    entry = CacheEntry("k", "t", fingerprint(value))
    store.put(entry, value)
    path = store._blob_path(entry.fingerprint)
    before = path.read_bytes()
    with no_free_descriptors(), pytest.raises(CacheMiss) as miss:
        store.load(entry)
    assert miss.value.reason == "its value file cannot be read (Too many open files)"
    assert store.has_value(entry.fingerprint) and path.read_bytes() == before, "the good value was removed"
    assert faultlib.same(store.load(entry), value)
    store.close()


def test_a_session_out_of_descriptors_recomputes_and_the_next_one_loads(tmp_path: Path) -> None:
    first = Notebook(tmp_path)
    first.task(DATA)
    assert first.run()[1] == ["data"]
    first.graph.store.close()
    files = faultlib.blob_files(tmp_path / "cache")

    second = Notebook(tmp_path)
    second.task(DATA)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with no_free_descriptors(spare=2):
            report, ran = second.run()
    assert report.ok and ran == ["data"] and faultlib.same(second.graph["data"], np.arange(50_000))
    said = [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)]
    assert said[0] == ("The cached value of task `data` cannot be used: its value file cannot be read (Too many open "
                       "files). dagnb recomputes it."), said
    second.graph.store.close()
    assert faultlib.blob_files(tmp_path / "cache") == files, "a value that could not be read was removed"

    third = Notebook(tmp_path)
    third.task(DATA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert third.run()[1] == [], "the value was still in the cache"
    third.graph.store.close()
    faultlib.record_case("test_transient", "every descriptor taken (EMFILE) while loading: a warned miss, the "
                                           "task recomputed, the value kept and loaded by the next session")
