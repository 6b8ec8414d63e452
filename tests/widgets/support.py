"""Helpers of the widget tests: a recording comm, a fake clock, notebook-like sessions.

No kernel runs here. ipywidgets 8 opens every widget's comm with
``comm.create_comm(**args)``; the ``comms`` fixture (``conftest.py``)
makes that return a :class:`RecordingComm`, which keeps every message a
widget would have sent to a frontend, so tests count ``comm_msg`` updates
and their size. :class:`FakeClock` stands in for ``time.monotonic`` and the
timer of a :class:`~dagnb.widgets.live.LiveFeed`: time moves only when a
test says so, and a due timer fires then, in the test's thread.
"""

from __future__ import annotations

import ast
import itertools
import json
import linecache
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import comm

import dagnb
from dagnb.events import Event, EventBus
from dagnb.widgets.live import LiveFeed

# A measured time as the views print it (``1.52 s``, ``38 ms``, ``120 µs``, ``2 min 5 s``).
DURATION = re.compile(r"\d+(\.\d+)? ?(s|ms|µs|us|min)\b")
NUM_SPAN = re.compile(r'<span class="dagnb-num">[^<]*</span>')
_STYLE = re.compile(r"<style>.*?</style>", re.DOTALL)


def durations(html: str) -> list[str]:
    """Measured times shown in ``html`` outside masked numbers and the stylesheet (its ``1s`` is CSS)."""
    shown = NUM_SPAN.sub("", _STYLE.sub("", html))
    return [m.group(0) for m in DURATION.finditer(shown)]

SANITIZE_CFG = Path(__file__).resolve().parents[2] / "extension" / "nbval" / "sanitize.cfg"


def sanitize_patterns() -> list[tuple[str, str]]:
    """The (regex, replacement) pairs of the project's nbval config, parsed the way nbval parses them."""
    from nbval.plugin import get_sanitize_patterns

    return get_sanitize_patterns(SANITIZE_CFG.read_text(encoding="utf-8"))


def nbval_sanitize(text: str) -> str:
    """``text`` as nbval compares it (every rule of ``sanitize.cfg``, in file order)."""
    for regex, replace in sanitize_patterns():
        text = re.sub(regex, replace, text)
    return text


# --------------------------------------------------------------------- comms


@dataclass
class Message:
    comm_id: str
    msg_type: str
    data: dict[str, Any]

    @property
    def size(self) -> int:
        """Bytes of the JSON payload a kernel would send."""
        return len(json.dumps(self.data, default=str).encode())

    @property
    def is_update(self) -> bool:
        return self.msg_type == "comm_msg" and self.data.get("method") == "update"


@dataclass
class CommLog:
    """Every message published by any widget comm while the fixture is active."""

    messages: list[Message] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.messages)

    def updates(self, since: int = 0) -> list[Message]:
        return [m for m in self.messages[since:] if m.is_update]

    def opened(self, since: int = 0) -> list[Message]:
        return [m for m in self.messages[since:] if m.msg_type == "comm_open"]


class RecordingComm(comm.DummyComm):
    """A comm with no frontend that logs what it publishes (``log`` is set per fixture)."""

    log: CommLog

    def publish_msg(
        self,
        msg_type: str,
        data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        **keys: Any,
    ) -> None:
        self.log.messages.append(Message(self.comm_id, msg_type, dict(data or {})))


# --------------------------------------------------------------------- clock


class FakeClock:
    """A monotonic clock and a timer scheduler that move only in :meth:`advance`."""

    def __init__(self) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.scheduled = 0

    def __call__(self) -> float:
        return self.now

    def schedule(self, delay: float, fn: Callable[[], None]) -> None:
        self.scheduled += 1
        self.timers.append((self.now + delay, fn))

    def advance(self, seconds: float) -> None:
        """Move time on; fire, in due order, every timer that is due by then."""
        self.now += seconds
        due = sorted((t for t in self.timers if t[0] <= self.now), key=lambda t: t[0])
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, fn in due:
            fn()

    def ticker(self, seconds: float) -> Callable[[Event], None]:
        """A bus subscriber that advances the clock by ``seconds`` at every event."""
        return lambda _event: self.advance(seconds)


def fake_feed(view: Any, bus: EventBus, clock: FakeClock, interval: float = 0.25) -> LiveFeed:
    """Replace a view's own feed (real clock, thread timers) by one on ``clock``."""
    if getattr(view, "feed", None) is not None:
        view.feed.stop()
    view.feed = LiveFeed(bus, view, interval=interval, clock=clock, schedule=clock.schedule)
    return view.feed


