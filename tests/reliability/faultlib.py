"""What the fault-injection tests share: deterministic values, checks of a cache directory, the tally.

Every value a test writes is derived from its key alone (:func:`entry_value`),
so after any fault the value read back can be compared with the one that
was written, whichever process wrote it.
"""

from __future__ import annotations

import os
import sqlite3
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

TALLIES: dict[str, tuple[str, str]] = {}
_CASES: dict[str, list[str]] = {}
CASE_LOSSES = {
    "test_corruption": "nothing: each a miss with a DagnbCacheWarning naming the reason, recomputed to the right "
                       "value, then loaded by the next session; 0 wrong values",
    "test_corruption (malicious pickle)": "nothing: never unpickled (the file it would create never appeared); "
                                          "the right value recomputed",
    "test_format": "nothing: the old caches' files all kept (value files byte for byte, the same rows); every "
                   "value, head, hit count and run of the format-3 fixture read back equal",
    "test_mutation": "with a disk cache, nothing: InputMutated with the exact message, the damaged value "
                     "restored from disk, later tasks saw the original; without one, nothing either: a reader "
                     "fails with InputDamaged and the next run recomputes the value",
    "test_key": "nothing: every bad key refused with its exact message, no empty key ever written, the "
                "malicious pickle behind each never unpickled; the session ran in memory",
    "test_history_rows": "nothing: every restored value exactly its run's (double == 2 * stamp each time); every "
                         "edited or misdirected row refused or ignored with its exact message; nothing re-signed "
                         "that dagnb had not verified",
    "test_shared": "nothing: 0 files lost, 0 wrong values; every cache that could be read was read, every one "
                   "that could not be written was left exactly as it was",
    "test_transient": "nothing: a warned miss saying why, the value kept (byte for byte) and loaded once the "
                      "error passed",
    "test_collisions": "in a shared cache, nothing: the changed file rerun, each output its own value. With the "
                       "default xxh3 (a cache nobody else writes) the twins collide, as the documentation says",
    "test_history_bound": "nothing of the latest runs: each reads back whole and signed; older ones go by design",
    "test_swap": "nothing: 0 wrong values, the malicious pickle never unpickled; each swap a miss, stored again",
    "test_read_only": "nothing: every file's bytes and modification time (and the folder's) the same after each "
                      "read-only open; no -wal, -shm, lock file or secret created; every write refused with its "
                      "exact message",
    "test_paths": "nothing: 0 files outside the cache deleted or changed; verify named every planted link "
                  "(removing the link, never its target); the cache was usable afterwards",
    "test_disk_full": "nothing: each run went on with the value in memory and a DagnbCacheWarning saying it could "
                      "not be written, no temporary file left, recomputed after a restart, small values still "
                      "stored",
}


def record(test: str, tried: str, lost: str) -> None:
    """Note what ``test`` tried and what it lost (the README table)."""
    TALLIES[test] = (tried, lost)


def record_case(test: str, case: str) -> None:
    """One more case of a parametrized test passed; its row lists them all."""
    cases = _CASES.setdefault(test, [])
    if case not in cases:
        cases.append(case)
    TALLIES[test] = (f"{len(cases)} cases: " + "; ".join(cases), CASE_LOSSES.get(test, "nothing"))


def tally_table() -> list[str]:
    rows = ["| test | what it tried | what was lost |", "| --- | --- | --- |"]
    rows += [f"| {test} | {tried} | {lost} |" for test, (tried, lost) in sorted(TALLIES.items())]
    return rows


# ------------------------------------------------------------------ values


def _seed(name: str) -> int:
    return zlib.crc32(name.encode())


def value_for(name: str) -> Any:
    """A value of varied type and size (a few bytes to 4 MB), the same in every process."""
    seed = _seed(name)
    rng = np.random.default_rng(seed)
    kind = seed % 5
    if kind == 0:
        return {"name": name, "n": seed, "items": list(range(seed % 97)), "text": "x" * (seed % 300)}
    if kind in (1, 2):  # 1-4 MB: a kill lands in the middle of writing it
        return rng.standard_normal(int(rng.integers(2**17, 2**19)))
    if kind == 3:
        return rng.integers(0, 2**31, size=int(rng.integers(1_000, 50_000)))
    return (name, rng.random(64), [name] * 3, {"nested": {"seed": seed}})


def entry_value(key: str) -> Any:
    """The value stored under ``key``: one in four keys shares one of three values (stored once)."""
    seed = _seed(key)
    return value_for(f"shared-{seed % 3}") if seed % 4 == 0 else value_for(key)


