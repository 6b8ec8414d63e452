"""In-place changes: a task's value in memory that no longer is what the task produced.

A task's value is fingerprinted once, when it is produced
(``Result.fingerprint``), and the keys of its dependents are built from that
fingerprint. Python lets any code change a list, an array or a frame in place
afterwards: a task that sorts its input, a cell that runs
``raw.dropna(inplace=True)``. A task that read the changed value would be
cached under a key that promises the original, and the damage would outlive a
restart. :class:`InputGuard` keeps that from happening.

Invariants:

* Before a task runs (or its ``--when`` condition is evaluated), every
  upstream value it reads that can change in place has its recorded
  fingerprint, unless it was checked after its last reader in this run.
* After a task finishes, the upstream values it read are checked again, so a
  value a task changed is repaired at once and the task is named.
* A changed value is never handed on: it is reloaded from the disk cache,
  else recomputed by calling its task again, and the user is told once which
  value changed and by which task (or that a cell did it).
* Values that cannot change in place (numbers, strings, bytes, tuples and
  frozensets of those, frozen dataclasses of those) are never fingerprinted
  again, nor are values that cannot be fingerprinted at all.
* An iterator (a generator) is used up by the first task that reads it, so
  a second reader is refused with :class:`~dagnb.errors.IteratorReused`
  rather than checked and repaired.
* ``Graph.verify_inputs = False`` (``%dag config --no-verify-inputs``) turns
  this off, for object graphs too large to fingerprint once per read.

Not covered: with ``--backend threads`` (and for async tasks), a task that
changes a value while another task reads it at the same time.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import fractions
import pathlib
import sys
import warnings
from collections.abc import Iterator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from dagnb.cache.base import CacheMiss, MemoryStore
from dagnb.errors import InputDamaged, IteratorReused, ValueChangedWarning
from dagnb.fingerprints.values import FileRef, fingerprint
from dagnb.plan import Result
from dagnb.run.mapping import assemble, call_items, plan_items

if TYPE_CHECKING:
    from dagnb.cache.base import Store
    from dagnb.graph import TaskGraph

__all__ = ["InputGuard", "immutable"]

_ATOMS = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        range,
        type(Ellipsis),
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        decimal.Decimal,
        fractions.Fraction,
        FileRef,
        pathlib.PurePosixPath,
        pathlib.PureWindowsPath,
        pathlib.PosixPath,
        pathlib.WindowsPath,
    }
)
_BUDGET = 10_000  # elements looked at before a large tuple is treated as changeable (it is fingerprinted instead)


def immutable(value: Any) -> bool:
    """Whether nothing can change ``value`` in place (so it never needs checking again)."""
    if type(value) in _ATOMS:  # the common case, checked for every input of every task that runs
        return True
    return _immutable(value, [_BUDGET])


def _immutable(value: Any, budget: list[int]) -> bool:
    budget[0] -= 1
    if budget[0] < 0:
        return False
    cls = type(value)
    if cls in _ATOMS or isinstance(value, enum.Enum):
        return True
    if cls is tuple or cls is frozenset or isinstance(value, tuple) and hasattr(value, "_fields"):
        return all(_immutable(item, budget) for item in value)
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic) and not isinstance(value, numpy.void):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and _frozen(value):
        return all(_immutable(getattr(value, f.name), budget) for f in dataclasses.fields(value))
    return False


def _frozen(instance: Any) -> bool:
    """A dataclass instance declared ``frozen=True``."""
    return bool(instance.__dataclass_params__.frozen)


class Guarded(Protocol):
    """What the guard reads and repairs of a graph in a run (:class:`dagnb.Graph` is one).

    A Protocol, not the class: the graph holds a guard, so this module must
    not import it back.
    """

    tasks: TaskGraph
    namespace: MutableMapping[str, Any]
    store: Store
    results: dict[str, Result]
    _run_id: int

    @property
    def _damaged(self) -> set[str]: ...  # the graph hands on its run's set: read-only here, changed in place

    def _bind(self, task: str, result: Result) -> None: ...


class InputGuard:
    """Checks the upstream values a task reads, and repairs those changed in place.

    Responsibilities:
        * decide which values need a check (changeable, fingerprinted, not
          checked since their last reader);
        * reload or recompute a changed value, and say so once;
        * remember which tasks read a value since it was last checked, to
          name the one that changed it.
    """

    def __init__(self, graph: Guarded) -> None:
        self.graph = graph
        self.readers: dict[str, list[tuple[str, int]]] = {}  # value -> (task, run) that read it since its check
        self.checked: dict[str, int] = {}  # value -> the run in which it was last found intact after its readers
        self.warned: set[tuple[str, str]] = set()
        self.iterator_readers: dict[str, str] = {}  # an iterator value -> the task that read (used up) it
        self.stable: set[str] = set()  # values that need no check: immutable, unfingerprintable, iterators

    def before(self, task: str, upstream: Sequence[str]) -> bool:
        """Check what ``task`` is about to read; return whether a repair changed a value's fingerprint."""
        run = self.graph._run_id
        changed = False
        for up in upstream:
            if self.checked.get(up) != run and self._needs_check(up):
                changed |= self._check(up, task, run)
        for up in upstream:
            if up not in self.stable:
                self.readers.setdefault(up, []).append((task, run))
                self.checked.pop(up, None)
        return changed

    def after(self, task: str, upstream: Sequence[str]) -> None:
        """Check what ``task`` read, now that it finished: a value it changed is repaired at once."""
        run = self.graph._run_id
        for up in upstream:
            if self._needs_check(up):
                try:
                    self._check(up, None, run)
                except InputDamaged:  # no intact copy: its next reader fails, and the run's end forgets it
                    pass

    def forget(self, task: str) -> None:
        """A task's value was replaced: what was known about the old one no longer holds."""
        self.readers.pop(task, None)
        self.checked.pop(task, None)
        self.iterator_readers.pop(task, None)
        self.stable.discard(task)

    def iterators(self, task: str, upstream: Sequence[str]) -> None:
        """Refuse a second reader of an iterator value: the first one used it up.

        Raises:
            IteratorReused: naming the task that read it first.
        """
        results = self.graph.results
        for up in upstream:
            result = results.get(up)
            if result is None or type(result.value) in _ATOMS or not isinstance(result.value, Iterator):
                continue
            if up in self.iterator_readers:
                raise IteratorReused(task, up, self.iterator_readers[up])
            self.iterator_readers[up] = task

    def _needs_check(self, up: str) -> bool:
        """Whether ``up``'s value can change in place and can be fingerprinted (remembered until it is replaced)."""
        if up in self.stable:
            return False
        result = self.graph.results.get(up)
        if result is None:
            return False
        value = result.value
        if result.fingerprint.startswith("key ") or immutable(value) or isinstance(value, Iterator):
            self.stable.add(up)  # an iterator is used up by reading: `iterators` refuses a second reader
            return False
        return True

    def _check(self, up: str, reader: str | None, run: int) -> bool:
        result = self.graph.results[up]
        try:
            intact = fingerprint(result.value) == result.fingerprint
        except Exception:  # it became unfingerprintable: certainly not what was recorded
            intact = False
        if not intact:
            return self._repair(up, result, reader, run)
        self.readers.pop(up, None)
        self.checked[up] = run
        return False

    def _repair(self, up: str, result: Result, reader: str | None, run: int) -> bool:
        culprits = self.readers.pop(up, [])
        graph = self.graph
        graph.store.discard_value(result.fingerprint)  # a memory store holds this very object: never hand it out
        how = self._reload(up, result)
        if how is None:
            try:
                how = self._recompute(up, run)
            except Exception as exc:  # the repair failed: the value is forgotten when the run ends
                graph._damaged.add(up)
                raise InputDamaged(reader or up, up, by=_by(culprits, run)) from exc
        self._tell(up, reader, culprits, run, how)
        self.checked[up] = run
        return graph.results[up].fingerprint != result.fingerprint

    def _reload(self, up: str, result: Result) -> str | None:
        store = self.graph.store
        entry = store.entry(result.key)
        if entry is None or not entry.stored or isinstance(store, MemoryStore):
            return None
        try:
            value = store.load(entry)
        except CacheMiss:
            return None
        self.graph._bind(up, Result(result.key, result.fingerprint, value, result.captured))
        return "reloaded it from the cache"

    def _recompute(self, up: str, run: int) -> str:
        """Call ``up``'s function again here, on its own (checked) inputs."""
        graph = self.graph
        spec = graph.tasks.specs[up]
        if spec.is_async:
            raise RuntimeError("an async task cannot be recomputed in the middle of a run")
        self.before(up, graph.tasks.upstream(up))
        kwargs = {
            i.param: graph.results[i.param].value if i.kind == "upstream" else i.value
            for i in graph.tasks.resolve(up, graph.namespace)
        }
        if spec.map:
            plan = plan_items(kwargs.pop(spec.map), "", lambda key: (False, None))
            items = call_items(spec.func, spec.map, [plan.items[i] for i in plan.missing], None, 0, **kwargs)
            value = assemble(plan, dict(zip(plan.missing, items)))
        else:
            value = spec.func(**kwargs)
        self.after(up, graph.tasks.upstream(up))
        old = graph.results[up]
        try:
            digest = fingerprint(value)
        except Exception:  # Unfingerprintable, or what the value's own pickling raises
            digest = old.fingerprint
        graph._bind(up, Result(old.key, digest, value, old.captured))
        return "computed it again (the cache had no intact copy)"

    def _tell(self, up: str, reader: str | None, culprits: list[tuple[str, int]], run: int, how: str) -> None:
        by = _by(culprits, run)
        if (up, by) in self.warned:
            return
        self.warned.add((up, by))
        spec = self.graph.tasks.specs.get(up)
        code = getattr(getattr(spec, "func", None), "__code__", None)
        warning = ValueChangedWarning(up, by, how, reader)
        if code is None:
            warnings.warn(warning, stacklevel=4)
            return
        warnings.warn_explicit(warning, ValueChangedWarning, code.co_filename, code.co_firstlineno)


def _by(culprits: list[tuple[str, int]], run: int) -> str:
    """Who changed a value: the tasks that read it since its last check, or a cell."""
    names = list(dict.fromkeys(task for task, _ in culprits))
    if not names:
        return "code outside its task (a cell)"
    tasks = " or ".join(f"task `{n}`" for n in names)
    if all(r == run for _, r in culprits):
        return tasks
    return f"{tasks} (in an earlier run) or a cell run since"
