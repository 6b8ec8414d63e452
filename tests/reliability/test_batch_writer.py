"""The cache's writer thread: killed while a batch is written, and killed right after a run returned.

During a run, values and entries are committed in batches on a thread of
the store's own (``dagnb/cache/writer.py``), and the run flushes before it
returns. Two promises follow, tested with real SIGKILLs of forked children:

* a kill while a batch is being written (pickled, fsynced, placed or
  committed) loses nothing that a flush had acknowledged, and no entry
  ever loads a wrong value;
* a kill right after ``Graph.run()`` returned loses nothing of that run: a
  new session over the cache recomputes nothing.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import faultlib
import numpy as np
import pytest
from test_sigkill import _check, _kill_midway

import dagnb
from dagnb.cache.store import CacheEntry, DiskStore
from dagnb.fingerprints.values import fingerprint

TRIALS = 60
PUTS = 200
FLUSH_EVERY = 5


def _batch_writer(root: str, trial: int, fd: int) -> None:
    """The child: puts in a batch, a flush every FLUSH_EVERY puts (``F<j>``: every put up to j is durable)."""
    store = DiskStore(root)
    store.begin_batch()
    for j in range(PUTS):
        key = f"b{trial}-{j}"
        value = faultlib.entry_value(key)
        os.write(fd, f"B{j}\n".encode())
        store.put(CacheEntry(key, f"task{j % 3}", fingerprint(value)), value)
        store.set_head(f"task{j % 3}", key)
        if j % FLUSH_EVERY == FLUSH_EVERY - 1:
            assert store.flush() == []
            store.begin_batch()
            os.write(fd, f"F{j}\n".encode())
    os._exit(0)


@pytest.mark.slow
def test_sigkill_while_a_batch_is_written_loses_nothing_flushed_and_serves_nothing_wrong(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    DiskStore(root).close()
    rng = random.Random(16)
    tally = dict.fromkeys(["trials", "kills", "acknowledged", "entries verified", "values verified", "misses",
                           "lost", "wrong values"], 0)
    for trial in range(TRIALS):
        target, delay = rng.randrange(3, 3 * FLUSH_EVERY), rng.uniform(0.0, 0.03)
        lines, exitcode = _kill_midway(_batch_writer, root, trial, f"B{target}", lambda: delay)
        tally["trials"] += 1
        tally["kills"] += exitcode == -signal.SIGKILL
        assert exitcode in (0, -signal.SIGKILL), f"trial {trial}: the writer failed on its own ({exitcode})"
        flushed = max((int(line[1:]) for line in lines if line.startswith("F")), default=-1)
        acknowledged = {f"b{trial}-{j}" for j in range(flushed + 1)}
        tally["acknowledged"] += len(acknowledged)
        assert faultlib.integrity(root) == "ok", f"trial {trial}: SQLite integrity check failed"
        keys = sorted(k for (k,) in faultlib.rows(root, "SELECT key FROM entries") if k.startswith(f"b{trial}-"))
        _check(root, sorted(set(keys) | acknowledged), acknowledged, tally)
        assert (tally["wrong values"], tally["lost"]) == (0, 0), f"trial {trial}: {tally}"
        if trial % 10 == 9:
            store = DiskStore(root)
            store.prune(8 * 2**20)
            store.close()
    faultlib.assert_usable(root)
    assert tally["kills"] >= TRIALS * 0.9, "most trials should end in a kill, not a finished child"
    faultlib.record(
        "test_batch_writer",
        f"{tally['trials']} SIGKILLs of a child writing batches (flushed every {FLUSH_EVERY} puts); "
        f"{tally['acknowledged']} flushed puts, {tally['entries verified']} entries and "
        f"{tally['values verified']} values verified",
        "nothing: 0 wrong values, 0 flushed values lost; integrity_check ok after every kill",
    )


# ------------------------------------------------------- a run that returned


def seed() -> int:
    return 7


def numbers(seed: int) -> list[int]:
    return list(range(seed, seed + 1_000))


def big(numbers: list[int]) -> np.ndarray:
    return np.arange(300_000, dtype=np.float64) + len(numbers)  # 2.4 MB: a value file


def total(big: np.ndarray) -> float:
    return float(big.sum())


def label(total: float, numbers: list[int]) -> str:
    return f"{total:.0f}/{len(numbers)}"


TASKS = (seed, numbers, big, total, label)
CHAIN = 40  # and a chain of small tasks after them


def _graph(root: str) -> dagnb.Graph:
    graph = dagnb.Graph(cache_dir=root)
    for func in TASKS:
        graph.task(func)
    for i in range(CHAIN):
        graph.namespace[f"step{i}"] = None
        source = f"def step{i}({'label' if i == 0 else f'step{i - 1}'}):\n    return ({i}, {'label' if i == 0 else f'step{i - 1}'})\n"
        namespace: dict[str, object] = {}
        exec(compile(source, f"<step{i}>", "exec"), namespace)
        graph.task(namespace[f"step{i}"])
    return graph


def _runner(root: str, trial: int, fd: int) -> None:
    graph = _graph(root)
    graph.run()
    os.write(fd, b"R\n")
    time.sleep(60)  # killed here, right after the run returned
    os._exit(0)


def test_a_run_that_returned_is_in_the_cache_when_the_kernel_is_killed_right_after(tmp_path: Path) -> None:
    for trial in range(5):
        root = tmp_path / f"cache-{trial}"
        lines, exitcode = _kill_midway(_runner, root, trial, "R", lambda: 0.0)
        assert "R" in lines and exitcode == -signal.SIGKILL
        assert faultlib.integrity(root) == "ok"
        graph = _graph(str(root))
        report = graph.run()
        assert report.executed == [], f"trial {trial}: a value of a run that returned was lost"
        assert len(report.cached) == len(TASKS) + CHAIN
        assert graph["label"] == label(total(big(numbers(seed()))), numbers(seed()))
        assert graph[f"step{CHAIN - 1}"][0] == CHAIN - 1
        graph.close()
    faultlib.record_case("test_batch_writer (a run returned)", f"5 SIGKILLs right after `Graph.run()` returned ({len(TASKS) + CHAIN} "
                                              f"tasks, small values and a 2.4 MB one): every value there")
