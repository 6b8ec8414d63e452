"""dagnb benchmark suite: dagnb side by side with its peers, in one run.

What it measures and why:

1. ``dagnb.fingerprint`` on a large float64 array vs raw xxh3_128 and
   ``joblib.hash``: hashing bounds the cost of every cache check on data.
2. The same on a mixed DataFrame (floats, ints, short strings, datetimes,
   categories): the common notebook value, where strings are the hard part.
3. Planning + running 1,000 no-op tasks vs dask's synchronous scheduler
   (and dagron when installable): dagnb's per-task bookkeeping.
4. The same graph fully cached, in the same process and after a "restart"
   (a new Graph over the same disk cache): what *Run All* costs when
   nothing changed.
5. A cached call on a 10 MB input vs ``joblib.Memory``.
6. An up-to-date ``%%task`` cell in a real IPython shell vs a plain cell.
7. The widget views: rendering each view of 1,000 tasks, and what a live
   ``DagView`` adds to a run (time per task, comm messages and bytes).
8. Checking a task's inputs for in-place changes: a forced rerun of a
   task reading a large array or frame, with the check on and off.
9. Parallel backends: sleeping tasks on 4 jobs and CPU-bound diamonds on
   2 worker processes against inline, the per-task overhead of every
   backend against dask's threaded scheduler and ``distributed``, and a
   level-by-level ``joblib.Parallel`` baseline.
9. Trust: the collision-resistant digest of a shared cache (keyed BLAKE3,
   and BLAKE2b and SHA-256 as measured alternatives) against xxh3_128, and
   (in the joblib.Memory rows) what checking a value's signature adds to a
   load.
10. On the user's path (issue 16): notebooks executed cell by cell in a
    real kernel through the magics with the default disk cache (Restart &
    Run All, cached cells, definitions, first runs, run history, live
    views, the dask backend), container fingerprints against pickle +
    xxh3, and a 256 MiB array through the disk cache against ``np.save``
    / ``np.load``; with scaling curves (N -> time) as tables.

Usage: ``python tests/benchmarks/run.py [--quick | --full] [--only SUITE]
[--output FILE]``. The Markdown tables are printed and written to
``results.md`` beside this file by default. ``--quick`` shrinks sizes and
repetitions (for the smoke test); its numbers are not comparable with the
goals' sizes. ``--full`` adds the largest sizes of the scaling curves
(N = 5,000), which take tens of minutes. ``--only`` runs the named suites
(repeatable; ``--only kernel``). The exit status is 1 when a measurement
failed (a crash or a hang, shown as a failed row), so the smoke test sees it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import bench_cache
import bench_check
import bench_ci
import bench_graph
import bench_hashing
import bench_inplace
import bench_kernel
import bench_kernel_live
import bench_magic
import bench_map
import bench_parallel
import bench_trust
import bench_values
import bench_widgets
from _common import Row, Sizes, Table, render_curve, render_table

SUITES: list[tuple[str, Callable[[Sizes], Sequence[Row | Table]]]] = [
    ("fingerprints", bench_hashing.rows),
    ("in-place checks", bench_inplace.rows),
    ("trust", bench_trust.rows),
    ("task graph", bench_graph.rows),
    ("joblib.Memory", bench_cache.rows),
    ("widget views", bench_widgets.rows),
    ("dagnb check", bench_check.rows),
    ("CI with a persisted cache", bench_ci.rows),
    ("map tasks", bench_map.rows),
    ("parallel backends", bench_parallel.rows),
    ("values on the user's path", bench_values.rows),
    ("kernel: notebooks", bench_kernel.rows),
    ("kernel: views and the dask backend", bench_kernel_live.rows),
    ("IPython %%task", bench_magic.rows),  # last: it starts a global IPython shell
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="small sizes and few repetitions (~1.5 min)")
    sizes.add_argument("--full", action="store_true", help="also N = 5,000 on the user's path (takes long)")
    parser.add_argument("--only", action="append", default=[], metavar="SUITE",
                        help="run only the suites whose name contains SUITE (repeatable)")
    parser.add_argument("--output", type=Path, default=HERE / "results.md", help="where to write the table")
    return parser.parse_args(argv)


def environment() -> str:
    import dask
    import joblib
    import numpy
    import pandas

    import dagnb

    versions = ", ".join(
        f"{m.__name__} {m.__version__}" for m in (dagnb, numpy, pandas, joblib, dask)
    )
    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {versions}"
    )


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def collect(sizes: Sizes, only: list[str]) -> tuple[list[Row | Table], list[str]]:
    """Every chosen suite's rows and tables, and the load average before each suite."""
    found: list[Row | Table] = []
    loads: list[str] = []
    for name, suite in SUITES:
        if only and not any(word in name for word in only):
            continue
        loads.append(f"{name}: {load()}")
        started = time.perf_counter()
        found.extend(suite(sizes))
        print(f"[{name}: {time.perf_counter() - started:.1f} s]", file=sys.stderr, flush=True)
    return found, loads


def report(found: list[Row | Table], loads: list[str], sizes: Sizes, elapsed: float) -> str:
    mode = "quick (reduced sizes; not comparable with the goals)" if sizes.quick else (
        "full, with N = 5,000" if sizes.full else "default (the largest N of the curves is opt-in: `--full`)")
    rows = [r for r in found if isinstance(r, Row)]
    met = [r for r in rows if r.met is not None and not r.failed]
    passed = sum(bool(r.met) for r in met)
    failed = sum(r.failed for r in rows)
    tables = [render_curve(t) for t in found if isinstance(t, Table)]
    return "\n".join(
        [
            "# dagnb benchmarks",
            "",
            (
                f"Mode: {mode}. Python API rows: best of {sizes.repeat} runs ({sizes.slow_repeat} for slow peers); "
                f"rows on the user's path: medians of interleaved runs (counts in the rows). "
                f"Total time {elapsed:.0f} s."
            ),
            f"Environment: {environment()}.",
            f"Load average (1 / 5 / 15 min) before each suite: {'; '.join(loads)}; at the end: {load()}.",
            "",
            render_table(rows),
            "",
            f"Goals met: {passed} of {len(met)}." + (f" Measurements that failed: {failed}." if failed else ""),
            "",
            *(part for table in tables for part in (table, "")),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.choose(args.quick, args.full)
    started = time.perf_counter()
    found, loads = collect(sizes, args.only)
    text = report(found, loads, sizes, time.perf_counter() - started)
    print(text)
    args.output.write_text(text, encoding="utf-8")
    return 1 if any(isinstance(r, Row) and r.failed for r in found) else 0


if __name__ == "__main__":
    sys.exit(main())
