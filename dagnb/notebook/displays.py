"""IPython glue: what a task displays while it runs goes into its log.

A task's log (:class:`dagnb.run.capture.OutputLog`) holds what it printed and
displayed, so a value loaded from the cache later shows the same outputs.
Streams are teed by :func:`dagnb.run.capture.capture_streams`; displays are
copied here from the shell's display publisher, and matplotlib figures a
task opened and left open become displays of that task, as in a plain cell.

Invariants:

* The publisher is wrapped once however many tasks run at once (threads,
  async tasks), and restored when the last of them ends: a count per
  publisher, under a lock.
* A display goes to the log of the task that published it (the log of the
  running context), never to another's; updates of a display are not copied.
* matplotlib is looked at only if the notebook imported it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

from dagnb.run.capture import OutputLog, capture_streams, current_log

__all__ = ["capture"]


@contextlib.contextmanager
def capture(shell: Any) -> Iterator[OutputLog]:
    """Tee streams and displays into a log; turn new matplotlib figures into displays."""
    figures = _figure_numbers()
    with capture_streams() as log, _recording_displays(shell.display_pub):
        yield log
        _show_new_figures(figures)


_recording: dict[int, list[Any]] = {}
_recording_lock = threading.Lock()


@contextlib.contextmanager
def _recording_displays(pub: Any) -> Iterator[None]:
    """While any task runs, copy what ``pub`` publishes into the running task's log."""
    with _recording_lock:
        if id(pub) not in _recording:
            original = pub.publish

            def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
                log = current_log()
                if log is not None and not kwargs.get("update"):
                    log.display(data, metadata)
                return original(data, metadata, *args, **kwargs)

            pub.publish = publish
            _recording[id(pub)] = [0]
        _recording[id(pub)][0] += 1
    try:
        yield
    finally:
        with _recording_lock:
            _recording[id(pub)][0] -= 1
            if _recording[id(pub)][0] == 0:
                del _recording[id(pub)]
                del pub.publish


def _figure_numbers() -> set[int]:
    plt = sys.modules.get("matplotlib.pyplot")
    return set(plt.get_fignums()) if plt is not None else set()


def _show_new_figures(before: set[int]) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    from IPython.display import display

    for number in sorted(set(plt.get_fignums()) - before):
        figure = plt.figure(number)
        display(figure)
        plt.close(figure)
