"""Several processes on one cache directory at once: no exception anywhere, every value right afterwards.

Real processes (``workers.py``), started together through a ``go`` file:
eight writers put the same twelve keys with the same values (plus four
keys of their own each), in different orders, three rounds, reading each
value back; two readers load whatever is there meanwhile. Then two
sessions (Graphs) run the same task DAG on one cache at once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import faultlib
import pytest
import workers
from notebook_cells import runs

from dagnb.cache.store import CacheEntry, DiskStore
from dagnb.fingerprints.values import fingerprint

WORKERS = Path(workers.__file__)
WRITERS, READERS, ROUNDS = 8, 2, 3


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(WORKERS), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, f"a worker failed ({process.args[2]}):\n{err}"
    return json.loads(out.strip().splitlines()[-1])


def test_eight_writers_and_two_readers_on_the_same_keys(tmp_path: Path) -> None:
    root, go, stop = tmp_path / "cache", tmp_path / "go", tmp_path / "stop"
    writers = [start("writer", str(root), str(go), str(i), str(ROUNDS)) for i in range(WRITERS)]
    readers = [start("reader", str(root), str(go), str(stop), str(WRITERS)) for _ in range(READERS)]
    go.touch()
    wrote = [finish(p) for p in writers]
    stop.touch()
    read = [finish(p) for p in readers]

    total = {k: sum(c[k] for c in wrote) for k in wrote[0]}
    seen = {k: sum(c[k] for c in read) for k in read[0]}
    assert total["puts"] == WRITERS * ROUNDS * (len(workers.SHARED) + 4)
    assert (total["wrong"], seen["wrong"]) == (0, 0), "a wrong value was read"
    assert (total["misses"], seen["misses"]) == (0, 0), "a value that was committed could not be read"

    store = DiskStore(root)
    keys = workers.all_keys(WRITERS)
    for key in keys:
        entry = store.entry(key)
        assert entry is not None and entry.stored, key
        assert faultlib.same(store.load(entry), faultlib.entry_value(key)), key
    distinct = {fingerprint(faultlib.entry_value(k)) for k in keys}
    info = store.info()
    store.close()
    assert (info.entries, info.blobs) == (len(keys), len(distinct)), "each value is stored once"
    assert faultlib.integrity(root) == "ok"
    assert faultlib.tmp_files(root) == [] and faultlib.orphan_blobs(root) == []
    faultlib.assert_usable(root)
    faultlib.record(
        "test_concurrent (store)",
        f"{WRITERS} writer processes x {ROUNDS} rounds = {total['puts']} puts of {len(keys)} keys "
        f"({len(workers.SHARED)} written by all, same values), each read back; {READERS} readers: "
        f"{seen['loads']} loads in {seen['passes']} passes",
        f"nothing: 0 exceptions, 0 wrong values, 0 misses; afterwards all {len(keys)} entries load and equal "
        f"their values, {len(distinct)} values stored once each, no temporary files",
    )


def test_two_sessions_run_the_same_dag_on_one_cache_at_once(tmp_path: Path) -> None:
    go = tmp_path / "go"
    sessions = [start("graph", str(tmp_path), str(go)) for _ in range(2)]
    go.touch()
    results = [finish(p) for p in sessions]
    assert all(r["ok"] and r["wrong"] == [] for r in results), results
    executions = len(runs(tmp_path / "log.txt"))

    nb = workers.session(str(tmp_path))  # a third session afterwards loads everything
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report, ran = nb.run()  # type: ignore[attr-defined]
    assert ran == [] and report.ok, report.render_text()
    for task, value in workers.expected().items():
        assert faultlib.same(nb.graph[task], value), task  # type: ignore[attr-defined]
    nb.graph.store.close()  # type: ignore[attr-defined]
    root = tmp_path / "cache"
    assert faultlib.integrity(root) == "ok" and faultlib.tmp_files(root) == []
    faultlib.assert_usable(root)
    faultlib.record(
        "test_concurrent (graphs)",
        f"2 sessions (processes) running the same 4-task DAG on one cache at once ({executions} task "
        f"executions between them), then a third session",
        "nothing: both got the right values, the third loaded all 4 and ran none",
    )


@pytest.mark.value_files
def test_two_writers_of_an_equal_value_with_different_pickles_keep_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The interleaving that eight real writers of a set hit within seconds, played in order.

    ``{1, 9}`` built in two insertion orders: equal sets with one fingerprint, whose pickles list the items
    in different orders (1 and 9 share a hash slot), as the same set of strings does in two processes.
    Writer A has written its temporary file; before A moves it into place, writer B (another connection)
    stores the same fingerprint completely. A's move and row are one transaction that sees B's row, so A
    keeps B's file and drops its own: a row never sits beside another writer's file.
    """
    first, second = {1, 9}, {9, 1}
    assert first == second and list(first) != list(second) and fingerprint(first) == fingerprint(second)
    root = tmp_path / "cache"
    a, b = DiskStore(root), DiskStore(root)
    real_write = a._files.write
    state = {"inside": False}

    def write_then_let_b_store(fp: str, dump: Any) -> Any:
        written = real_write(fp, dump)
        if not state["inside"]:
            state["inside"] = True
            b.put(CacheEntry("key-b", "t", fingerprint(second)), second)
        return written

    monkeypatch.setattr(a._files, "write", write_then_let_b_store)
    a.put(CacheEntry("key-a", "t", fingerprint(first)), first)
    monkeypatch.undo()
    assert state["inside"], "B stored the value while A was between its temporary file and its commit"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for store, key in ((a, "key-a"), (b, "key-b")):
            assert store.load(store.entry(key)) == first  # type: ignore[arg-type]
    assert not list(root.rglob(".tmp-*")), "A's unused temporary file was removed"