def same(a: Any, b: Any) -> bool:
    """Deep equality, arrays included (same dtype, shape and bytes)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
            and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
        )
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


# ------------------------------------------------------- a cache directory


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in (Path(root) / "blobs").rglob("*.pkl") if not p.name.startswith(".tmp-"))


def tmp_files(root: Path) -> list[Path]:
    return sorted((Path(root) / "blobs").rglob(".tmp-*"))


def rows(root: Path, sql: str) -> list[tuple[Any, ...]]:
    """Read the metadata directly (a separate connection, as another process would)."""
    db = sqlite3.connect(Path(root) / "meta.sqlite", timeout=30)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def integrity(root: Path) -> str:
    return rows(root, "PRAGMA integrity_check")[0][0]


def orphan_blobs(root: Path) -> list[Path]:
    """Value files no metadata row names (left by a kill between the rename and the commit)."""
    known = {fp for (fp,) in rows(root, "SELECT fingerprint FROM blobs")}
    return [p for p in blob_files(root) if p.stem not in known]


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root`` with its bytes (``None`` for a folder)."""
    root = Path(root)
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


# --------------------------------------------------------- still usable?


def usable_numbers() -> list[int]:
    return [n * n for n in range(20)]


def usable_total(usable_numbers: list[int]) -> int:
    return sum(usable_numbers)


def assert_usable(root: Path) -> None:
    """A put + load round trip of a new value, and a Graph run twice over ``root`` (computed, then loaded)."""
    import dagnb
    from dagnb.cache.store import CacheEntry, DiskStore

    store = DiskStore(root)
    try:
        token = os.urandom(8).hex()
        value = {"probe": token, "array": np.arange(1000) * 3}
        store.put(CacheEntry(f"probe-{token}", "probe", dagnb.fingerprint(value)), value)
        entry = store.entry(f"probe-{token}")
        assert entry is not None and entry.stored, "the probe entry was not recorded"
        assert same(store.load(entry), value), "the probe value read back differs"
    finally:
        store.close()
    for attempt in range(2):
        graph = dagnb.Graph(cache_dir=str(root))
        graph.task(usable_numbers)
        graph.task(usable_total)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a usable store warns about nothing here
            report = graph.run()
        assert report.ok, report.render_text()
        assert graph["usable_numbers"] == usable_numbers()
        assert graph["usable_total"] == sum(n * n for n in range(20))
        if attempt == 1:
            assert report.executed == [], f"a second run should load everything: {report.render_text()}"
        graph.store.close()


def fill(folder: Path) -> None:
    """Write a file until the disk is full."""
    import errno

    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


# --------------------------------------------------------- files outside


def plant_victims(folder: Path, names: tuple[str, ...] = ("notes.pkl", ".tmp-draft.pkl", "thesis.tex")) -> Path:
    """Files outside the cache, as old as a killed writer's leftovers (two hours), that must all survive."""
    import time

    folder.mkdir(parents=True, exist_ok=True)
    old = time.time() - 7200
    for name in names:
        path = folder / name
        path.write_bytes(f"{name}: the user's own file".encode())
        os.utime(path, (old, old))
    return folder


def lost(before: dict[str, bytes | None], folder: Path) -> list[str]:
    """What of ``before`` (a :func:`snapshot`) is missing or changed in ``folder`` now."""
    now = snapshot(folder)
    return sorted(name for name, data in before.items() if now.get(name, b"\0missing") != data)


def ipython_cell(shell: Any, source: str) -> str:
    """Run a cell in a real IPython shell; it must succeed; return what it printed."""
    from IPython.utils.capture import capture_output

    with capture_output() as out:
        result = shell.run_cell(source)
    assert result.error_in_exec is None and result.error_before_exec is None, result
    return shown(result, out)


def shown(result: Any, out: Any) -> str:
    """What a cell showed: the text of the object it returned (a magic's report), else what it printed and displayed."""
    if result.result is not None:
        bundle = getattr(result.result, "_repr_mimebundle_", lambda: {"text/plain": repr(result.result)})()
        return str((bundle[0] if isinstance(bundle, tuple) else bundle)["text/plain"]).strip()
    displayed = [o.data.get("text/plain", "") for o in out.outputs]
    return "\n".join(part.strip() for part in [out.stdout, *displayed] if part.strip())


def ipython_shell(cache: Path) -> Any:
    """The process's IPython shell with dagnb freshly loaded over ``cache`` (as `%load_ext dagnb` in a notebook)."""
    from IPython.testing import globalipapp

    from dagnb import session
    from dagnb.notebook import magics

    globalipapp.start_ipython()
    shell = globalipapp.get_ipython()
    magics.unload(shell)
    shell.extension_manager.loaded.discard("dagnb")
    session.set_current(None)
    shell.reset(new_session=False)
    os.environ["DAGNB_CACHE_DIR"] = str(cache)
    ipython_cell(shell, "%load_ext dagnb")
    return shell


def unload_ipython(shell: Any) -> None:
    from dagnb import session
    from dagnb.notebook import magics

    session.current().close()
    magics.unload(shell)
    shell.extension_manager.loaded.discard("dagnb")
    session.set_current(None)
