"""Running one task body in a worker process (``processes`` and ``dask`` backends).

:func:`run_remote` is what a worker executes: the task's function on its
inputs, run by the one task-body runner (:func:`dagnb.run.body.run_body`)
with stdout and stderr recorded, costs measured and the value
fingerprinted there (hashing a large value happens in parallel, not in the
kernel). Everything it returns is pickled back to the kernel, which alone
writes the cache and binds values. An error comes back as the user's
exception with the worker's traceback as text, since tracebacks do not
cross processes; back in the kernel, :func:`with_kernel_source` adds the
source lines the worker could not read (the notebook's cells live in the
kernel's linecache only).

A worker cannot name a notebook cell: the code it runs was pickled by value,
and cloudpickle may replace the code's file name (3.1.3 writes
``<dynamic-code>``). So the worker sends each frame's function name and first
line with the text, and the kernel finds the code object they belong to among
the task's function, its nested code and the notebook's functions and classes.

What a worker imports, unpickling :func:`run_remote` or :class:`WorkerActor`:
the ``dagnb`` package's light top (its public names load on first use),
:mod:`dagnb.errors`, this room's backends, body, work, costs and capture
modules, and :mod:`dagnb.fingerprints`; never the planner, the task graph
or the cache (no networkx, no sqlite3). ``tests/unit/test_worker.py`` checks it.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import os
import pickle
import re
import sys
import traceback
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from dagnb.run.body import run_body
from dagnb.run.capture import OutputLog
from dagnb.run.interrupts import counting_interrupts
from dagnb.run.work import Outcome

__all__ = ["RemoteError", "WorkerActor", "run_pickled", "run_remote", "with_kernel_source"]


class RemoteError(Exception):
    """A worker's exception that could not be pickled back: its type, message and traceback."""


class _Recorder(io.TextIOBase):
    def __init__(self, log: OutputLog, name: str) -> None:
        self._log, self._name = log, name

    def write(self, text: str) -> int:
        self._log.stream(self._name, text)
        return len(text)


@contextlib.contextmanager
def _recorded_streams() -> Iterator[OutputLog]:
    """stdout and stderr recorded (a worker has no notebook to show them in): sent back, replayed in the kernel."""
    log = OutputLog()
    with contextlib.redirect_stdout(_Recorder(log, "stdout")), contextlib.redirect_stderr(_Recorder(log, "stderr")):
        yield log


def run_remote(func: Callable[..., Any], kwargs: dict[str, Any], modules: Sequence[Any] = ()) -> Outcome:
    """Run ``func(**kwargs)`` here (a worker) and describe what happened.

    ``modules`` are the user modules the task reaches, as the kernel holds them
    (code and state, sent by value): an ``import`` inside the task finds them,
    not the files on disk, which may differ from what the kernel loaded.
    """
    for module in modules:
        sys.modules[module.__name__] = module
    with counting_interrupts():
        outcome = run_body(func, kwargs, _recorded_streams)
    error = None if outcome.error is None else _portable(outcome.error)
    return replace(outcome, error=error, lane=f"pid {os.getpid()}", remote=True)


def run_pickled(payload: bytes) -> bytes:
    """:func:`run_remote` on ``(func, kwargs, modules)`` pickled by the kernel; its :class:`Outcome`, pickled.

    Whatever fails on the way in (the payload cannot be loaded here) or out
    (the value cannot be pickled back) is that task's error, described.
    """
    try:
        func, kwargs, modules = pickle.loads(payload)
    except Exception as exc:  # a class or module the worker cannot import
        return _pickled(Outcome(error=_portable(exc), lane=f"pid {os.getpid()}", remote=True))
    outcome = run_remote(func, kwargs, modules)
    try:
        return _pickled(outcome)
    except Exception as exc:  # the value (or the exception) cannot travel back
        return _pickled(
            Outcome(
                error=_portable(exc), captured=outcome.captured, costs=outcome.costs, lane=outcome.lane, remote=True
            )
        )


def _pickled(outcome: Outcome) -> bytes:
    import cloudpickle  # notebook classes in a value or an exception travel by value

    data: bytes = cloudpickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    return data


