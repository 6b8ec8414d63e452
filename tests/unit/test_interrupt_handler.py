"""The SIGINT handler a run puts in place: from its first task body on, never for a run of cache hits.

A task body reads the handler itself (``signal.getsignal``), and the calls
to ``signal.signal`` are counted, so these tests see what the process did.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import pytest

from dagnb import Graph
from dagnb.cache.store import MemoryStore

SEEN: list[Any] = []  # the SIGINT handler as each task body saw it


def a() -> int:
    sys.modules[__name__].SEEN.append(signal.getsignal(signal.SIGINT))  # not a global the key reads
    return 1


def b(a: int) -> int:
    sys.modules[__name__].SEEN.append(signal.getsignal(signal.SIGINT))  # not a global the key reads
    return a + 1


def _graph(store: MemoryStore) -> Graph:
    graph = Graph(store=store)
    graph.task(a)
    graph.task(b)
    return graph


def test_a_run_counts_ctrl_c_while_bodies_run_and_a_run_of_hits_changes_no_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = signal.getsignal(signal.SIGINT)
    store = MemoryStore()
    _graph(store).run()
    assert len(SEEN) == 2 and all(type(h).__name__ == "_Counting" for h in SEEN), SEEN
    assert signal.getsignal(signal.SIGINT) is before, "the handler is put back when the run ends"
    calls: list[Any] = []
    real = signal.signal
    monkeypatch.setattr(signal, "signal", lambda *args: calls.append(args) or real(*args))
    restarted = _graph(store)  # a new session over the same values: every task a cache hit
    report = restarted.run()
    assert report.cached == ["a", "b"] and restarted["b"] == 2
    assert calls == [] and len(SEEN) == 2, "no body ran, and no handler was changed"
