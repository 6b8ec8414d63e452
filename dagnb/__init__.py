"""dagnb: a Jupyter notebook as an incremental build system.

``%load_ext dagnb``, then one function per ``%%task`` cell: its name is the
task (and the variable it produces), its parameters are its inputs. Only
tasks whose code or inputs changed rerun; everything else comes from the
cache, in this kernel or after a restart.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dagnb import _moved
from dagnb.errors import DagnbError, TaskFailed
from dagnb.fingerprints.values import FileRef, file, fingerprint, register_fingerprint
from dagnb.hooks import on, subscribe
from dagnb.session import current

if TYPE_CHECKING:
    from dagnb.api import Graph, Why
    from dagnb.plan import Plan
    from dagnb.report import RunReport

#: Public names imported when first used: a loky or dask worker imports ``dagnb.run.worker``, which runs
#: this module first, and must not pay for the graph (networkx), the store (sqlite3) or the planner.
_LAZY = {"Graph": "dagnb.api", "Why": "dagnb.api", "Plan": "dagnb.plan", "RunReport": "dagnb.report"}

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
    """``dagnb.Graph`` and friends (see ``_LAZY``), and ``dagnb.api``-style access to any submodule."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once: later lookups do not come back here
        return value
    if name.startswith("__"):  # probes such as `__wrapped__` or `__path__` lookups: never a submodule
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":
            raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