class WorkerActor:
    """A dask actor, one per worker: runs task bodies there, sent to it directly by the kernel.

    An actor call is one round trip between the kernel and the worker, and
    its reply carries the outcome; a task submitted through the scheduler
    costs several (the graph update, the worker's report, the scheduler's
    word to the client, fetching the result). Bodies run on the worker's own
    thread pool, so a worker of N threads runs N tasks at once, beside any
    other dask work it has.
    """

    def __init__(self) -> None:
        from distributed import get_worker

        self._pool = get_worker().executors["default"]

    async def run(self, payload: bytes) -> bytes:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self._pool, run_pickled, payload)


def _portable(exc: BaseException) -> BaseException:
    """The exception, carrying its traceback as text and its frames' code origins; a stand-in if it
    cannot be pickled."""
    import cloudpickle  # what loky carries results back with: it sends notebook classes by value

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    frames = _frame_origins(exc)
    try:
        pickle.loads(cloudpickle.dumps(exc))
    except Exception:
        exc = RemoteError(f"{type(exc).__qualname__}: {exc}")
    exc.remote_traceback = text  # type: ignore[attr-defined]
    exc.remote_frames = frames  # type: ignore[attr-defined]
    return exc


_Frame = tuple[str, int, str]  # file name as the worker saw it, line, function name


def _frame_origins(exc: BaseException) -> dict[_Frame, int]:
    """Each frame of ``exc`` and the exceptions chained to it, mapped to its code's first line."""
    origins: dict[_Frame, int] = {}
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for frame, line in traceback.walk_tb(exc.__traceback__):
            code = frame.f_code
            origins[(code.co_filename, line, code.co_name)] = code.co_firstlineno
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return origins


_FRAME = re.compile(r'  File "(?P<file>.+)", line (?P<line>\d+), in (?P<name>.+)$')


def with_kernel_source(outcome: Outcome, func: Callable[..., Any] | None = None) -> Outcome:
    """``outcome``, its error's worker traceback naming the kernel's files (the notebook's cells)
    for code of ``func`` and the notebook, with their source lines from this process."""
    text = getattr(outcome.error, "remote_traceback", None)
    if not text:
        return outcome
    frames = getattr(outcome.error, "remote_frames", {})
    files = _code_files(func) if frames and func is not None else {}
    lines, shown = text.splitlines(keepends=True), []
    for i, line in enumerate(lines):
        frame = _FRAME.match(line.rstrip("\n"))
        if frame is None:
            shown.append(line)
            continue
        where = (frame["file"], int(frame["line"]), frame["name"])
        file = files.get((where[2], frames.get(where, -1)), where[0])
        shown.append(line.replace(f'File "{where[0]}"', f'File "{file}"', 1))
        if not (i + 1 < len(lines) and lines[i + 1].startswith("    ")):  # the worker had no source
            source = linecache.getline(file, where[1]).strip()
            if source:
                shown.append(f"    {source}\n")
    outcome.error.remote_traceback = "".join(shown)  # type: ignore[union-attr]
    return outcome


def _code_files(func: Callable[..., Any]) -> dict[tuple[str, int], str]:
    """(function name, first line) -> file name, for the code of ``func`` and of the functions and
    classes of its module's namespace (the notebook's, for a task), nested code included."""
    codes: list[Any] = []
    namespace = getattr(func, "__globals__", {})
    for value in [func, *list(namespace.values())]:
        if isinstance(value, type):
            codes.extend(_code_of(member) for member in vars(value).values())
        else:
            codes.append(_code_of(value))
    files: dict[tuple[str, int], str] = {}
    while codes:
        code = codes.pop()
        if code is None or (code.co_name, code.co_firstlineno) in files:
            continue
        files[(code.co_name, code.co_firstlineno)] = code.co_filename
        codes.extend(const for const in code.co_consts if isinstance(const, types.CodeType))
    return files


def _code_of(value: Any) -> Any:
    try:  # any notebook value: a proxy's __getattr__ may raise anything
        value = getattr(value, "__func__", value)  # methods, classmethods, staticmethods
        value = getattr(value, "__wrapped__", value)
        code = getattr(value, "__code__", None)
    except Exception:
        return None
    return code if isinstance(code, types.CodeType) else None
