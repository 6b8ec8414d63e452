"""What a task costs: wall and CPU time, peak memory, output and cache bytes.

:func:`measure` wraps one task body and records its costs in a
:class:`Measure`; :func:`value_nbytes` estimates the in-memory size of a
value without walking it deeply; :func:`task_costs` joins the last costs of
each task with the cache's hit statistics into rows for ``%dag costs``.
Costs travel as one :class:`~dagnb.events.Costs` record; a cache entry keeps
them under its own on-disk names, and :func:`entry_costs` and
:func:`costs_of` are the one place the two sets of names meet.

Peak memory is the rise of the process's resident set above its level when
the task started. On Linux the kernel's high-water mark is reset before each
task (``/proc/self/clear_refs``) and read back from ``/proc/self/status``
(``VmHWM``), so the peak is the task's own; for a task that took under
:data:`QUICK` seconds, the rise of the resident set at its end (reading the
high-water mark costs tens of microseconds, more than such a task; in that
time the process can fault in at most a few MiB more than it keeps).
Elsewhere it is the rise of the process's lifetime peak, which stays 0 for a
task that uses less memory than an earlier one. With the ``threads`` backend, tasks running at once share the
process, so their CPU time and peaks overlap.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from dagnb.events import Costs  # the one record costs travel in (re-exported: it was defined here)

if TYPE_CHECKING:
    from dagnb.cache.base import CacheEntry

__all__ = [
    "COST_COLUMNS",
    "Costs",
    "EntryCosts",
    "Measure",
    "TaskCosts",
    "costs_of",
    "entry_costs",
    "measure",
    "task_costs",
    "value_nbytes",
]


@dataclass(slots=True)
class Measure:
    """Costs of one run of a task body, filled in when it ends."""

    started: float = 0.0
    duration: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0

    def costs(self, output_bytes: int = 0) -> Costs:
        """What was measured, with the size of the value it produced."""
        return Costs(self.started, self.duration, self.cpu_time, self.peak_memory, output_bytes)


class EntryCosts(TypedDict):
    """The cost fields of a cache entry, by its own (on-disk) names."""

    duration: float
    cpu_time: float
    peak_memory: int
    value_bytes: int


def entry_costs(costs: Costs) -> EntryCosts:
    """``costs`` as a cache entry keeps them: the entry's own (on-disk) field names."""
    return {
        "duration": costs.duration,
        "cpu_time": costs.cpu_time,
        "peak_memory": costs.peak_memory,
        "value_bytes": costs.output_bytes,
    }


def costs_of(entry: CacheEntry) -> Costs:
    """What the run that computed a cache entry's value cost (:func:`entry_costs` read back)."""
    return Costs(0.0, entry.duration, entry.cpu_time, entry.peak_memory, entry.value_bytes)


#: A task quicker than this (seconds) is measured by its resident set at its end, not the high-water mark.
QUICK = 0.001


class _ProcMemory:
    """Linux: the resident set from ``/proc/self/statm``, a peak reset per task.

    Writing ``5`` to ``/proc/self/clear_refs`` resets the kernel's high-water
    mark of the resident set (``VmHWM`` in ``/proc/self/status``): read back,
    it is the peak of this task alone. Not ``getrusage``: its ``ru_maxrss``
    also keeps the largest peak of the process before its last ``exec``,
    which for a Jupyter kernel is the peak of the server that forked it, so a
    task of a few bytes showed tens of MiB. The files stay open, so each probe
    costs a few microseconds.
    """

    def __init__(self) -> None:
        self._statm = os.open("/proc/self/statm", os.O_RDONLY)
        self._status = os.open("/proc/self/status", os.O_RDONLY)
        self._clear = os.open("/proc/self/clear_refs", os.O_WRONLY)
        os.write(self._clear, b"5")  # fails here, not per task, where /proc is read-only
        self._page = os.sysconf("SC_PAGE_SIZE")
        self.peak()  # fails here where the status file has no high-water mark

    def start(self) -> int:
        os.write(self._clear, b"5")
        return self._resident()

    def _resident(self) -> int:
        return int(os.pread(self._statm, 64, 0).split()[1]) * self._page

    def peak(self, duration: float = QUICK) -> int:
        if duration < QUICK:
            return self._resident()
        status = os.pread(self._status, 8192, 0)
        at = status.index(b"VmHWM:")  # ValueError where it is missing
        return int(status[at + 6 : status.index(b"kB", at)]) * 1024


class _RusageMemory:
    """The process's lifetime peak (macOS, and Linux without a writable ``/proc``)."""

    def __init__(self) -> None:
        import resource

        self._getrusage, self._self = resource.getrusage, resource.RUSAGE_SELF
        self._unit = 1 if sys.platform == "darwin" else 1024

    def start(self) -> int:
        return self.peak()

    def peak(self, duration: float = 0.0) -> int:
        return int(self._getrusage(self._self).ru_maxrss) * self._unit


class _NoMemory:
    def start(self) -> int:
        return 0

    def peak(self, duration: float = 0.0) -> int:
        return 0


def _memory_probe() -> _ProcMemory | _RusageMemory | _NoMemory:
    for probe in (_ProcMemory, _RusageMemory):
        try:
            return probe()
        except (OSError, ImportError, ValueError):  # no /proc, read-only, or no VmHWM line
            continue
    return _NoMemory()


_probe: _ProcMemory | _RusageMemory | _NoMemory | None = None


