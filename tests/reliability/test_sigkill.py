"""A writer process killed with SIGKILL at random points: the cache keeps every committed value, and no wrong one.

Each trial forks a child that opens the shared cache directory and writes
entries (small objects and 1-4 MB arrays, some values shared by several
keys) with ``put``, ``set_head`` and ``touch``, telling the parent through a
pipe when each put starts (``B``) and returns (``D``). The parent waits for
the start of a randomly chosen put, sleeps a random fraction of a put's
duration and sends SIGKILL, so kills land while pickling, hashing, fsyncing,
renaming, committing, or between puts. Then the parent opens the store and
checks it: every entry that says its value is stored loads and equals the
value derived from its key; every put the child saw return is there; SQLite
passes its integrity check; the next write works. A kill may leave a
``.tmp-*`` file or a value file that no row names (both allowed: space, not
data); they are counted.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import faultlib
import pytest

from dagnb.cache.store import CacheEntry, CacheMiss, DiskStore
from dagnb.fingerprints.values import fingerprint

TRIALS = 200
PUTS = 200  # the most puts a child does (it is always killed long before)
TARGETS = 6  # the kill comes during or after the start of one of the first TARGETS puts
KEEP_BYTES = 8 * 2**20  # the parent prunes the cache to this after each trial (keeps the test's disk use small)


def _writer(root: str, trial: int, fd: int) -> None:
    """The child: write PUTS entries, reporting each put's start and return on the pipe."""
    store = DiskStore(root)
    for j in range(PUTS):
        key = f"t{trial}-{j}"
        value = faultlib.entry_value(key)
        os.write(fd, f"B{j}\n".encode())
        store.put(CacheEntry(key, f"task{j % 3}", fingerprint(value), parts={"trial": str(trial)}, duration=0.5), value)
        store.set_head(f"task{j % 3}", key)
        store.touch([(key, 0.5)])
        os.write(fd, f"D{j}\n".encode())
    os._exit(0)


def _read_lines(fd: int, until: str | None) -> tuple[list[str], bool]:
    """Lines from the pipe until ``until`` is seen (or EOF when ``until`` is None); whether EOF came."""
    lines: list[str] = []
    buffer = b""
    while True:
        chunk = os.read(fd, 4096)
        if not chunk:
            return lines, True
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        lines += [c.decode() for c in complete]
        if until is not None and until in lines:
            return lines, False


def _kill_midway(
    child_main: Callable[[str, int, int], None], root: Path, trial: int, until: str, pause: Callable[[], float]
) -> tuple[list[str], int]:
    """Fork ``child_main(root, trial, pipe)``; once it writes the line ``until``, sleep ``pause()`` and
    SIGKILL it (a child that finished first is not paused for). Every line it wrote, and its exit code."""
    read, write = os.pipe()
    child = multiprocessing.get_context("fork").Process(target=child_main, args=(str(root), trial, write))
    child.start()
    os.close(write)
    lines, eof = _read_lines(read, until)
    if not eof:
        time.sleep(pause())
    child.kill()  # SIGKILL
    child.join()
    more, _ = _read_lines(read, None)
    os.close(read)
    return lines + more, child.exitcode  # type: ignore[return-value]


def _check(root: Path, keys: list[str], acknowledged: set[str], tally: dict[str, int]) -> None:
    """Verify ``keys``: a stored entry loads and equals its value; an acknowledged put is never lost."""
    store = DiskStore(root)
    try:
        for key in keys:
            entry = store.entry(key)
            if entry is None:  # no row, or a row whose signature does not verify
                if key in acknowledged:
                    tally["lost"] += 1
                continue
            tally["entries verified"] += 1
            if not entry.stored:  # evicted by an earlier prune: a miss by design
                continue
            try:
                value = store.load(entry)
            except CacheMiss:
                tally["misses"] += 1
                tally["lost"] += key in acknowledged
                continue
            tally["values verified"] += 1
            if not faultlib.same(value, faultlib.entry_value(key)):
                tally["wrong values"] += 1
    finally:
        store.close()


