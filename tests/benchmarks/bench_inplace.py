"""What checking inputs for in-place changes costs (``Graph.verify_inputs``, on by default).

Before a task runs, each changeable upstream value it reads is fingerprinted
again, and once more after it finishes: two fingerprints per input per task
run, at the speed of ``dagnb.fingerprint`` (memory speed for arrays). Here a
task that reads a large input and does almost nothing with it is forced to
rerun, with the check on and off; the difference is the check's whole cost.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from _common import Row, Sizes, best_of_call, ms
from bench_hashing import make_array, make_frame

import dagnb


def _graph(make: Callable[[], Any], verify: bool) -> dagnb.Graph:
    graph = dagnb.Graph()

    def source() -> Any:
        return make()

    def reader(source: Any) -> int:
        return len(source)

    graph.task(source)
    graph.task(reader)
    graph.verify_inputs = verify
    graph.run()
    return graph


def _row(label: str, make: Callable[[], Any], sizes: Sizes) -> Row:
    times = {}
    for verify in (True, False):
        graph = _graph(make, verify)
        times[verify] = best_of_call(lambda g=graph: g.run(["reader"], force=["reader"]), sizes.repeat)
    extra = times[True] - times[False]
    return Row(f"a task reading {label}, forced to rerun: checking its input for in-place changes on vs off (info)",
               f"{ms(times[True])} (check: {ms(extra)})", f"off: {ms(times[False])}", None, "—", None)


def rows(sizes: Sizes) -> list[Row]:
    array = functools.partial(make_array, sizes.array_bytes)
    frame = functools.partial(make_frame, sizes.frame_rows)
    return [_row(f"a {sizes.array_bytes // 2**20} MiB float64 array", array, sizes),
            _row(f"a {sizes.frame_rows:,}-row mixed DataFrame", frame, sizes)]
