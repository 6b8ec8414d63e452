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

Usage: ``python tests/benchmarks/run.py [--quick] [--output FILE]``. The
Markdown table is printed and written to ``results.md`` beside this file by
default. ``--quick`` shrinks sizes and repetitions (for the smoke test);
its numbers are not comparable with the goals' sizes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
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
import bench_magic
import bench_map
import bench_parallel
import bench_trust
import bench_widgets
from _common import Row, Sizes, render_table

SUITES: list[tuple[str, Callable[[Sizes], list[Row]]]] = [
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
    ("IPython %%task", bench_magic.rows),  # last: it starts a global IPython shell
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions (~30 s)")
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


def collect(sizes: Sizes) -> list[Row]:
    rows: list[Row] = []
    for name, suite in SUITES:
        started = time.perf_counter()
        rows.extend(suite(sizes))
        print(f"[{name}: {time.perf_counter() - started:.1f} s]", file=sys.stderr, flush=True)
    return rows


def report(rows: list[Row], sizes: Sizes, elapsed: float) -> str:
    mode = "quick (reduced sizes; not comparable with the goals)" if sizes.quick else "full"
    met = [r for r in rows if r.met is not None]
    passed = sum(bool(r.met) for r in met)
    return "\n".join(
        [
            "# dagnb benchmarks",
            "",
            (
                f"Mode: {mode}. Best of {sizes.repeat} runs ({sizes.slow_repeat} for slow peers). "
                f"Total time {elapsed:.0f} s."
            ),
            f"Environment: {environment()}.",
            "",
            render_table(rows),
            "",
            f"Goals met: {passed} of {len(met)}.",
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = Sizes.choose(args.quick)
    started = time.perf_counter()
    rows = collect(sizes)
    text = report(rows, sizes, time.perf_counter() - started)
    print(text)
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
