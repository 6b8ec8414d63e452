"""Running one task body in a worker process (``processes`` and ``dask`` backends).

:func:`run_remote` is what a worker executes: the task's function on its
inputs, with stdout and stderr recorded, costs measured and the output
fingerprinted there (hashing a large value happens in parallel, not in the
kernel). Everything it returns is pickled back to the kernel, which alone
writes the cache and binds values. An error comes back as the user's
exception with the worker's traceback as text, since tracebacks do not
cross processes; back in the kernel, :func:`with_kernel_source` adds the
source lines the worker could not read (the notebook's cells live in the
kernel's linecache only).
"""

from __future__ import annotations

import contextlib
import io
import linecache
import os
import pickle
import re
import traceback
from collections.abc import Callable
from typing import Any

from .capture import OutputLog
from .costs import measure, value_nbytes
from .errors import Unfingerprintable
from .executor import Outcome
from .hashing import fingerprint

__all__ = ["RemoteError", "run_remote", "with_kernel_source"]


class RemoteError(Exception):
    """A worker's exception that could not be pickled back: its type, message and traceback."""


class _Recorder(io.TextIOBase):
    def __init__(self, log: OutputLog, name: str) -> None:
        self._log, self._name = log, name

    def write(self, text: str) -> int:
        self._log.stream(self._name, text)
        return len(text)


def run_remote(func: Callable[..., Any], kwargs: dict[str, Any]) -> Outcome:
    """Run ``func(**kwargs)`` here (a worker) and describe what happened."""
    log = OutputLog()
    worker = f"pid {os.getpid()}"
    try:
        with contextlib.redirect_stdout(_Recorder(log, "stdout")), \
                contextlib.redirect_stderr(_Recorder(log, "stderr")), measure() as cost:
            value = func(**kwargs)
    except Exception as exc:
        return Outcome(error=_portable(exc), outputs=list(log), duration=cost.duration, started=cost.started,
                       cpu_time=cost.cpu_time, worker=worker, remote=True)
    try:
        output = fingerprint(value)
    except Unfingerprintable:
        output = None
    return Outcome(value, output, list(log), cost.duration, None, cost.started, cost.cpu_time, cost.peak_memory,
                   value_nbytes(value), worker, remote=True)


def _portable(exc: BaseException) -> BaseException:
    """The exception, carrying its traceback as text; a stand-in if it cannot be pickled."""
    import cloudpickle  # what loky carries results back with: it sends notebook classes by value

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickle.loads(cloudpickle.dumps(exc))
    except Exception:
        exc = RemoteError(f"{type(exc).__qualname__}: {exc}")
    exc.remote_traceback = text  # type: ignore[attr-defined]
    return exc


_FRAME = re.compile(r'  File "(?P<file>.+)", line (?P<line>\d+), in ')


def with_kernel_source(outcome: Outcome) -> Outcome:
    """``outcome``, its error's worker traceback completed with source lines from this process."""
    text = getattr(outcome.error, "remote_traceback", None)
    if not text:
        return outcome
    lines, shown = text.splitlines(keepends=True), []
    for i, line in enumerate(lines):
        shown.append(line)
        frame = _FRAME.match(line)
        if frame and not (i + 1 < len(lines) and lines[i + 1].startswith("    ")):  # the worker had no source
            source = linecache.getline(frame["file"], int(frame["line"])).strip()
            if source:
                shown.append(f"    {source}\n")
    outcome.error.remote_traceback = "".join(shown)  # type: ignore[union-attr]
    return outcome