class measure:  # noqa: N801 - used like a function: ``with measure() as m``
    """Measure the body of a ``with`` block: wall time, CPU time, peak memory rise.

    ``with measure() as m`` gives a :class:`Measure` filled in when the block
    ends. A small class rather than a generator context manager: it wraps
    every task, so its own cost is kept to a few microseconds.
    """

    __slots__ = ("_base", "_cpu", "_m")

    def __enter__(self) -> Measure:
        probe = _probe if _probe is not None else _set_probe()
        self._m = m = Measure()
        self._base = probe.start()
        self._cpu = time.process_time()
        m.started = time.perf_counter()
        return m

    def __exit__(self, *exc: object) -> None:
        m = self._m
        m.duration = time.perf_counter() - m.started
        m.cpu_time = time.process_time() - self._cpu
        m.peak_memory = max(0, _probe.peak(m.duration) - self._base) if _probe is not None else 0


def _set_probe() -> _ProcMemory | _RusageMemory | _NoMemory:
    global _probe
    _probe = _memory_probe()
    return _probe


_NBYTES_EXACT = frozenset({"numpy", "pyarrow", "xarray", "torch"})  # `nbytes` is their buffers' size, cheap


def value_nbytes(value: Any, _depth: int = 0) -> int:
    """The in-memory size of ``value``: array buffers exactly, containers shallowly.

    numpy arrays count their buffer (so do pyarrow, xarray and torch values,
    and polars its estimate), pandas objects their columns and index (not
    the Python objects an object column points to); a dask collection, whose
    data is not computed, counts as a Python object; lists, tuples,
    sets and dicts add their first 1,000 items, three levels deep. It is an
    estimate to compare tasks by, cheap on values of any size. It never
    raises: a value whose ``nbytes`` or ``__sizeof__`` raises (a dask
    DataFrame's ``nbytes`` is ``NotImplementedError``) counts what could be
    measured, at worst 0.
    """
    try:
        return _nbytes(value, _depth)
    except Exception:
        try:
            return sys.getsizeof(value, 0)
        except Exception:
            return 0


def _nbytes(value: Any, _depth: int) -> int:
    library = type(value).__module__.split(".")[0]
    if library in _NBYTES_EXACT:  # read `nbytes` of these only: dask's raises, others compute
        with contextlib.suppress(Exception):
            nbytes = getattr(value, "nbytes", None)
            if isinstance(nbytes, int):
                return nbytes
    if library == "polars":
        with contextlib.suppress(Exception):
            return int(value.estimated_size())
    usage = getattr(value, "memory_usage", None)
    if usage is not None and type(value).__module__.startswith("pandas"):
        with contextlib.suppress(Exception):
            total = usage(index=True, deep=False)
            return int(getattr(total, "sum", lambda: total)())
    size = sys.getsizeof(value, 0)
    if _depth < 3 and isinstance(value, (list, tuple, set, frozenset, dict)):
        items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
        for count, (key, item) in enumerate(items):
            if count == 1000:
                break
            size += value_nbytes(item, _depth + 1) + (value_nbytes(key, _depth + 1) if key is not None else 0)
    return size


COST_COLUMNS = ("task", "status", "duration", "cpu_time", "peak_memory", "output_bytes", "cache_bytes", "hits", "saved")


@dataclass(frozen=True)
class TaskCosts:
    """One row of ``%dag costs``: a task's costs under its current key.

    ``duration``, ``cpu_time`` and ``peak_memory`` are those of the run that
    computed the current value (also when this session loaded it from the
    cache); ``hits`` and ``saved`` add up every cache load of any of the
    task's keys, and the compute time each load avoided. A row is flat, one
    field per column of the table (:data:`COST_COLUMNS`), each of which may
    be blank (``None``): it is made from a :class:`Costs` by :meth:`of`.
    """

    task: str
    status: str
    duration: float | None = None
    cpu_time: float | None = None
    peak_memory: int | None = None
    output_bytes: int | None = None
    cache_bytes: int | None = None
    hits: int = 0
    saved: float = 0.0

    @classmethod
    def of(
        cls,
        task: str,
        status: str,
        costs: Costs | None,
        cache_bytes: int | None = None,
        hits: int = 0,
        saved: float = 0.0,
    ) -> TaskCosts:
        """The row of a task whose value cost ``costs`` (``None``: no value, its cost columns blank)."""
        if costs is None:
            return cls(task, status, cache_bytes=cache_bytes, hits=hits, saved=saved)
        return cls(
            task,
            status,
            costs.duration,
            costs.cpu_time,
            costs.peak_memory,
            costs.output_bytes,
            cache_bytes,
            hits,
            saved,
        )


def task_costs(
    order: list[str],
    statuses: Mapping[str, str],
    entries: Mapping[str, CacheEntry | None],
    hits: Mapping[str, tuple[int, float]],
) -> list[TaskCosts]:
    """Rows for ``order`` from each task's current cache entry and its hit totals."""
    rows = []
    for task in order:
        entry = entries.get(task)
        count, saved = hits.get(task, (0, 0.0))
        status = statuses.get(task, "pending")
        if entry is None:
            rows.append(TaskCosts.of(task, status, None, hits=count, saved=saved))
        else:
            rows.append(
                TaskCosts.of(task, status, costs_of(entry), entry.nbytes if entry.stored else None, count, saved)
            )
    return rows
