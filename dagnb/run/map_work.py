"""A map task's work in one run: its elements looked up in the cache, the missing ones split into slices.

Called by :meth:`dagnb.run.taskrunner.TaskRunner.prepare` only; what runs
the elements (in this process or a worker) is :mod:`dagnb.run.mapping`,
which never imports the cache, so a worker process does not either.

Invariants:

* An element's key is made of the task's key parts and its inputs other than
  the mapped one, with the element's own fingerprint (see
  :func:`dagnb.run.mapping.plan_items`): the same element under the same code
  and inputs is a hit, whichever collection it came in.
* An element whose cached value cannot be read (a :class:`CacheMiss`) is
  computed again, never given up on.
* Slices are contiguous and as even as they can be, at most one per worker,
  so the elements come back in order.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagnb.cache.base import CacheMiss
from dagnb.run.mapping import ItemProgress, MapPlan, call_items, plan_items
from dagnb.run.work import Outcome, Work

if TYPE_CHECKING:
    from dagnb.cache.base import Store
    from dagnb.graph import TaskSpec
    from dagnb.plan import Decision

__all__ = ["map_slices", "plan_map", "slice_sizes"]


def plan_map(store: Store, spec: TaskSpec, decision: Decision, collection: Any) -> MapPlan:
    """The elements of ``collection``, each with its key and, where ``store`` has it, its cached value."""
    assert decision.key is not None and spec.map is not None
    base = "\0".join(
        [
            *(f"{k}={v}" for k, v in sorted(decision.key.parts.items())),
            *(f"{p}={f}" for p, f in sorted(decision.key.inputs.items()) if p != spec.map),
        ]
    )

    def lookup(key: str) -> tuple[bool, Any]:
        entry = store.entry(key)
        if entry is None or not entry.stored:
            return False, None
        try:
            return True, store.load(entry)
        except CacheMiss:
            return False, None

    return plan_items(collection, base, lookup)


def slice_sizes(count: int, jobs: int) -> list[int]:
    """How many of ``count`` elements each of ``jobs`` workers computes: contiguous, even slices."""
    if not count:
        return [0]
    size = -(-count // min(jobs, count))
    return [min(size, count - start) for start in range(0, count, size)]


def map_slices(
    spec: TaskSpec,
    kwargs: dict[str, Any],
    missing: list[Any],
    sizes: list[int],
    progress: ItemProgress,
    run: Callable[[Any], Outcome],
) -> list[Work]:
    """One work per worker, each a contiguous slice of the missing elements; ``run(func)`` runs one here."""
    assert spec.map is not None
    slices, start = [], 0
    for index, size in enumerate(sizes):
        body = functools.partial(call_items, spec.func, spec.map, missing[start : start + size], progress, index)
        slices.append(Work(spec.name, body, kwargs, functools.partial(run, body)))
        start += size
    return slices
