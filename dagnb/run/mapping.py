"""Map tasks: one function call per element of a collection, each cached on its own.

``%%task --map files`` calls the task's function once per element of its
input ``files`` (a list, tuple, dict or any iterable, such as a pandas
index) and returns the results in a container of the same kind: a list,
a tuple, or a dict with the same keys (other iterables give a list). Each
element's result is cached under its own *item key*: the task's code key
without ``files``, plus that element's fingerprint. So when one element of
1,000 changes, one call runs; the rest load from the cache.

Responsibilities:
    * split a collection into elements and fingerprint each one;
    * find which elements the cache already has (in the kernel, before the run);
    * the call a worker makes for the missing elements, and reassembly;
    * counting computed elements while the task runs, for live progress.

The code's names say "item" (``item_key``, ``call_items``, the ``items``
count of events and reports) for what users read as an *element*: one value
of a ``--map`` input (see the glossary). The names stay, since events and
reports are public.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import xxhash

from dagnb.fingerprints.values import fingerprint

__all__ = ["ItemProgress", "MapPlan", "assemble", "await_items", "call_items", "item_key", "plan_items"]


def item_key(task_key_parts: str, item_fingerprint: str) -> str:
    """The cache key of one element's result."""
    h = xxhash.xxh3_128(b"map-item")
    h.update(task_key_parts.encode())
    h.update(b"\0" + item_fingerprint.encode())
    return h.hexdigest()


@dataclass
class MapPlan:
    """The items of one map run: their keys, what the cache has, what must be computed."""

    kind: str  # "list", "tuple" or "dict"
    labels: list[Any]  # dict keys (or positions)
    items: list[Any] = field(repr=False)
    keys: list[str]
    fingerprints: list[str]  # each item's fingerprint
    cached: dict[int, Any] = field(default_factory=dict, repr=False)  # position -> cached result
    same: dict[int, int] = field(default_factory=dict)  # a repeated element -> its first position

    @property
    def missing(self) -> list[int]:
        """Positions whose result must be computed (each distinct element once)."""
        return [i for i in range(len(self.items)) if i not in self.cached and i not in self.same]


def plan_items(collection: Any, base: str, lookup: Callable[[str], tuple[bool, Any]]) -> MapPlan:
    """Fingerprint each element; ``lookup(key)`` says whether the cache has its result, and gives it."""
    if isinstance(collection, dict):
        kind, labels, items = "dict", list(collection), list(collection.values())
    else:
        kind = "tuple" if isinstance(collection, tuple) else "list"
        items = list(collection if isinstance(collection, Iterable) else [collection])
        labels = list(range(len(items)))
    fps = [fingerprint(item) for item in items]
    keys = [item_key(base, fp) for fp in fps]
    plan = MapPlan(kind, labels, items, keys, fps)
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in first:  # an element that appears twice is looked up and computed once
            plan.same[i] = first[key]
            continue
        first[key] = i
        found, value = lookup(key)
        if found:
            plan.cached[i] = value
    return plan


class ItemProgress:
    """How many of a map task's elements are computed so far, reported at most every ``interval`` s.

    Elements are split in slices (one per worker). In this process each
    element counts as it finishes; a slice that ran elsewhere counts when its
    result arrives (:meth:`settle`). Pickled to another process, it becomes
    ``None``: counting there would be seen by no one.
    """

    def __init__(self, sizes: list[int], report: Callable[[int, int], None], interval: float = 0.1) -> None:
        self.sizes, self.total, self.report, self.interval = sizes, sum(sizes), report, interval
        self._counts = [0] * len(sizes)
        self._lock = threading.Lock()
        self._last = float("-inf")

    @property
    def done(self) -> int:
        return sum(self._counts)

    def add(self, slice_: int) -> None:
        """One more element of slice ``slice_`` is computed."""
        self._update(slice_, self._counts[slice_] + 1)

    def settle(self, slice_: int) -> None:
        """All of slice ``slice_`` is computed (its result arrived)."""
        self._update(slice_, self.sizes[slice_])

    def _update(self, slice_: int, count: int) -> None:
        with self._lock:  # reported under the lock, so counts from several threads arrive in order
            self._counts[slice_] = count
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self.report(self.done, self.total)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _not_counted, ()


def _not_counted() -> None:
    return None


def call_items(
    func: Callable[..., Any],
    param: str,
    items: list[Any],
    progress: ItemProgress | None = None,
    slice_: int = 0,
    /,
    **kwargs: Any,
) -> list[Any]:
    """What a worker runs for one slice: ``func`` once per element (the other inputs whole), counting each one.

    Positional-only, so that a task may have parameters named like these.
    """
    results = []
    for item in items:
        results.append(func(**{**kwargs, param: item}))
        if progress is not None:
            progress.add(slice_)
    return results


async def await_items(
    func: Callable[..., Any],
    param: str,
    items: list[Any],
    progress: ItemProgress | None = None,
    slice_: int = 0,
    /,
    **kwargs: Any,
) -> list[Any]:
    """:func:`call_items` for an ``async def`` task: every element awaited at once, results in order."""
    import asyncio

    async def one(item: Any) -> Any:
        result = await func(**{**kwargs, param: item})
        if progress is not None:
            progress.add(slice_)
        return result

    return list(await asyncio.gather(*(one(item) for item in items)))


def assemble(plan: MapPlan, computed: dict[int, Any]) -> Any:
    """The results in the input's container kind, element order (and dict keys) kept."""

    def value(i: int) -> Any:
        i = plan.same.get(i, i)
        return plan.cached[i] if i in plan.cached else computed[i]

    values = [value(i) for i in range(len(plan.items))]
    if plan.kind == "dict":
        return dict(zip(plan.labels, values))
    return tuple(values) if plan.kind == "tuple" else values
