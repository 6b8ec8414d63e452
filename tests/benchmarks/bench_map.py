"""A 10,000-element map task, fully cached, next to the same loop over joblib.Memory.

dagnb: a new Graph (a restarted kernel) over a disk cache that a first run
filled; the map task's whole result is one cache hit. Peer: a Python loop
calling a ``joblib.Memory``-cached function once per element, all hits.
"""

from __future__ import annotations

import tempfile
from typing import Any

from _common import Row, Sizes, best_of, ms, ratio

import dagnb
from dagnb.graph import spec_from_function

SOURCE = "def lengths(names):\n    return len(names)\n"


def _graph(directory: str, names: list[str]) -> dagnb.Graph:
    graph = dagnb.Graph(cache_dir=directory)
    graph.namespace["names"] = names
    exec(SOURCE, graph.namespace)
    graph.add(spec_from_function(graph.namespace["lengths"], source=SOURCE, map="names"))
    return graph


def time_dagnb(directory: str, names: list[str], repeat: int) -> tuple[float, float]:
    first = _graph(directory, names)
    import time

    started = time.perf_counter()
    first.run()
    cold = time.perf_counter() - started
    first.close()

    def rerun(graph: dagnb.Graph) -> Any:
        graph.run()
        graph.close()

    return cold, best_of(rerun, lambda: _graph(directory, names), repeat)


def time_joblib(directory: str, names: list[str], repeat: int) -> float:
    import joblib

    memory = joblib.Memory(directory, verbose=0)
    cached = memory.cache(len)
    for name in names:
        cached(name)
    return best_of(lambda _: [cached(name) for name in names], lambda: None, repeat)


def rows(sizes: Sizes) -> list[Row]:
    n = 10_000 if not sizes.quick else 500
    names = [f"item-{i:05d}" for i in range(n)]
    with tempfile.TemporaryDirectory() as ddir, tempfile.TemporaryDirectory() as jdir:
        cold, cached = time_dagnb(ddir, names, sizes.repeat)
        joblib_loop = time_joblib(jdir, names, max(1, sizes.repeat // 2))
    return [
        Row(f"{n:,}-element map, fully cached, restarted kernel (new Graph) vs a joblib.Memory loop",
            ms(cached), f"joblib.Memory loop: {ms(joblib_loop)}", ratio(joblib_loop, cached),
            "< 1 s of dagnb overhead" if not sizes.quick else "—", cached < 1.0 if not sizes.quick else None),
        Row(f"{n:,}-element map, first run into an empty disk cache (info: one cache entry per element)",
            ms(cold), "—", None, "—", None),
    ]
