"""The cache as the rest of dagnb opens it: a disk store at a folder, or one in memory.

The store protocol and the memory store are in :mod:`dagnb.cache.base`, the
disk store in :mod:`dagnb.cache.disk`; this module, above both, opens
either and names what the engine imports from the cache room. Nothing in
the room imports it back.
"""

from __future__ import annotations

import os
import warnings

from dagnb.cache.base import (
    CacheEntry,
    CacheInfo,
    CacheMiss,
    CacheOpenedReadOnly,
    CacheReadOnly,
    MemoryStore,
    NoHistory,
    Pruned,
    RunRecord,
    Store,
    TaskRecord,
    Verified,
    parse_size,
)
from dagnb.cache.disk import DiskStore
from dagnb.cache.folder import CacheFormatError, CacheUnavailable
from dagnb.cache.trust import SecretError
from dagnb.errors import DagnbCacheWarning
from dagnb.scope import Scope

__all__ = [
    "CacheEntry",
    "CacheFormatError",
    "CacheInfo",
    "CacheMiss",
    "CacheOpenedReadOnly",
    "CacheReadOnly",
    "DiskStore",
    "MemoryStore",
    "NoHistory",
    "Pruned",
    "RunRecord",
    "Store",
    "TaskRecord",
    "Verified",
    "open_store",
    "parse_size",
]


def open_store(directory: str | os.PathLike[str] | None, scope: Scope | None = None) -> Store:
    """A disk cache at ``directory``, or a :class:`MemoryStore` for ``None``.

    ``scope`` (a notebook, or by default the working folder) is whose heads,
    hit counts and history the store reads and writes.

    A disk cache that cannot be used at all (its folder cannot be created,
    it is read-only with nothing usable in it, or the secret cannot be
    trusted) gives a :class:`DagnbCacheWarning` saying why and how to fix it,
    and a :class:`MemoryStore`: the session works, without a disk cache.
    """
    if directory is None:
        memory = MemoryStore()
        if scope is not None:
            memory.use_scope(scope)
        return memory
    try:
        return DiskStore(directory, scope=scope)
    except (CacheUnavailable, SecretError) as exc:
        warnings.warn(
            f"{exc} Until then, dagnb keeps results in memory only (nothing is cached on disk).",
            DagnbCacheWarning,
            stacklevel=2,
        )
        return open_store(None, scope)