@pytest.mark.slow
def test_sigkill_at_random_points_never_loses_a_commit_nor_returns_a_wrong_value(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    DiskStore(root).close()
    rng = random.Random(20240611)
    tally = dict.fromkeys(
        ["trials", "kills", "entries committed", "acknowledged", "entries verified", "values verified",
         "misses", "lost", "wrong values", "unusable stores", "committed without ack", "killed mid-put"], 0)
    seen_tmp = 0
    for trial in range(TRIALS):
        target, delay = rng.randrange(TARGETS), rng.uniform(0.0, 0.012)
        lines, exitcode = _kill_midway(_writer, root, trial, f"B{target}", lambda: delay)
        tally["trials"] += 1
        tally["kills"] += exitcode == -signal.SIGKILL
        assert exitcode in (0, -signal.SIGKILL), f"trial {trial}: the writer failed on its own ({exitcode})"

        acknowledged = {f"t{trial}-{line[1:]}" for line in lines if line.startswith("D")}
        started = {f"t{trial}-{line[1:]}" for line in lines if line.startswith("B")}
        committed = {k for (k,) in faultlib.rows(root, f"SELECT key FROM entries WHERE key LIKE 't{trial}-%'")}
        tally["acknowledged"] += len(acknowledged)
        tally["entries committed"] += len(committed)
        tally["committed without ack"] += len(committed - acknowledged)
        tally["killed mid-put"] += bool(started - acknowledged)
        assert acknowledged <= committed, f"trial {trial}: puts that returned are missing: {acknowledged - committed}"

        assert faultlib.integrity(root) == "ok", f"trial {trial}: SQLite integrity check failed"
        # This trial's entries and those sharing a value with them; every 25 trials, every entry.
        where = "" if trial % 25 == 24 else (
            f"WHERE output IN (SELECT output FROM entries WHERE key LIKE 't{trial}-%')")
        every = {k for (k,) in faultlib.rows(root, f"SELECT key FROM entries {where}")}
        keys = sorted(k for k in every | committed if k.startswith("t"))  # not the probes
        _check(root, keys, acknowledged, tally)
        assert tally["wrong values"] == 0, f"trial {trial}: a wrong value was returned"
        assert tally["lost"] == 0, f"trial {trial}: a committed value was lost"

        seen_tmp = len(faultlib.tmp_files(root))
        try:  # the next write works, even next to leftovers; then keep the directory small
            store = DiskStore(root)
            probe = {"trial": trial, "after": "kill"}
            store.put(CacheEntry(f"probe-{trial}", "probe", fingerprint(probe)), probe)
            assert store.load(store.entry(f"probe-{trial}")) == probe  # type: ignore[arg-type]
            store.prune(KEEP_BYTES)
            store.close()
        except Exception:
            tally["unusable stores"] += 1
            raise

    faultlib.assert_usable(root)
    assert faultlib.integrity(root) == "ok"
    orphans = len(faultlib.orphan_blobs(root))
    leftover_mb = sum(p.stat().st_size for p in faultlib.tmp_files(root)) / 2**20
    assert tally["kills"] >= TRIALS * 0.9, "most trials should end in a kill, not a finished child"
    assert tally["killed mid-put"] >= TRIALS * 0.5, "most kills should land inside a put"
    assert (tally["wrong values"], tally["lost"], tally["unusable stores"]) == (0, 0, 0)
    faultlib.record(
        "test_sigkill",
        f"{tally['trials']} trials, {tally['kills']} SIGKILLs ({tally['killed mid-put']} during a put and its "
        f"set_head + touch, the rest between two); "
        f"{tally['entries committed']} entries committed ({tally['committed without ack']} after the last ack), "
        f"{tally['entries verified']} entries and {tally['values verified']} values verified",
        f"nothing: 0 wrong values, 0 committed values lost, 0 unusable stores; integrity_check ok after every "
        f"kill; left behind: {seen_tmp} `.tmp-*` files ({leftover_mb:.0f} MB) and {orphans} unreferenced value "
        f"files (space only; no dagnb command removes them yet)",
    )


PRUNE_TRIALS = 60


def _pruner(root: str, trial: int, fd: int) -> None:
    """The child of the eviction test: puts, with a prune after every third and a clear after every seventh."""
    store = DiskStore(root)
    budget = random.Random(trial)
    for j in range(PUTS):
        key = f"q{trial}-{j}"
        value = faultlib.entry_value(key)
        store.put(CacheEntry(key, f"task{j % 3}", fingerprint(value)), value)
        os.write(fd, f"D{j}\n".encode())
        if j % 3 == 2:
            store.prune(budget.randrange(0, 6 * 2**20))
        if j % 7 == 6:
            store.clear(f"task{j % 3}")
    os._exit(0)


def test_sigkill_during_prune_and_clear_leaves_no_dangling_entry(tmp_path: Path) -> None:
    """``prune`` and ``clear`` delete rows, commit, then delete files: a kill leaves an orphan file at worst."""
    root = tmp_path / "cache"
    DiskStore(root).close()
    rng = random.Random(7)
    tally = dict.fromkeys(["trials", "kills", "entries verified", "values verified", "misses", "lost", "wrong values"], 0)
    for trial in range(PRUNE_TRIALS):
        _, exitcode = _kill_midway(_pruner, root, trial, f"D{rng.randrange(2, 9)}", lambda: rng.uniform(0.0, 0.01))
        tally["trials"] += 1
        tally["kills"] += exitcode == -signal.SIGKILL
        assert exitcode in (0, -signal.SIGKILL)
        assert faultlib.integrity(root) == "ok"
        keys = sorted(k for (k,) in faultlib.rows(root, "SELECT key FROM entries") if k.startswith("q"))
        _check(root, keys, set(), tally)
        # An entry that says its value is stored must find it: a miss here is a dangling row.
        assert (tally["wrong values"], tally["misses"]) == (0, 0), f"trial {trial}: {tally}"
    faultlib.assert_usable(root)
    orphans = len(faultlib.orphan_blobs(root))
    faultlib.record(
        "test_sigkill (prune, clear)",
        f"{tally['trials']} trials, {tally['kills']} SIGKILLs of a child that puts, prunes and clears; "
        f"{tally['entries verified']} entries and {tally['values verified']} values verified",
        f"nothing: 0 wrong values, 0 entries whose stored value was gone; left behind: {orphans} "
        f"unreferenced value files (space only)",
    )


@pytest.mark.value_files
def test_verify_removes_what_killed_writers_left_behind_once_it_is_an_hour_old(tmp_path: Path) -> None:
    import os
    import time

    from dagnb.cache.store import CacheEntry, DiskStore
    from dagnb.fingerprints.values import fingerprint

    store = DiskStore(tmp_path / "cache")
    store.put(CacheEntry("k", "t", fingerprint(1)), 1)
    shard = next((tmp_path / "cache" / "blobs").iterdir())
    old_tmp, new_tmp, orphan = shard / ".tmp-old.pkl", shard / ".tmp-new.pkl", shard / ("0" * 32 + ".pkl")
    for path in (old_tmp, new_tmp, orphan):
        path.write_bytes(b"leftover")
    hour_ago = time.time() - 3700
    os.utime(old_tmp, (hour_ago, hour_ago))
    os.utime(orphan, (hour_ago, hour_ago))
    assert store.verify().ok
    assert not old_tmp.exists() and not orphan.exists()
    assert new_tmp.exists(), "a temporary file younger than an hour may belong to a writer still at work"
    assert store.load(store.entry("k")) == 1  # type: ignore[arg-type]
