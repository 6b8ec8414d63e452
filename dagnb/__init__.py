"""dagnb: a Jupyter notebook as an incremental build system.

``%load_ext dagnb``, then one function per ``%%task`` cell: its name is the
task (and the variable it produces), its parameters are its inputs. Only
tasks whose code or inputs changed rerun; everything else comes from the
cache, in this kernel or after a restart.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Callable

from dagnb import _moved

if TYPE_CHECKING:
    from dagnb.api import Graph, Why
    from dagnb.errors import DagnbError, TaskFailed
    from dagnb.fingerprints.values import FileRef, file, fingerprint, register_fingerprint
    from dagnb.hooks import on, subscribe
    from dagnb.plan import Plan
    from dagnb.run.executor import RunReport
    from dagnb.session import current

# The public names load on first use: a worker process, which imports `dagnb.run.worker` and so this
# package first, must not pay for the planner, the task graph and the cache (networkx, sqlite3).
_PUBLIC = {
    "Graph": "dagnb.api", "Why": "dagnb.api", "DagnbError": "dagnb.errors", "TaskFailed": "dagnb.errors",
    "FileRef": "dagnb.fingerprints.values", "file": "dagnb.fingerprints.values",
    "fingerprint": "dagnb.fingerprints.values", "register_fingerprint": "dagnb.fingerprints.values",
    "on": "dagnb.hooks", "subscribe": "dagnb.hooks", "Plan": "dagnb.plan", "RunReport": "dagnb.run.executor",
    "current": "dagnb.session",
}

__all__ = [
    "DagnbError",
    "FileRef",
    "Graph",
    "Plan",
    "RunReport",
    "TaskFailed",
    "Why",
    "current",
    "file",
    "fingerprint",
    "load_ipython_extension",
    "on",
    "register_fingerprint",
    "subscribe",
    "task",
    "unload_ipython_extension",
]

__version__ = "0.1.0"

_moved.install()


def __getattr__(name: str) -> Any:
    """A public name, imported from its module the first time it is asked for."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'dagnb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})


def task(func: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Define a task of the session's graph: ``@dagnb.task``, or with options, ``@dagnb.task(map="files")``.

    The options are :meth:`Graph.task`'s: ``volatile``, ``retries``,
    ``timeout``, ``save``, ``when`` and ``map``.
    """
    from dagnb.session import current

    return current().task(func, **options)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dagnb``: register ``%%task`` and ``%dag``."""
    from dagnb.notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext dagnb``."""
    from dagnb.notebook.magics import unload

    unload(ipython)
