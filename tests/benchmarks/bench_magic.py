"""Overhead of an up-to-date ``%%task`` cell in a real IPython shell.

Re-running a notebook cell whose task is cached should feel free. The cost
dagnb adds is the time of ``ip.run_cell`` on a ``%%task`` cell that is a
cache hit minus the time of a plain cell holding the same ``def`` (which
pays IPython's own cell machinery: history, transforms, compile, exec).
Cell outputs go to a discarded buffer so printing does not dominate.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from typing import Any

from _common import Row, Sizes, best_of_call, ms

import dagnb

GOAL_MS = 5.0
DEF = "def {name}(x=1, y=2.5):\n    return [x, y, x + y]\n"
TASK_CELL = "%%task\n" + DEF.format(name="small")
PLAIN_CELL = DEF.format(name="small_plain")  # another name, so the task's binding stays intact


def _shell(cache_dir: str) -> Any:
    os.environ["DAGNB_CACHE_DIR"] = cache_dir
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython()
    _run(ip, "%load_ext dagnb")
    return ip


def _run(ip: Any, cell: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        result = ip.run_cell(cell)
    if not result.success:
        raise RuntimeError(f"cell failed: {cell!r}: {result.error_before_exec or result.error_in_exec!r}")


def _expect_cache_hit() -> None:
    report = dagnb.current().last_run
    if report is None or report.cached != ["small"]:
        raise RuntimeError(f"the %%task cell was not a cache hit: {report}")


def rows(sizes: Sizes) -> list[Row]:
    repeat = 10 if sizes.quick else 30
    with tempfile.TemporaryDirectory(prefix="dagnb-bench-ipython-") as cache_dir:
        ip = _shell(cache_dir)
        _run(ip, TASK_CELL)  # first run: executes the task
        _run(ip, TASK_CELL)
        _expect_cache_hit()
        task = best_of_call(lambda: _run(ip, TASK_CELL), repeat)
        _expect_cache_hit()
        plain = best_of_call(lambda: _run(ip, PLAIN_CELL), repeat)
        dagnb.current().store.close()
    overhead = task - plain
    return [
        Row("`%%task` cell, cache hit, in IPython: dagnb overhead (task cell − plain cell)",
            f"{ms(overhead)} (task cell {ms(task)})", f"plain `def` cell: {ms(plain)}", None,
            f"< {GOAL_MS:.0f} ms overhead", overhead * 1e3 < GOAL_MS),
    ]
