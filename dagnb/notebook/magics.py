"""IPython glue: ``%load_ext dagnb`` registers ``%%task`` and ``%dag`` on the shell.

The magics themselves are :class:`dagnb.notebook.dagmagics.DagMagics`; this
module wires one instance of them into the shell: the hooks before and after
each cell, and two input transformers (a cell that runs async tasks awaits
them on the kernel's loop; ``%%task --help`` alone in a cell shows the help).

Invariants:

* One instance per process, on one shell: loading again on the same shell
  changes nothing; unloading leaves the session's graph and values.
* A rewritten cell names :func:`awaiting` by this module's path
  (``dagnb.notebook.magics``), so it stays here.
* The old name ``dagnb.magics`` forwards here (:mod:`dagnb._moved`) and
  offers what it did: ``DagMagics``, ``awaiting``, ``load``, ``unload`` and
  the two transformers.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from collections.abc import Callable
from typing import Any

from dagnb.errors import RunInterrupted
from dagnb.notebook.dagmagics import DagMagics
from dagnb.notebook.running import AWAITED, INTERRUPTED

__all__ = ["DagMagics", "await_runs", "awaiting", "help_alone", "load", "unload"]

_magics: DagMagics | None = None


def _after_cell(*_: Any) -> None:
    """After each cell: status lines and views show the plan of this moment (see :mod:`dagnb.notebook.follow`)."""
    if _magics is not None:
        _magics.notebook.settle()  # the cell of `%load_ext dagnb` says the fallback, if it applies
        _magics.follower.after_cell()


async def awaiting(call: Callable[[], Any]) -> Any:
    """What a rewritten cell awaits: the magic ``call``, whose run is then awaited on the kernel's loop.

    Ctrl-C (which ipykernel turns into cancelling the cell) stops the run as
    it does a blocking one: RunInterrupted (a KeyboardInterrupt) with its one-paragraph summary, every
    finished result kept.
    """
    token = AWAITED.set(True)
    try:
        result = call()
    finally:
        AWAITED.reset(token)
    if not inspect.isawaitable(result):
        return result
    resumed = INTERRUPTED.set(None)
    try:
        return await result
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and hasattr(task, "uncancel"):  # Python 3.11+: the cancel is handled here
            task.uncancel()
        report = _magics.graph.last_run if _magics is not None else None
        raise RunInterrupted(report, INTERRUPTED.get() or "Run this cell again") from None
    finally:
        INTERRUPTED.reset(resumed)


_RUNS = re.compile(r"get_ipython\(\)\.run_(line_magic\('dag', 'run\b|cell_magic\('task', )")
_ASYNC_TASK = re.compile(r"\basync def\b")


def await_runs(lines: list[str]) -> list[str]:
    """An IPython input transformer: cells that run tasks await them when any task is async.

    ``%dag run`` and ``%%task`` (as top-level lines of the transformed cell)
    become ``await awaiting(lambda: <the magic call>)``: IPython then runs the
    cell on its event loop (the kernel's), and async tasks run there, next to
    each other. Only with ``%autoawait`` on asyncio; otherwise nothing changes
    and async tasks run on dagnb's own loop thread.
    """
    runs = [i for i, line in enumerate(lines) if _RUNS.match(line)]
    if not runs or _magics is None or not _awaits_on_asyncio(_magics.shell):
        return lines
    graph = _magics.graph
    if not graph.tasks.any_async() and not any(_ASYNC_TASK.search(lines[i]) for i in runs):
        return lines
    lines = list(lines)
    for i in runs:
        call = lines[i].rstrip("\n")
        lines[i] = f"await __import__('dagnb.notebook.magics', fromlist=['awaiting']).awaiting(lambda: {call})\n"
    return lines


def _awaits_on_asyncio(shell: Any) -> bool:
    from IPython.core.async_helpers import _asyncio_runner

    return bool(getattr(shell, "autoawait", False)) and getattr(shell, "loop_runner", None) is _asyncio_runner


_HELP_ALONE = re.compile(r"%%task\b[^\n]*?(?<!\S)(-h|--help)(?!\S)")


def help_alone(lines: list[str]) -> list[str]:
    """An IPython input transformer: ``%%task --help`` alone in a cell shows the help.

    IPython refuses a cell magic with an empty body before calling it ("cell
    body is empty"), while every option error says to run ``%%task --help``;
    a blank body line lets the call through.
    """
    if len(lines) == 1 and _HELP_ALONE.match(lines[0]):
        return [lines[0].rstrip("\n") + "\n", "\n"]
    return lines


def load(ipython: Any) -> None:
    """Register the magics on ``ipython`` (idempotent)."""
    global _magics
    if _magics is not None and _magics.shell is ipython:
        return
    _magics = DagMagics(ipython)
    ipython.register_magics(_magics)
    ipython.events.register("pre_run_cell", _magics.pre_run_cell)
    ipython.events.register("post_run_cell", _after_cell)
    if await_runs not in ipython.input_transformers_post:
        ipython.input_transformers_post.append(await_runs)
    if help_alone not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(help_alone)


def unload(ipython: Any) -> None:
    """Unregister the magics; the session's graph and values stay."""
    global _magics
    if _magics is None:
        return
    ipython.events.unregister("pre_run_cell", _magics.pre_run_cell)
    ipython.events.unregister("post_run_cell", _after_cell)
    if await_runs in ipython.input_transformers_post:
        ipython.input_transformers_post.remove(await_runs)
    if help_alone in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(help_alone)
    ipython.magics_manager.magics["cell"].pop("task", None)
    ipython.magics_manager.magics["line"].pop("dag", None)
    _magics = None
