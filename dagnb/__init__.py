"""dagnb: a Jupyter notebook as an incremental build system.

``%load_ext dagnb``, then one function per ``%%task`` cell: its name is the
task (and the variable it produces), its parameters are its inputs. Only
tasks whose code or inputs changed rerun; everything else comes from the
cache, in this kernel or after a restart.
"""

from __future__ import annotations

from typing import Any, Callable

from dagnb import _moved

from dagnb.api import Graph, Why
from dagnb.errors import DagnbError, TaskFailed
from dagnb.run.executor import RunReport
from dagnb.fingerprints.values import FileRef, file, fingerprint, register_fingerprint
from dagnb.hooks import on, subscribe
from dagnb.plan import Plan
from dagnb.session import current

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


def task(func: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Define a task of the session's graph: ``@dagnb.task``, or with options, ``@dagnb.task(map="files")``.

    The options are :meth:`Graph.task`'s, the fields of :class:`dagnb.graph.TaskOptions`:
    ``volatile``, ``retries``, ``timeout``, ``save``, ``when`` and ``map``.
    """
    return current().task(func, **options)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dagnb``: register ``%%task`` and ``%dag``."""
    from dagnb.notebook.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext dagnb``."""
    from dagnb.notebook.magics import unload

    unload(ipython)
