"""The records a cache stores, each with an explicit codec between its Python fields and what is on disk.

A record is never rebuilt with ``cls(**stored)``: each field names its
stored name, its kind and whether it is required, so the Python names are
free to differ from the stored ones and a record written by a newer dagnb
(of the same format) still reads.

Invariants:

* Decoding ignores stored fields it does not know (a newer dagnb added
  them) and gives an absent or ill-typed optional field its default; a
  record without a required field (or with one of the wrong kind) is not a
  record at all (``ValueError``), and is never used.
* Encoding writes exactly the stored names, sorted, as JSON: an entry
  encodes byte for byte as format 4 always wrote it (the golden fixtures
  pin it), so an older dagnb of format 4 reads what this one writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = ["CacheEntry", "Codec", "Field", "RunRecord", "TaskRecord", "decode_entry", "encode_entry"]

T = TypeVar("T")
_MISSING = object()

# The JSON types each kind accepts, exactly (``json`` never decodes to a subclass; a bool is no int here).
KINDS: dict[str, frozenset[type]] = {
    "str": frozenset({str}),
    "float": frozenset({float, int}),
    "int": frozenset({int}),
    "bool": frozenset({bool}),
    "dict": frozenset({dict}),
    "list": frozenset({list}),
}


@dataclass(frozen=True)
class Field:
    """One field of a record: its stored name, the Python attribute it fills, its kind, whether it must be there."""

    stored: str
    kind: str
    attr: str = ""
    required: bool = False

    @property
    def name(self) -> str:
        return self.attr or self.stored


class Codec(Generic[T]):
    """Encodes a record of type ``cls`` to a dict of its stored names, and decodes one tolerantly.

    Responsibilities: map Python attributes to stored names both ways; drop
    unknown stored fields; leave absent or ill-typed optional fields to the
    record's defaults; refuse a record whose required fields are not there.
    """

    def __init__(self, cls: type[T], fields: list[Field]) -> None:
        self.cls, self.fields = cls, tuple(fields)
        self._checks = tuple((f.stored, f.name, KINDS[f.kind], f.kind == "float", f.required) for f in fields)

    def encode(self, record: T) -> dict[str, Any]:
        return {f.stored: getattr(record, f.name) for f in self.fields}

    def decode(self, data: Any) -> T:
        """The record ``data`` holds; ``ValueError`` when it is no such record (not a dict, a required field missing)."""
        if not isinstance(data, dict):
            raise ValueError(f"a {self.cls.__name__} record is a JSON object")
        values = {}
        for stored, name, types, to_float, required in self._checks:  # on the planner's path: no call per field
            value = data.get(stored, _MISSING)
            if type(value) in types:
                values[name] = float(value) if to_float else value
            elif required:
                kind = next(k for k, known in KINDS.items() if known is types)
                raise ValueError(f"not a {self.cls.__name__} record (`{stored}` is missing or not a {kind})")
        return self.cls(**values)


@dataclass
class CacheEntry:
    """What the cache knows of one key of one task.

    ``fingerprint`` is the fingerprint of the task's value (stored as
    ``output``); ``captured`` the streams and displays the task printed,
    replayed on a hit (stored as ``outputs``).
    """

    key: str
    task: str
    fingerprint: str
    parts: dict[str, str] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    captured: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    nbytes: int = 0
    stored: bool = True
    created: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    value_bytes: int = 0
    sources: dict[str, str] = field(default_factory=dict)  # helper name -> its own code digest (not keyed)

    @property
    def output(self) -> str:
        """The old name of :attr:`fingerprint` (read-only)."""
        return self.fingerprint

    @property
    def outputs(self) -> list[dict[str, Any]]:
        """The old name of :attr:`captured` (read-only)."""
        return self.captured

    def to_json(self) -> str:
        return encode_entry(self)

    @classmethod
    def from_json(cls, text: str) -> CacheEntry:
        """The entry a record describes; ``ValueError`` when it is not a cache entry at all."""
        return decode_entry(text)


ENTRY = Codec(
    CacheEntry,
    [
        Field("key", "str", required=True),
        Field("task", "str", required=True),
        Field("output", "str", attr="fingerprint", required=True),
        Field("parts", "dict"),
        Field("inputs", "dict"),
        Field("outputs", "list", attr="captured"),  # the streams and displays a hit replays
        Field("duration", "float"),
        Field("nbytes", "int"),
        Field("stored", "bool"),
        Field("created", "float"),
        Field("cpu_time", "float"),
        Field("peak_memory", "int"),
        Field("value_bytes", "int"),
        Field("sources", "dict"),
    ],
)


def encode_entry(entry: CacheEntry) -> str:
    """The stored record of ``entry`` (format 4: its fields by name, sorted)."""
    return json.dumps(ENTRY.encode(entry), sort_keys=True)


def decode_entry(text: str | bytes) -> CacheEntry:
    """The entry a stored record describes; ``ValueError`` when it is not a cache entry at all."""
    return ENTRY.decode(json.loads(text))


@dataclass(frozen=True)
class TaskRecord:
    """One task in a recorded run."""

    task: str
    status: str
    reason: str = ""
    key: str | None = None
    fingerprint: str | None = None  # of the value the task left (stored in the ``output`` column)
    duration: float = 0.0
    worker: str = ""

    @property
    def output(self) -> str | None:
        """The old name of :attr:`fingerprint` (read-only)."""
        return self.fingerprint

    def stored(self) -> tuple[str, str, str, str, str, float, str]:
        """The row as stored (no NULLs: a UNIQUE index would not deduplicate them)."""
        return encode_task_row(self)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> TaskRecord:
        return decode_task_row(row)


TASK_COLUMNS = ("task", "status", "reason", "key", "output", "duration", "worker")  # the history_rows columns, in order


def encode_task_row(record: TaskRecord) -> tuple[str, str, str, str, str, float, str]:
    """The ``history_rows`` columns of ``record``, in :data:`TASK_COLUMNS` order."""
    return (
        record.task,
        record.status,
        record.reason,
        record.key or "",
        record.fingerprint or "",
        float(record.duration),
        record.worker,
    )


def decode_task_row(row: tuple[Any, ...]) -> TaskRecord:
    """The task record of a ``history_rows`` row (columns in :data:`TASK_COLUMNS` order; empty key/output: none)."""
    task, status, reason, key, fingerprint, duration, worker = row
    return TaskRecord(
        str(task), str(status), str(reason), key or None, fingerprint or None, float(duration), str(worker)
    )


@dataclass(frozen=True)
class RunRecord:
    """A run as the history keeps it; ``id`` counts runs of this cache, across sessions and scopes."""

    id: int
    started: float
    finished: float
    tasks: list[TaskRecord] = field(default_factory=list)
    scope: str = ""  # the notebook (or folder) that ran it, as the cache names it (see dagnb.scope)

    def count(self, status: str) -> int:
        return sum(1 for t in self.tasks if t.status == status)
