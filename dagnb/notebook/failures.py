"""IPython glue: how an error reaches the cell.

A :class:`DagnbError` is shown as one paragraph (``UnresolvedParameter: Task
`model` has ...``), no traceback, but as a real error output, so nbclient,
``jupyter execute`` and nbval (``--nbval-lax`` included) fail the cell;
IPython's ``UsageError`` would only print to stderr. A task that raises
becomes ``TaskFailed``, shown after what the run did (its report) as the
user's own traceback with dagnb's frames removed.

Invariants:

* dagnb's frames are those of any file under the package folder (rooms
  included): this module sits one folder below it.
* An error already given its rendering (``_render_traceback_``) by an inner
  guard passes through an outer one unchanged, so it is shown once.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from dagnb.errors import DagnbError, TaskFailed
from dagnb.notebook.outputs import show_report

__all__ = ["cell_error", "task_failures", "usage_errors"]

# dagnb's own frames are trimmed from a task's traceback: any file under the package folder.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cell_error(exc: DagnbError) -> DagnbError:
    """``exc``, shown by IPython as its one-paragraph message instead of a traceback."""
    line = f"{type(exc).__name__}: {exc}"
    exc._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
    return exc


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """A :class:`DagnbError` raised inside, shown as its one paragraph."""
    try:
        yield
    except DagnbError as exc:
        if isinstance(exc, TaskFailed) or hasattr(exc, "_render_traceback_"):
            raise
        raise cell_error(exc).with_traceback(None) from None


@contextlib.contextmanager
def task_failures(shell: Any) -> Iterator[None]:
    """Show what the run did (so ``dagnb run`` can read it), then the failing task's own
    traceback with dagnb's frames removed, as ``TaskFailed``."""
    try:
        yield
    except TaskFailed as failure:
        if hasattr(failure, "_render_traceback_"):  # shown by an inner guard (`%dag run` has two)
            raise
        report = getattr(failure, "report", None)
        if report is not None:
            show_report(report)
        error = failure.error
        remote = getattr(error, "remote_traceback", None)  # raised in a worker process
        if remote is not None:
            lines = [remote.rstrip(), f"TaskFailed: {failure}"]
        else:
            tb = _user_frames(error.__traceback__)
            lines = [
                *shell.InteractiveTB.structured_traceback(type(error), error, tb, tb_offset=0),
                f"TaskFailed: {failure}",
            ]
        failure._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
        raise failure.with_traceback(None) from None


def _user_frames(tb: Any) -> Any:
    while tb is not None and _is_dagnb_file(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _is_dagnb_file(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)
