"""The process-wide current graph, for notebooks and ``@dagnb.task``.

No IPython here: the magics set the namespace and cache directory, plain
Python gets a graph with an in-memory namespace. The default cache
directory is ``$DAGNB_CACHE_DIR`` or ``.dagnb`` in the working directory
(beside the notebook, where Jupyter starts kernels). ``$DAGNB_FORCE`` (task
names, comma-separated; ``dagnb run --force`` sets it) makes those tasks
rerun once, the first time a run reaches them; ``$DAGNB_BACKEND`` and
``$DAGNB_JOBS`` (set by ``dagnb run --backend --jobs``) choose where runs go.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagnb.api import Graph

__all__ = ["current", "default_cache_dir", "set_current"]

_current: Graph | None = None


def default_cache_dir() -> str:
    """``$DAGNB_CACHE_DIR`` when set, else ``.dagnb`` in the working directory."""
    return os.environ.get("DAGNB_CACHE_DIR") or os.path.join(os.getcwd(), ".dagnb")


def current(namespace: MutableMapping[str, Any] | None = None) -> Graph:
    """The session's graph, created on first use with the default cache directory."""
    global _current
    if _current is None:
        from dagnb.api import Graph

        _current = Graph(cache_dir=default_cache_dir(), namespace=namespace)
        _current.force_once = {t for t in os.environ.get("DAGNB_FORCE", "").split(",") if t}
        _current.backend = os.environ.get("DAGNB_BACKEND") or "inline"
        _current.jobs = int(os.environ.get("DAGNB_JOBS") or 1)
    return _current


def set_current(graph: Graph | None) -> None:
    """Replace (or, with ``None``, forget) the session's graph."""
    global _current
    _current = graph
