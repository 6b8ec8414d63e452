"""Shared pieces of the dagnb benchmarks: sizes, best-of-N timing, result rows.

Every benchmark module returns :class:`Row` objects (and may add
:class:`Table` objects, such as scaling curves); ``run.py`` renders the rows
as one Markdown table and each table after it. Timings of the Python API are
the *best* of N repetitions measured with ``time.perf_counter`` (the minimum
is the least noisy estimate of what the code costs when nothing else gets in
the way); N stays small so the whole suite fits in a few minutes on a 2-core
machine. The rows on the user's path (a real kernel, ``bench_kernel.py``)
and ``bench_values.py`` report *medians* of interleaved runs instead: a
notebook run takes seconds, and on a shared machine the median of runs that
alternate between dagnb and its peer is what a user would see.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
import traceback
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
    full: bool = False  # also the largest sizes of the scaling curves (N = 5,000), which take long

    @classmethod
    def choose(cls, quick: bool, full: bool = False) -> Sizes:
        if quick:
            return cls(True, 32 * 2**20, 200_000, 200, 10 * 10**6, 3, 2)
        return cls(False, 256 * 2**20, 2_000_000, 1_000, 10 * 10**6, 5, 3, full)


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
    failed: bool = False  # the measurement itself failed (a crash, a hang): ``run.py`` then exits with 1


@dataclass(frozen=True)
class Table:
    """A table of its own after the rows, such as a scaling curve (N -> time)."""

    title: str
    header: tuple[str, ...]
    lines: list[tuple[str, ...]]
    note: str = ""


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


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def interleaved(count: int, *names: str) -> list[list[str]]:
    """``count`` rounds of ``names``, each round starting one further along (a, b, c; b, c, a; ...).

    Alternating the order spreads a loaded machine's slow moments over
    dagnb and its peers alike, instead of over whichever always runs last.
    """
    return [[names[(r + i) % len(names)] for i in range(len(names))] for r in range(count)]


def guarded(name: str, measure: Callable[[], list[Row] | None]) -> list[Row]:
    """The rows ``measure`` returns; if it crashes or times out, one failed row saying so (traceback on stderr).

    A benchmark that drives a kernel can meet a dagnb bug (a crash, a hang);
    the other measurements still run, and ``run.py`` exits with 1.
    """
    started = time.perf_counter()
    try:
        return measure() or []
    except Exception as exc:  # noqa: BLE001 - reported as a failed row
        traceback.print_exc(file=sys.stderr)
        text = " ".join(str(exc).split())[:300]
        return [Row(f"{name}: the measurement failed", f"{type(exc).__name__}: {text}", "—", None, "—", False,
                    failed=True)]
    finally:
        print(f"  [{name}: {time.perf_counter() - started:.1f} s]", file=sys.stderr, flush=True)


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
        shown_ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x" if row.ratio >= 0.1 else f"{row.ratio:.2g}x"
        met = "**failed**" if row.failed else {True: "yes", False: "**no**", None: "—"}[row.met]
        lines.append(f"| {row.metric} | {row.dagnb} | {row.peer} | {shown_ratio} | {row.goal} | {met} |")
    return "\n".join(lines)


def render_curve(table: Table) -> str:
    """A :class:`Table` as a titled Markdown table, its note below."""
    lines = [f"### {table.title}", "", "| " + " | ".join(table.header) + " |",
             "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(line) + " |" for line in table.lines]
    return "\n".join(lines + ([f"\n{table.note}"] if table.note else []))


def user_environment(**extra: str) -> dict[str, str]:
    """This process's environment with ``extra``, and Python's bytecode cache on, as on a user's machine.

    ``pip install`` writes every module's bytecode, and Python writes it for an
    editable install on first import. With ``PYTHONDONTWRITEBYTECODE`` set (CI
    machines set it), every kernel or command timed with its start-up would
    compile dagnb's modules from source (about 75 ms), while the peers'
    installed bytecode loads.
    """
    return {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, **extra}