# ------------------------------------------------------------------ sessions

_cells = itertools.count(1)

NOTE = """
def note(name):
    with open(LOG, "a") as handle:
        handle.write(name + "\\n")
"""

DIAMOND = [
    "def a():\n    note('a')\n    return 2\n",
    "def b(a):\n    note('b')\n    return a * 10\n",
    "def c(a):\n    note('c')\n    return a + 1\n",
    "def d(b, c):\n    note('d')\n    return b + c\n",
]


class Session:
    """A notebook-like session over :class:`dagnb.Graph`, without IPython.

    Task bodies call ``note("name")``, which appends to a log file, so tests
    count executions there (a counter the task code referenced would be
    hashed into its key).
    """

    def __init__(self, root: Path, cache: bool = True, cache_name: str = "cache") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.log = root / "log.txt"
        self.ns: dict[str, Any] = {"LOG": str(self.log), "__name__": "__main__"}
        self.cell(NOTE)
        self.graph = dagnb.Graph(cache_dir=str(root / cache_name) if cache else None, namespace=self.ns)

    def cell(self, source: str) -> None:
        """Execute ``source`` as a notebook cell (registered in linecache like IPython does)."""
        filename = f"<widget-cell-{next(_cells)}>"
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self.ns)  # noqa: S102

    def task(self, source: str) -> str:
        """A ``%%task`` cell; returns the task's name."""
        (node,) = [n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        self.cell(source)
        self.graph.task(self.ns[node.name])
        return node.name

    def tasks(self, sources: list[str]) -> list[str]:
        return [self.task(s) for s in sources]

    def runs(self) -> list[str]:
        """Task bodies executed so far, in order."""
        return self.log.read_text().split() if self.log.exists() else []


def diamond(root: Path, cache: bool = True) -> Session:
    """::

        a --> b --> d
         \\         ^
          `-> c ---'
    """
    session = Session(root, cache=cache)
    session.tasks(DIAMOND)
    return session


def layered_upstream(n: int, width: int, seed: int = 0) -> list[list[int]]:
    """Tasks in layers of ``width``; each task past the first layer reads 1 or 2 of the layer before."""
    rng = random.Random(seed)
    edges: list[list[int]] = []
    for i in range(n):
        layer = i // width
        if layer == 0:
            edges.append([])
            continue
        previous = range((layer - 1) * width, layer * width)
        edges.append(sorted(rng.sample(previous, rng.choice((1, 2)))))
    return edges


def define_noop_tasks(graph: dagnb.Graph, edges: list[list[int]]) -> list[str]:
    """Define ``t0 … tN`` (no-op bodies; ``t_i`` reads ``t_j`` for j in ``edges[i]``) in one cell."""
    source = "".join(
        f"def t{i}({', '.join(f't{j}' for j in ups)}):\n    return None\n" for i, ups in enumerate(edges)
    )
    filename = f"<widget-cell-{next(_cells)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)  # noqa: S102
    names = [f"t{i}" for i in range(len(edges))]
    for name in names:
        graph.task(namespace[name])
    return names


# ------------------------------------------------------------------ parsing

_TASK_G = re.compile(r'<g class="dagnb-task s-([\w-]+)" data-task="([^"]*)" data-status="([\w-]+)"')


def graph_statuses(html: str) -> dict[str, str]:
    """Task -> status of every task box in a graph SVG (checks class and data attribute agree)."""
    found = {}
    for cls, task, status in _TASK_G.findall(html):
        assert cls == status, f"box of {task} has class s-{cls} but data-status {status}"
        assert task not in found, f"two boxes for {task}"
        found[task] = status
    return found


def table_tasks(html: str) -> list[str]:
    """The task column of a costs table, top to bottom."""
    return re.findall(r"<tr><td><code>([^<]*)</code></td>", html)


_BAR = re.compile(r'<div class="dagnb-bar" role="progressbar" aria-valuenow="(\d+)" aria-valuemax="(\d+)"')
_SEGMENT = re.compile(r'<span class="dagnb-seg" data-status="([\w-]+)" data-count="(\d+)"')


def progress_of(html: str) -> tuple[int, int, dict[str, int]]:
    """``(tasks finished, tasks in the run, finished tasks per status)`` of a progress bar; the segments
    must add up to the tasks finished."""
    bars = _BAR.findall(html)
    assert len(bars) == 1, f"{len(bars)} progress bars in {html!r}"
    segments = {status: int(count) for status, count in _SEGMENT.findall(html)}
    done, total = int(bars[0][0]), int(bars[0][1])
    assert sum(segments.values()) == done, (segments, done)
    return done, total, segments
