"""Recording what a task prints, so a cache hit can show it again.

Output is *teed*: it still appears live while the task runs, and a copy is
kept as nbformat-style outputs (``stream`` and ``display_data`` dicts) that
are stored with the task's cache entry and replayed on a hit. This module is
the IPython-free default (streams only); the notebook glue adds displays.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = ["OutputLog", "capture_streams", "replay_streams"]


class OutputLog(list):  # type: ignore[type-arg]
    """Outputs in order, consecutive stream text merged."""

    def stream(self, name: str, text: str) -> None:
        if self and self[-1].get("output_type") == "stream" and self[-1]["name"] == name:
            self[-1]["text"] += text
        elif text:
            self.append({"output_type": "stream", "name": name, "text": text})

    def display(self, data: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self.append({"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})})


class _Tee:
    def __init__(self, original: TextIO, log: OutputLog, name: str) -> None:
        self._original, self._log, self._name = original, log, name

    def write(self, text: str) -> int:
        self._log.stream(self._name, text)
        return self._original.write(text)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._original, attr)


@contextlib.contextmanager
def capture_streams() -> Iterator[OutputLog]:
    """Tee ``sys.stdout`` and ``sys.stderr`` into an :class:`OutputLog`."""
    log = OutputLog()
    with contextlib.redirect_stdout(_Tee(sys.stdout, log, "stdout")):  # type: ignore[type-var]
        with contextlib.redirect_stderr(_Tee(sys.stderr, log, "stderr")):  # type: ignore[type-var]
            yield log


def replay_streams(
    outputs: list[dict[str, Any]], show: Callable[[dict[str, Any]], None] | None = None
) -> None:
    """Show recorded outputs again: streams as text, displays through ``show``.

    Without ``show`` (no notebook frontend) a display prints its text/plain.
    """
    for out in outputs:
        if out["output_type"] == "stream":
            (sys.stderr if out["name"] == "stderr" else sys.stdout).write(out["text"])
        elif show is not None:
            show(out)
        else:
            print(out["data"].get("text/plain", ""))
