"""Scheduler overhead: planning and running many no-op tasks, cold and cached.

With no-op task bodies, what is left is dagnb's own bookkeeping per task
(resolving parameters, code fingerprints, keys, cache lookups, the ready
queue). It is compared with dask's synchronous scheduler on the equivalent
dict graph, the leanest widely used Python DAG executor, and with dagron
when it can be installed.

Graphs are built from exec'd source so that every task has a distinct name
and distinct parameters. Each timed repetition gets fresh code objects
(dagnb memoizes per code object), so a "first run" and a "restart" are
really cold, as in a new kernel. Defining
tasks one by one with ``graph.task`` is timed in its own row; the other rows
build their graph outside the timed part (``Graph.add`` per task, as cells
would), so the definition cost stays out of their numbers.
"""

from __future__ import annotations

import itertools
import random
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from _common import Row, Sizes, best_of, best_of_call, ms, ratio, us_per
from dask.local import get_sync

import dagnb
from dagnb.graph import spec_from_function

Edges = list[tuple[int, ...]]

_BATCHES = itertools.count()

GOAL_US_PER_TASK = 30.0
GOAL_CACHED_MS_PER_1000 = 30.0


# ------------------------------------------------------------------ graph shapes


def random_edges(n: int, seed: int = 0) -> Edges:
    """Task i reads up to 2 distinct earlier tasks; no two tasks read the same pair."""
    rng, used, edges = random.Random(seed), set(), []
    for i in range(n):
        if i < 2:
            edges.append(tuple(range(i)))
            continue
        pair = tuple(sorted(rng.sample(range(i), 2)))
        while pair in used:
            pair = tuple(sorted(rng.sample(range(i), 2)))
        used.add(pair)
        edges.append(pair)
    return edges


