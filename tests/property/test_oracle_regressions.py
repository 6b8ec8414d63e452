"""Deterministic reproducers for what the oracle in ``test_oracle.py`` found.

* The code digest of a function must not depend on what else the process
  compiled before: otherwise a restarted kernel computes other keys than
  the kernel that filled the cache, and recomputes.
* On the threads backend, what a task prints must be recorded with that
  task only, and ``sys.stdout`` must be restored after the run.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path

import dagnb

SCRIPT = textwrap.dedent(
    """
    import linecache, sys
    import dagnb

    def define(source, filename):
        # as IPython does for a cell: the source is known to linecache
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {"__name__": "__main__"}
        exec(compile(source, filename, "exec"), namespace)
        return namespace["f"]

    graph = dagnb.Graph(cache_dir=sys.argv[1])
    for i, default in enumerate(sys.argv[2:]):
        graph.task(define(f"def f(c={default}):\\n    return c * 10\\n", f"<cell-{i}>"))
        print(" ".join(graph.run().executed) or "-")
    """
)


def _session(tmp_path: Path, *defaults: str) -> list[str]:
    """One Python process: define ``f(c=D)`` for each default in turn, run after each."""
    script = tmp_path / "session.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache"), *defaults],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return done.stdout.split()


def test_restart_after_editing_a_default_is_a_cache_hit(tmp_path: Path) -> None:
    """Edit ``c=1`` to ``c=2``, run; a new process defining ``c=2`` must execute nothing."""
    assert _session(tmp_path, "1", "2") == ["f", "f"]
    assert _session(tmp_path, "2") == ["-"], "the restarted process computed another key for the same code"


def test_restart_after_two_edits_and_an_undo_is_a_cache_hit(tmp_path: Path) -> None:
    assert _session(tmp_path, "1", "2", "1") == ["f", "f", "-"]
    assert _session(tmp_path, "2") == ["-"]
    assert _session(tmp_path, "1") == ["-"]


# ---------------------------------------------------------------- namespace binding


def test_an_up_to_date_task_rebinds_its_value_over_a_redefined_function(tmp_path: Path) -> None:
    namespace: dict[str, object] = {"__name__": "__main__"}
    graph = dagnb.Graph(cache_dir=str(tmp_path / "cache"), namespace=namespace)
    cell = "def raw():\n    return 41 + 1\n"
    for _ in range(2):  # the same cell, executed twice
        exec(cell, namespace)  # noqa: S102 - what running the cell does
        graph.task(namespace["raw"])
        graph.run()
    assert graph.last_run is not None and graph.last_run.cached == ["raw"]
    assert namespace["raw"] == 42, f"`raw` is still bound to {namespace['raw']!r}"


# ---------------------------------------------------------------- threads backend and printing

# A module, not a plain global: dagnb hashes globals by value (a Barrier has
# no fingerprint) but modules by version.
_shared = types.ModuleType("dagnb_test_rendezvous")


def _left(log: str = "") -> int:
    _shared.barrier.wait()  # both tasks are inside their output capture now
    print("from left")
    _shared.barrier.wait()  # both have printed
    return 1


def _right(log: str = "") -> int:
    _shared.barrier.wait()
    print("from right")
    _shared.barrier.wait()
    return 2


def test_threads_backend_keeps_each_tasks_prints_apart(tmp_path: Path) -> None:
    _shared.barrier = threading.Barrier(2, timeout=20)
    graph = dagnb.Graph(cache_dir=str(tmp_path / "cache"))
    graph.task(_left)
    graph.task(_right)
    stdout = sys.stdout
    report = graph.run(backend="threads", jobs=2)
    leaked = sys.stdout
    sys.stdout = stdout
    assert sorted(report.executed) == ["_left", "_right"]
    printed = {name: "".join(o.get("text", "") for o in graph.results[name].captured) for name in ("_left", "_right")}
    problems = []
    if printed != {"_left": "from left\n", "_right": "from right\n"}:
        problems.append(f"prints recorded with the wrong task: {printed}")
    if leaked is not stdout:
        problems.append(f"sys.stdout left redirected to {leaked!r}")
    assert not problems, "; ".join(problems)
