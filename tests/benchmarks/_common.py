"""Shared pieces of the dagnb benchmarks: sizes, best-of-N timing, result rows.

Every benchmark module returns :class:`Row` objects; ``run.py`` renders them
as one Markdown table. Timings are the *best* of N repetitions measured with
``time.perf_counter`` (the minimum is the least noisy estimate of what the
code costs when nothing else gets in the way); N stays small so the whole
suite fits in a few minutes on a 2-core machine.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """Problem sizes and repetition counts; ``quick`` shrinks everything."""

    quick: bool
    array_bytes: int
    frame_rows: int
    tasks: int
    memory_input_bytes: int
    repeat: int
    slow_repeat: int

    @classmethod
    def choose(cls, quick: bool) -> Sizes:
        if quick:
            return cls(True, 32 * 2**20, 200_000, 200, 10 * 10**6, 3, 2)
        return cls(False, 256 * 2**20, 2_000_000, 1_000, 10 * 10**6, 5, 3)


@dataclass(frozen=True)
class Row:
    """One line of the results table.

    ``ratio`` is always *peer time / dagnb time*: above 1 means dagnb is faster.
    ``met`` is ``None`` when the row has no goal (reported for information).
    """

    metric: str
    dagnb: str
    peer: str
    ratio: float | None
    goal: str
    met: bool | None


def best_of(work: Callable[[T], Any], setup: Callable[[], T], repeat: int) -> float:
    """Best wall time in seconds of ``work(setup())`` over ``repeat`` runs; setup is not timed."""
    best = float("inf")
    for _ in range(repeat):
        state = setup()
        gc.collect()
        started = time.perf_counter()
        work(state)
        best = min(best, time.perf_counter() - started)
    return best


def best_of_call(work: Callable[[], Any], repeat: int) -> float:
    """Best wall time in seconds of ``work()`` over ``repeat`` runs."""
    return best_of(lambda _: work(), lambda: None, repeat)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def us_per(seconds: float, count: int) -> str:
    return f"{seconds * 1e6 / count:.1f} µs/task"


def gb_per_s(nbytes: int, seconds: float) -> str:
    return f"{nbytes / seconds / 1e9:.1f} GB/s"


def ratio(peer_seconds: float, dagnb_seconds: float) -> float:
    return peer_seconds / dagnb_seconds if dagnb_seconds > 0 else float("inf")


def render_table(rows: list[Row]) -> str:
    """The Markdown table: metric, dagnb, peer, ratio, goal, met?"""
    lines = [
        "| metric | dagnb | peer | ratio (peer/dagnb time) | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        shown_ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x"
        met = {True: "yes", False: "**no**", None: "—"}[row.met]
        lines.append(f"| {row.metric} | {row.dagnb} | {row.peer} | {shown_ratio} | {row.goal} | {met} |")
    return "\n".join(lines)
