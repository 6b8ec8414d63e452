"""Recording what a task prints, so a cache hit can show it again.

Output is *teed*: it still appears live while the task runs, and a copy is
kept as nbformat-style outputs (``stream`` and ``display_data`` dicts) that
are stored with the task's cache entry and replayed on a hit. This module is
the IPython-free default (streams only); the notebook glue adds displays.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, TextIO

__all__ = ["OutputLog", "capture_streams", "current_log", "replay_streams"]


class OutputLog(list):  # type: ignore[type-arg]
    """Outputs in order, consecutive stream text merged."""

    def stream(self, name: str, text: str) -> None:
        if self and self[-1].get("output_type") == "stream" and self[-1]["name"] == name:
            self[-1]["text"] += text
        elif text:
            self.append({"output_type": "stream", "name": name, "text": text})

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self.append({"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})})


_log: ContextVar[OutputLog | None] = ContextVar("dagnb_output_log", default=None)
_lock = threading.Lock()
_installed: list[Any] = []  # [depth, saved stdout, saved stderr] while any capture is active
_tees: dict[str, tuple[Any, _Tee]] = {}  # per stream name: the last stream teed, and its tee (made once, reused)


def current_log() -> OutputLog | None:
    """The log of the task running in this thread (or, for an async task, this asyncio task), if any."""
    return _log.get()


class _Tee:
    """Writes through to the real stream and into the running task's log."""

    def __init__(self, original: TextIO, name: str) -> None:
        self._original, self._name = original, name

    def write(self, text: str) -> int:
        log = current_log()
        if log is not None:
            log.stream(self._name, text)
        return self._original.write(text)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._original, attr)


def _tee(stream: Any, name: str) -> _Tee:
    """A tee of ``stream``: the one made last time when it is the same stream (a run swaps streams per task)."""
    teed, tee = _tees.get(name, (None, None))
    if teed is not stream or tee is None:
        tee = _Tee(stream, name)
        _tees[name] = (stream, tee)
    return tee


class capture_streams:  # noqa: N801 - used like a function: ``with capture_streams() as log``
    """Tee ``sys.stdout`` and ``sys.stderr`` into a fresh :class:`OutputLog`.

    The streams are swapped once while any capture is active, and each
    thread (each asyncio task) records into its own log, so tasks running at
    once on a thread pool or an event loop keep their outputs apart, and the
    streams are restored exactly. A small class rather than a generator
    context manager: it wraps every task, so its own cost is kept to about a
    microsecond.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> OutputLog:
        log = OutputLog()
        with _lock:
            if not _installed:
                _installed[:] = [0, sys.stdout, sys.stderr]
                sys.stdout = _tee(sys.stdout, "stdout")
                sys.stderr = _tee(sys.stderr, "stderr")
            _installed[0] += 1
        self._token = _log.set(log)
        return log

    def __exit__(self, *exc: object) -> None:
        _log.reset(self._token)
        with _lock:
            _installed[0] -= 1
            if _installed[0] == 0:
                sys.stdout, sys.stderr = _installed[1], _installed[2]
                _installed.clear()


def replay_streams(captured: list[dict[str, Any]], show: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Show captured outputs again: streams as text, displays through ``show``.

    Without ``show`` (no notebook frontend) a display prints its text/plain.
    """
    for out in captured:
        if out["output_type"] == "stream":
            (sys.stderr if out["name"] == "stderr" else sys.stdout).write(out["text"])
        elif show is not None:
            show(out)
        else:
            print(out["data"].get("text/plain", ""))
