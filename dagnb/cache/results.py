"""What the cache's commands report: ``info``, ``verify`` and ``prune``, and the sizes they take.

Plain results, built by a store and shown by ``%dag cache`` and ``dagnb
cache``; nothing here reads or writes a cache.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dagnb.cache.runlog import KEEP_RUNS

__all__ = ["CacheInfo", "Pruned", "Verified", "parse_size"]


@dataclass(frozen=True)
class CacheInfo:
    """Totals for ``%dag cache info``."""

    location: str
    entries: int
    blobs: int
    nbytes: int
    tasks: dict[str, int]
    metadata_bytes: int = 0
    runs: int = 0
    history_rows: int = 0
    read_only: str | None = None

    def __str__(self) -> str:
        per_task = ", ".join(f"{t} ({n})" for t, n in sorted(self.tasks.items())) or "none"
        lines = [f"cache at {self.location}: {self.entries} keys, {self.blobs} values, {_human(self.nbytes)}"]
        if self.location != "memory":
            lines.append(
                f"metadata: {_human(self.metadata_bytes)}, with a history of {self.runs} "
                f"{'run' if self.runs == 1 else 'runs'} ({self.history_rows} task rows; the latest "
                f"{KEEP_RUNS:,} runs are kept)"
            )
        if self.read_only:
            lines.append(f"read-only for you: {self.read_only}")
        return "\n".join([*lines, f"keys per task: {per_task}"])


def _human(nbytes: int) -> str:
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover - the loop always returns


@dataclass(frozen=True)
class Verified:
    """What ``verify`` found, and what it removed.

    ``bad_entries`` and ``bad_values`` failed their signature (altered,
    truncated, forged, or written with another secret) and were removed;
    ``kept`` failed it too but belong to another user of a shared cache, so
    they were left alone; ``unreadable`` could not be read (a transient error
    or a permission) and were left alone; ``links`` are symbolic links found
    where dagnb keeps its folders or files, removed (never what they point
    to); ``forged_runs`` history runs whose signature failed, removed;
    ``damaged`` says where metadata SQLite could not read was set aside.
    """

    entries: int
    values: int
    bad_entries: list[str] = field(default_factory=list)
    bad_values: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    forged_runs: int = 0
    damaged: str | None = None
    read_only: bool = False

    @property
    def ok(self) -> bool:
        return not (
            self.bad_entries
            or self.bad_values
            or self.kept
            or self.unreadable
            or self.links
            or self.forged_runs
            or self.damaged
        )

    def __str__(self) -> str:
        head = f"verified {self.entries} entries and {self.values} values: "
        if self.damaged:
            return f"the cache metadata was damaged; {self.damaged}"
        if self.ok:
            return head + "all intact and signed with your secret"
        removed = "found" if self.read_only else "removed"
        parts = []
        if self.bad_entries or self.bad_values:
            parts.append(
                f"{removed} {len(self.bad_entries)} entries and {len(self.bad_values)} values that were "
                f"altered, truncated or not signed with your secret (their tasks recompute on the next run)"
            )
        if self.kept:
            parts.append(
                f"kept {len(self.kept)} values of other users that are not signed with your secret (share "
                f"`DAGNB_CACHE_KEY` to use each other's values)"
            )
        if self.unreadable:
            parts.append(
                f"could not read {len(self.unreadable)} values ({self.unreadable[0]}); they were kept: run verify again"
            )
        if self.links:
            parts.append(
                f"{removed} {len(self.links)} symbolic links planted where dagnb keeps its files "
                f"({', '.join(self.links)}), never what they point to"
            )
        if self.forged_runs:
            parts.append(f"{removed} {self.forged_runs} runs of the history that are not signed with your secret")
        if self.read_only:
            parts.append("nothing was removed: the cache is read-only for you")
        return head + "; ".join(parts)


@dataclass(frozen=True)
class Pruned:
    """What ``prune`` evicted."""

    values: int
    nbytes: int
    kept_bytes: int

    def __str__(self) -> str:
        return f"evicted {self.values} values ({_human(self.nbytes)}); the cache now holds {_human(self.kept_bytes)}"


_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
    "t": 10**12,
    "tb": 10**12,
    "tib": 2**40,
}


def parse_size(text: str) -> int:
    """``2GB``, ``500MiB``, ``1.5g``, ``1000`` -> bytes; ValueError with the accepted forms otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(f"`{text}` is not a size; write a number with an optional unit, like 500MB, 2GB or 1.5GiB")
    return int(float(match.group(1)) * _UNITS[unit])
