"""Committing a task's outcome: the cache entry, the head, the bound value and the ``--save`` copy.

Called by the per-run :class:`~dagnb.run.taskrunner.TaskRunner` in the
caller's thread only (the executor's invariant), so cache writes and
namespace binding never race.

Invariants:

* A value that cannot be cached (unpicklable, a full disk, a read-only
  cache) is still bound, with a warning; its task reruns after a restart.
* A value that has no fingerprint gets its key as a stand-in
  (``key <key>``): its dependents rerun whenever it does (no early cutoff).
* A value computed while Ctrl-C arrived is bound for the user, and never
  cached or saved.
* Failing to write a ``--save`` copy is a warning, never a failed task.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dagnb.cache.base import CacheEntry, MemoryStore
from dagnb.errors import (
    DagnbCacheWarning,
    DagnbSaveWarning,
    SaveRefused,
    UnfingerprintableWarning,
    UnpicklableOutputWarning,
    warn_at,
)
from dagnb.fingerprints.code import helper_sources
from dagnb.plan import Decision, KeyInfo, Result
from dagnb.run.body import fingerprint_or_none
from dagnb.run.costs import entry_costs, value_nbytes
from dagnb.run.mapping import assemble
from dagnb.run.work import Committed, Outcome

if TYPE_CHECKING:
    from dagnb.graph import TaskSpec
    from dagnb.run.host import Host, Runner

__all__ = ["commit", "copy_stamp", "fingerprint_or_none", "not_stored", "save", "store_value", "warn_about"]

_OWN = frozenset({"python", "code"})  # key parts that name no helper, global or module


def warn_about(spec: TaskSpec | None, message: str, category: type[Warning]) -> None:
    """A warning about a task, shown at the cell that defines it (not at a line of dagnb)."""
    warn_at(getattr(spec, "func", None), message, category)


def copy_stamp(spec: TaskSpec, fingerprint: str) -> tuple[str, int, int] | None:
    """What identifies a ``--save`` copy of the value of ``fingerprint``: the value, the file's size and mtime."""
    try:
        st = os.stat(spec.save.format(name=spec.name))  # type: ignore[union-attr]
    except OSError:
        return None
    return fingerprint, st.st_size, st.st_mtime_ns


def commit(runner: Runner, decision: Decision, outcome: Outcome) -> Committed:
    """Cache and bind what a task produced."""
    graph, task, key = runner.graph, decision.task, decision.key
    if outcome.remote:  # printed in a worker: shown now, in the cell that ran it
        graph.replay(outcome.captured)
    assert key is not None
    spec = graph.tasks.specs[task]
    if outcome.interrupted:
        _keep_interrupted(runner, task, outcome)
        return Committed(outcome)
    if spec.map:
        outcome = _commit_items(runner, task, outcome)
    fingerprint = outcome.fingerprint or _stand_in(graph, task, key.key, outcome.value)
    entry = _entry(spec, key, fingerprint, outcome)
    entry.stored = outcome.fingerprint is not None and store_value(graph, entry, outcome.value)
    try:
        if not entry.stored:
            graph.store.put(entry, None)
        graph.store.set_head(task, key.key)
    except sqlite3.Error as exc:  # the metadata could not be written (a full disk): keep the value in memory
        warn_about(
            spec,
            f"The cache could not record task `{task}` ({exc}); its value is kept in memory only.",
            DagnbCacheWarning,
        )
    graph._bind(task, Result(key.key, fingerprint, outcome.value, outcome.captured))
    if graph.verify_inputs and not outcome.remote:  # a worker process changed only its own copies
        graph._guard.after(task, graph.tasks.upstream(task))
    if spec.save:
        save(graph, spec, outcome.value, fingerprint)
    return Committed(outcome, entry.nbytes)


def _entry(spec: TaskSpec, key: KeyInfo, fingerprint: str, outcome: Outcome) -> CacheEntry:
    """The cache entry of a task's value: its costs under the entry's own (on-disk) names."""
    sources = helper_sources(spec.func, frozenset(spec.params)) if key.parts.keys() - _OWN else {}
    return CacheEntry(
        key.key,
        spec.name,
        fingerprint,
        key.parts,
        key.inputs,
        outcome.captured,
        sources=sources,
        **entry_costs(outcome.costs),
    )


