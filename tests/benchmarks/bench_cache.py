"""Cache hits on a 10 MB numpy input: ``joblib.Memory`` vs a dagnb task.

``joblib.Memory(location).cache(f)(data)`` is the usual way to memoize a
notebook computation on disk. The same function as a dagnb task reading
``data`` from the namespace (an external input, hashed by value) is timed
twice: as a disk hit from a *new* Graph over the same cache directory (what
a kernel restart costs) and as an in-memory hit in the same Graph. Every
timed call includes hashing the input and, for disk hits, loading the 10 MB
result; construction of the Memory or Graph object is included on both
sides of the disk comparison, since a restarted kernel pays it too.
"""

from __future__ import annotations

import tempfile
from typing import Any

import joblib
import numpy as np
from _common import Row, Sizes, best_of, best_of_call, ms, ratio

import dagnb

TASK_SOURCE = "def doubled(data):\n    return data * 2.0\n"


def doubled(data: np.ndarray) -> np.ndarray:
    return data * 2.0


def _task_function() -> Any:
    namespace: dict[str, Any] = {}
    exec(TASK_SOURCE, namespace)  # noqa: S102 - the task source is ours
    return namespace["doubled"]


def _dagnb_graph(directory: str, data: np.ndarray) -> dagnb.Graph:
    graph = dagnb.Graph(cache_dir=directory, namespace={"data": data})
    graph.task(_task_function())
    return graph


def _dagnb_hit(graph: dagnb.Graph) -> np.ndarray:
    report = graph.run()
    if report.cached != ["doubled"]:
        raise RuntimeError(f"expected a cache hit, got: {report.summary()}")
    return graph["doubled"]


def time_joblib(directory: str, data: np.ndarray, repeat: int) -> float:
    joblib.Memory(directory, verbose=0).cache(doubled)(data)  # the miss that fills the cache

    def hit(_: None) -> np.ndarray:
        return joblib.Memory(directory, verbose=0).cache(doubled)(data)

    return best_of(hit, lambda: None, repeat)


def time_dagnb(directory: str, data: np.ndarray, repeat: int) -> tuple[float, float]:
    """(disk hit in a new Graph incl. its construction, in-memory hit)."""
    warm = _dagnb_graph(directory, data)
    warm.run()  # the miss that fills the cache

    def restart(_: None) -> np.ndarray:
        return _dagnb_hit(_dagnb_graph(directory, data))

    disk = best_of(restart, lambda: None, repeat)
    memory = best_of_call(lambda: _dagnb_hit(warm), repeat)
    return disk, memory


def rows(sizes: Sizes) -> list[Row]:
    data = np.random.default_rng(2).random(sizes.memory_input_bytes // 8)
    with tempfile.TemporaryDirectory(prefix="bench-joblib-") as jdir, \
            tempfile.TemporaryDirectory(prefix="bench-dagnb-") as ddir:
        joblib_hit = time_joblib(jdir, data, sizes.repeat)
        disk, memory = time_dagnb(ddir, data, sizes.repeat)
    size = f"{data.nbytes / 1e6:.0f} MB"
    peer = f"joblib.Memory hit: {ms(joblib_hit)}"
    return [
        Row(f"cached call on a {size} array: dagnb disk hit in a new Graph vs joblib.Memory",
            ms(disk), peer, ratio(joblib_hit, disk), "—", None),
        Row(f"cached call on a {size} array: dagnb in-memory hit vs joblib.Memory",
            ms(memory), peer, ratio(joblib_hit, memory), "—", None),
    ]
