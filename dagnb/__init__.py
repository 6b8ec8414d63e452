"""dagnb: a Jupyter notebook as an incremental build system.

``%load_ext dagnb``, then one function per ``%%task`` cell: its name is the
task (and the variable it produces), its parameters are its inputs. Only
tasks whose code or inputs changed rerun; everything else comes from the
cache, in this kernel or after a restart.
"""

from __future__ import annotations

from typing import Any, Callable

from .api import Graph, Why
from .errors import DagnbError, TaskFailed
from .executor import RunReport
from .hashing import FileRef, file, fingerprint, register_fingerprint
from .hooks import on, subscribe
from .plan import Plan
from .session import current

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


def task(func: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Define a task of the session's graph: ``@dagnb.task``, or with options, ``@dagnb.task(map="files")``.

    The options are :meth:`Graph.task`'s: ``volatile``, ``retries``,
    ``timeout``, ``save``, ``when`` and ``map``.
    """
    return current().task(func, **options)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dagnb``: register ``%%task`` and ``%dag``."""
    from .magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext dagnb``."""
    from .magics import unload

    unload(ipython)
