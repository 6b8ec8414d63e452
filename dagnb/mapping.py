"""Map tasks: one function call per element of a collection, each cached on its own.

``%%task --map files`` calls the task's function once per element of its
input ``files`` (a list, tuple, dict or any iterable, such as a pandas
index) and returns the results in a container of the same kind: a list,
a tuple, or a dict with the same keys (other iterables give a list). Each
element's result is cached under its own *item key*: the task's code key
without ``files``, plus that element's fingerprint. So when one element of
1,000 changes, one call runs; the rest load from the cache.

Responsibilities:
    * split a collection into items and fingerprint each one;
    * find which items the cache already has (in the kernel, before the run);
    * the call a worker makes for the missing items, and reassembly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import xxhash

from .hashing import fingerprint

__all__ = ["MapPlan", "assemble", "call_items", "item_key", "plan_items"]


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
    outputs: list[str]  # each item's fingerprint
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


def call_items(func: Callable[..., Any], param: str, items: list[Any], **kwargs: Any) -> list[Any]:
    """What a worker runs: ``func`` once per element (the other inputs whole)."""
    return [func(**{**kwargs, param: item}) for item in items]


def assemble(plan: MapPlan, computed: dict[int, Any]) -> Any:
    """The results in the input's container kind, element order (and dict keys) kept."""
    def value(i: int) -> Any:
        i = plan.same.get(i, i)
        return plan.cached[i] if i in plan.cached else computed[i]

    values = [value(i) for i in range(len(plan.items))]
    if plan.kind == "dict":
        return dict(zip(plan.labels, values))
    return tuple(values) if plan.kind == "tuple" else values
