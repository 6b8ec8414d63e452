"""A cell's run bookkeeping (hit counts, history row) is written off the cell, and never lost or misread.

In a real IPython shell with dagnb loaded: each ``%%task`` cell hands its
run's bookkeeping to the cache's settler thread; the history, the hit counts
and the cache's own commands read it all the same, cell after cell, and
after a restart.
"""

from __future__ import annotations

import threading
from typing import Any

from dagnb import session
from dagnb.cache.store import DiskStore
from dagnb.notebook import magics
from tests.kernel.test_magics import executions, ip, ok, task  # noqa: F401 - `ip` is a fixture

__all__ = ["ip"]


def _settler_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "dagnb-cache-settler"}


def _chain(ip: Any, n: int) -> None:
    ok(ip, task("t1", body="return 1"))
    for i in range(2, n + 1):
        ok(ip, task(f"t{i}", f"t{i - 1}", f"return t{i - 1} + 1"))


def test_cells_hand_their_bookkeeping_to_the_settler_and_every_run_is_read_back(ip: Any) -> None:
    before = _settler_threads()
    _chain(ip, 20)
    assert _settler_threads() - before, "a settler thread wrote the cells' runs"
    graph = session.current()
    assert [[t.task for t in r.tasks] for r in graph.store.runs(None)] == [[f"t{i}"] for i in range(20, 0, -1)]
    assert graph.last_history_id == graph.store.runs(1)[0].id
    magics.unload(ip)  # a new session over the same cache: Restart & Run All, every cell a disk hit
    ip.extension_manager.loaded.discard("dagnb")
    session.set_current(None)
    graph.close()  # what the old kernel's exit does
    for i in range(1, 21):
        del ip.user_ns[f"t{i}"]
    ok(ip, "%load_ext dagnb")
    _chain(ip, 20)
    assert executions(ip) == [f"t{i}" for i in range(1, 21)], "nothing ran twice"
    store = session.current().store
    assert {task: count for task, (count, _) in store.hit_totals().items()} == {f"t{i}": 1 for i in range(1, 21)}
    assert [(r.tasks[0].task, r.tasks[0].status) for r in store.runs(20)] == [
        (f"t{i}", "cached") for i in range(20, 0, -1)
    ]
    assert "run 40 " in ok(ip, "%dag history")
    assert DiskStore(store.location).info().runs == 40, "another store reads the 40 runs"