def chain_edges(n: int) -> Edges:
    """Task i reads tasks i-1 and i//2: a deep graph (every task has O(i) ancestors)."""
    return [tuple(sorted({i - 1, i // 2})) if i > 1 else tuple(range(i)) for i in range(n)]


def task_source(i: int, ups: tuple[int, ...]) -> str:
    params = ", ".join(f"t{j}" for j in ups)
    return f"def t{i}({params}):\n    return None\n"


def make_functions(edges: Edges) -> list[Callable[..., Any]]:
    """Fresh function objects for every task, with code objects unequal to any earlier ones.

    Code objects compare by content, so dagnb's per-code-object memos would
    hit across repetitions; shifting the first line number makes each batch
    new to them without changing any key (line numbers are not hashed).
    """
    namespace: dict[str, Any] = {}
    blank_lines = "\n" * next(_BATCHES)
    exec(blank_lines + "".join(task_source(i, ups) for i, ups in enumerate(edges)), namespace)  # noqa: S102
    return [namespace[f"t{i}"] for i in range(len(edges))]


def make_graph(edges: Edges, cache_dir: str | None = None) -> dagnb.Graph:
    """A graph holding every task, each defined through ``Graph.add`` as a notebook cell would."""
    graph = dagnb.Graph(cache_dir=cache_dir)
    for fn in make_functions(edges):
        graph.add(spec_from_function(fn))
    return graph


def dask_graph(edges: Edges) -> dict[str, tuple[Any, ...]]:
    return {f"t{i}": (_noop, *(f"t{j}" for j in ups)) for i, ups in enumerate(edges)}


def _noop(*args: Any) -> None:
    return None


# --------------------------------------------------------------------- checks


def _run_expecting(graph: dagnb.Graph, status: str, count: int) -> dagnb.RunReport:
    report = graph.run()
    got = len(report.executed if status == "executed" else report.cached)
    if got != count:
        raise RuntimeError(f"expected {count} tasks {status}, got {got}: {report.summary()}")
    return report


# ---------------------------------------------------------------- measurements


def time_define(edges: Edges) -> float:
    graph, functions = dagnb.Graph(), make_functions(edges)

    def define(_: None) -> None:
        for fn in functions:
            graph.task(fn)

    return best_of(define, lambda: None, 1)


def time_first_run(edges: Edges, repeat: int) -> float:
    n = len(edges)
    return best_of(lambda g: _run_expecting(g, "executed", n), lambda: make_graph(edges), repeat)


def time_plan(edges: Edges, repeat: int) -> float:
    return best_of(lambda g: g.plan(), lambda: make_graph(edges), repeat)


def time_cached_run(edges: Edges, repeat: int) -> float:
    n = len(edges)

    def warmed() -> dagnb.Graph:
        graph = make_graph(edges)
        _run_expecting(graph, "executed", n)
        return graph

    return best_of(lambda g: _run_expecting(g, "cached", n), warmed, repeat)


def time_disk_runs(edges: Edges, repeat: int) -> tuple[float, float]:
    """(first run into an empty disk cache, run of a new Graph over that cache)."""
    n = len(edges)
    with tempfile.TemporaryDirectory(prefix="dagnb-bench-") as directory:
        fill = best_of(lambda g: _run_expecting(g, "executed", n), lambda: make_graph(edges, directory), 1)
        restart = best_of(lambda g: _run_expecting(g, "cached", n), lambda: make_graph(edges, directory), repeat)
    return fill, restart


def time_dask(edges: Edges, repeat: int) -> float:
    dsk = dask_graph(edges)
    keys = list(dsk)
    return best_of_call(lambda: get_sync(dsk, keys), repeat)


def dagron_row(n: int) -> Row:
    try:
        import dagron  # noqa: F401
    except ImportError:
        here = f"{sys.version_info[0]}.{sys.version_info[1]}"
        why = f"not installable: the dagron releases on PyPI (0.1.0, 0.1.1) require Python >= 3.12; this is {here}"
        return Row(f"{n:,} no-op tasks, first run vs dagron", "—", why, None, "—", None)
    return Row(f"{n:,} no-op tasks, first run vs dagron", "—", "dagron imports, but no adapter is written", None, "—", None)


# ------------------------------------------------------------------------ rows


def rows(sizes: Sizes) -> list[Row]:
    n = sizes.tasks
    edges = random_edges(n)
    first, dask_time = time_first_run(edges, sizes.repeat), time_dask(edges, sizes.repeat)
    plan, define = time_plan(edges, sizes.repeat), time_define(edges)
    cached = time_cached_run(edges, sizes.repeat)
    fill, restart = time_disk_runs(edges, sizes.slow_repeat)
    chain = chain_edges(n)
    chain_first, chain_dask = time_first_run(chain, sizes.slow_repeat), time_dask(chain, sizes.repeat)

    per_task = first * 1e6 / n
    vs_dask = ratio(dask_time, first)
    cached_goal_ms = GOAL_CACHED_MS_PER_1000 * n / 1000
    return [
        Row(f"{n:,} no-op tasks, plan + run, memory store, first run vs dask get_sync",
            f"{us_per(first, n)} ({ms(first)})", f"{us_per(dask_time, n)} ({ms(dask_time)})", vs_dask,
            f"<= {GOAL_US_PER_TASK:.0f} µs/task and faster than dask",
            per_task <= GOAL_US_PER_TASK and vs_dask > 1),
        dagron_row(n),
        Row(f"{n:,} no-op tasks, `graph.plan()` dry run (info)", us_per(plan, n), "—", None, "—", None),
        Row(f"defining {n:,} tasks with `graph.task` (info)", f"{us_per(define, n)} ({ms(define)})", "—", None, "—", None),
        Row(f"{n:,} tasks fully cached: second `graph.run()`, same process",
            f"{ms(cached)} ({us_per(cached, n)})", f"dask recomputes: {ms(dask_time)}", ratio(dask_time, cached),
            f"<= {cached_goal_ms:.0f} ms total", cached * 1e3 <= cached_goal_ms),
        Row(f"{n:,} tasks, first run into an empty disk cache (info; the identical None outputs dedupe to one blob)", f"{ms(fill)} ({us_per(fill, n)})",
            "—", None, "—", None),
        Row(f"{n:,} tasks, restart: new Graph over the same disk cache, all hits (no goal)",
            f"{ms(restart)} ({us_per(restart, n)})", f"dask recomputes: {ms(dask_time)}", ratio(dask_time, restart),
            "— (none given)", None),
        Row(f"{n:,} no-op tasks, first run, deep DAG (t_i reads t_i-1, t_i//2) vs dask (info)",
            f"{us_per(chain_first, n)} ({ms(chain_first)})", f"{us_per(chain_dask, n)} ({ms(chain_dask)})",
            ratio(chain_dask, chain_first), "—", None),
    ]