def _keep_interrupted(runner: Runner, task: str, outcome: Outcome) -> None:
    """A value computed while Ctrl-C arrived: bound for the user, never cached or saved, rerun next time."""
    graph, value = runner.graph, outcome.value
    if graph.tasks.specs[task].map:  # the elements computed so far are not cached either
        plan = runner.maps.pop(task)
        value = assemble(plan, dict(zip(plan.missing, value)))
    graph.results.pop(task, None)  # an older value must not stand for this one
    graph.freshness.changed(task)
    graph._guard.forget(task)
    graph.interrupted[task] = value
    graph.namespace[task] = value


def _commit_items(runner: Runner, task: str, outcome: Outcome) -> Outcome:
    """Cache each computed element on its own; the outcome of the whole collection."""
    plan = runner.maps.pop(task)
    computed = dict(zip(plan.missing, outcome.value))
    for i, value in computed.items():
        fingerprint = fingerprint_or_none(value)
        if fingerprint is None:
            continue  # such an element is recomputed next time
        duration = outcome.costs.duration / max(1, len(computed))
        store_value(runner.graph, CacheEntry(plan.keys[i], f"{task}[item]", fingerprint, duration=duration), value)
    whole = assemble(plan, computed)
    return replace(
        outcome,
        value=whole,
        fingerprint=fingerprint_or_none(whole),
        items=(len(computed), len(plan.items)),
        costs=replace(outcome.costs, output_bytes=value_nbytes(whole)),
    )


def save(graph: Host, spec: TaskSpec, value: Any, fingerprint: str) -> None:
    """``--save``: a copy of the value in a named file; failing to write it is a warning, not a failed task."""
    from dagnb.run.save import save_value

    assert spec.save is not None
    path = spec.save.format(name=spec.name)
    graph._saved.pop(path, None)
    try:
        save_value(spec.name, spec.save, value)
    except SaveRefused as exc:
        warn_about(spec, f"{exc} The task's value and cache are fine.", DagnbSaveWarning)
    except Exception as exc:  # writers raise many types (missing pyarrow, a value of the wrong kind)
        warn_about(
            spec,
            f"The value of task `{spec.name}` could not be saved to `{path}` ({type(exc).__name__}: "
            f"{exc}). The task's value and cache are fine; fix the path or the format.",
            DagnbSaveWarning,
        )
    else:
        graph._saved[path] = copy_stamp(spec, fingerprint)


def store_value(graph: Host, entry: CacheEntry, value: Any) -> bool:
    """Put ``entry`` and its value in the cache; whether the value is stored (else said why)."""
    try:
        graph.store.put(entry, value)
        return entry.stored  # false in a read-only cache: the value stays in memory
    except Exception as exc:
        not_stored(graph, entry, exc)
        return False


def not_stored(graph: Host, entry: CacheEntry, exc: BaseException) -> None:
    """Say why a value could not be cached (now, or when its batch was written): it is kept in memory only."""
    category: type[Warning] = DagnbCacheWarning
    if isinstance(exc, sqlite3.Error):
        message = f"The value of task `{entry.task}` could not be recorded in the cache ({exc})"
    elif isinstance(exc, OSError):
        message = f"The value of task `{entry.task}` could not be written to the cache ({exc.strerror or exc})"
    else:  # pickling failures come in many types
        message = f"The value of task `{entry.task}` cannot be pickled ({type(exc).__name__}: {exc})"
        category = UnpicklableOutputWarning
    entry.stored = False
    spec = graph.tasks.specs.get(entry.task.removesuffix("[item]"))
    warn_about(spec, f"{message}; it is kept in memory only and recomputed after a restart.", category)


def _unpicklable(value: Any) -> str | None:
    """Why ``value`` cannot be pickled (``None`` if it can); whatever its ``__reduce__`` raises."""
    import pickle

    try:
        pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _stand_in(graph: Host, task: str, key: str, value: Any) -> str:
    """The stand-in fingerprint of a value that has none: its key; said once per task."""
    if task not in graph._unhashable_warned:
        graph._unhashable_warned.add(task)
        reason = None if isinstance(graph.store, MemoryStore) else _unpicklable(value)
        if reason is not None:  # the reason it has no fingerprint, and why it stays in memory
            warn_about(
                graph.tasks.specs.get(task),
                f"The value of task `{task}` cannot be pickled ({reason}); it "
                f"is kept in memory only and recomputed after a restart.",
                UnpicklableOutputWarning,
            )
            return f"key {key}"
        warn_about(
            graph.tasks.specs.get(task),
            f"The output of task `{task}` cannot be fingerprinted; its key stands in for it, so "
            f"its dependents rerun whenever it does (no early cutoff). Register a fingerprint "
            f"with `dagnb.register_fingerprint` to enable it.",
            UnfingerprintableWarning,
        )
    return f"key {key}"
