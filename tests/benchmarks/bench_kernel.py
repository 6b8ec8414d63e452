"""Issue 16's measurements on the user's path: notebooks in a real kernel, through the magics.

Every number here comes from a real ipykernel driven over ZMQ one cell at a
time, as nbclient and JupyterLab drive it (``_kernel.py``), with dagnb's
default disk cache (``DAGNB_CACHE_DIR``, a fresh directory per notebook).
The notebooks are the chain and the fan of ``_notebooks.py``, as ``%%task``
cells, as plain cells and as ``joblib.Memory`` cells with the same bodies.

1. **Restart & Run All, all hits.** Each variant's notebook is run once to
   fill its cache (untimed), then again in a new kernel per repetition,
   dagnb, plain and joblib in rotating order. Time: at the client, from
   the first cell's request to the last cell's idle (the kernel's start,
   the same for all three, is not counted). Every ``%%task`` cell of a
   timed run must report its task ``cached``.
2. **A cached ``%%task`` cell, per cell**, from the same runs: the mean of
   the kernel's own time (``execute_input`` to ``execute_reply``, what
   nbclient records) over the last ``max(5, N/10)`` cells, minus the same
   cells of the plain notebook.
3. **Run history** after the filling Run All of the chain: rows and
   metadata size (read through ``Graph.history``), then ``%dag history
   --diff FIRST LAST`` and ``%dag run --as-of LAST`` in a kernel whose tasks
   are defined with ``%%task --no-run`` (which records no run).
4. **Definitions and first run.** A new kernel defines the N tasks with
   ``%%task --no-run`` cells (each timed; a plain ``def`` cell after every
   tenth), then runs ``%dag run`` (all N execute into an empty cache) and
   dask's ``get_sync`` over the same functions, in alternating order. The
   k-th definition is the median of cells k-4..k over all sessions of at
   least k tasks.

Repetitions (each a new kernel; medians): 5 up to N = 100, 3 at N = 1,000
(a chain's Restart & Run All takes over half a minute), 1 beyond, as the
rows and tables say; the load average before and after each measurement is
in the tables. ``--quick`` runs N = 20 and 40 once. ``--full`` adds
N = 5,000 (a chain's Restart & Run All then takes many minutes).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import Row, Sizes, Table, guarded, interleaved, median
from _kernel import Cell, Kernel, kernel
from _notebooks import SHAPES, VARIANTS, cell, dask_graph, notebook, own_statuses

import dagnb
from dagnb.scope import Scope

CELL_TIMEOUT = 1800.0  # seconds: a cell of the N = 5,000 chain may take a while, a hang must not
GOAL_RUN_ALL_OVER_PLAIN = 1.5
GOAL_CACHED_OVER_PLAIN_MS = 2.0
GOAL_DEFINITION_MS = 3.0
GOAL_DEFINITION_GROWTH = 1.5
GOAL_HISTORY_MS = 50.0


@dataclass(frozen=True)
class Plan:
    """Sizes of this suite, from the shared :class:`Sizes`."""

    run_all: tuple[int, ...]  # N of Restart & Run All and of the cached-cell curve
    first: tuple[int, ...]  # N of the definition and first-run sessions
    definitions: tuple[int, ...]  # k of the definition rows
    headline: int  # N of the rows (1,000 in the issue)
    quick: bool

    @classmethod
    def of(cls, sizes: Sizes) -> Plan:
        if sizes.quick:
            return cls((20,), (20, 40), (20, 40), 20, True)
        big = (5_000,) if sizes.full else ()  # in the curves; the rows keep the sizes
        return cls((10, 100, 1_000, *big), (10, 100, 1_000, 2_000, *big), (20, 100, 1_000, 2_000), 1_000, False)

    def repeats(self, n: int) -> int:
        """Timed runs (each a new kernel) per size: 5 up to N = 100, 3 at 1,000, 1 beyond (minutes each)."""
        if self.quick or n > 1_000:
            return 1
        return 3 if n == 1_000 else 5


@dataclass
class RunAll:
    wall: float  # seconds at the client, all cells
    cells: list[float]  # the kernel's seconds per cell, the setup cell first


@dataclass
class Curves:
    """Everything measured, by (shape, N)."""

    run_all: dict[tuple[str, int], dict[str, list[RunAll]]] = field(default_factory=dict)
    history_rows: dict[int, tuple[int, int, int, int]] = field(default_factory=dict)  # rows, bytes, first, last id
    history_ms: dict[str, list[float]] = field(default_factory=dict)
    definitions: dict[str, list[list[float]]] = field(default_factory=dict)  # per session, k-th at k - 1
    plain_defs: dict[str, list[list[float]]] = field(default_factory=dict)  # per shape, per session: every 10th cell
    first: dict[tuple[str, int], dict[str, list[float]]] = field(default_factory=dict)
    loads: dict[tuple[str, str, int], tuple[float, float]] = field(default_factory=dict)  # 1-min load: start, end


# ------------------------------------------------------------- Restart & Run All


def run_notebook(work: Path, cache: Path, sources: list[str], expect: str | None) -> RunAll:
    """Every cell in a new kernel; with ``expect``, each task's own status must be that."""
    with kernel(work, {"DAGNB_CACHE_DIR": str(cache)}) as k:
        started = time.perf_counter()
        cells = [k.run(source, CELL_TIMEOUT) for source in sources]
        wall = time.perf_counter() - started
    if expect is not None:
        statuses = own_statuses([c.dagnb for c in cells])
        wrong = {t: s for t, s in statuses.items() if s != expect}
        if len(statuses) != len(sources) - 1 or wrong:
            raise RuntimeError(f"expected every task {expect}; got {len(statuses)} tasks, others: {wrong}")
    return RunAll(wall, [c.kernel_seconds for c in cells])


def restart_run_all(shape: str, n: int, plan: Plan, work: Path, curves: Curves) -> None:
    base = work / f"run-all-{shape}-{n}"
    base.mkdir()
    cache, joblib_dir = base / "cache", base / "joblib"
    sources = {v: notebook(v, shape, n, joblib_dir) for v in VARIANTS}
    run_notebook(base, cache, sources["dagnb"], expect="done")
    if shape == "chain" and n <= plan.headline:  # beyond, the N²/2 records of today's history fill gigabytes
        curves.history_rows[n] = history_rows(cache, base)
        if n == plan.headline:
            history_commands(base, cache, n, plan, curves)
    run_notebook(base, cache, sources["joblib"], expect=None)
    timed: dict[str, list[RunAll]] = {v: [] for v in VARIANTS}
    for order in interleaved(plan.repeats(n), *VARIANTS):
        for variant in order:
            expect = "cached" if variant == "dagnb" else None
            timed[variant].append(run_notebook(base, cache, sources[variant], expect))
    curves.run_all[(shape, n)] = timed


def window(n: int) -> int:
    """How many of the last cells make a cached cell's per-cell time."""
    return max(5, n // 10)


def per_cell(runs: list[RunAll], n: int) -> float:
    """Median over runs of the mean kernel time of the last ``window(n)`` cells."""
    m = window(n)
    return median([sum(r.cells[n - m + 1:n + 1]) / m for r in runs])


# ------------------------------------------------------------------ run history


def history_rows(cache: Path, folder: Path) -> tuple[int, int, int, int]:
    """Rows of run history in ``cache``, the metadata's bytes, and the first and last run ids.

    The history is that of the kernel's working ``folder`` (it was told no notebook: the folder's scope).
    """
    graph = dagnb.Graph(cache_dir=str(cache))
    graph.store.use_scope(Scope.of_folder(folder))
    try:
        runs = graph.history(None).runs
    finally:
        graph.close()  # closes its store
    nbytes = sum(p.stat().st_size for p in cache.glob("*.sqlite*"))
    ids = [r.id for r in runs] or [0]
    return sum(len(r.tasks) for r in runs), nbytes, min(ids), max(ids)


def history_commands(base: Path, cache: Path, n: int, plan: Plan, curves: Curves) -> None:
    """Time ``%dag history --diff`` and ``%dag run --as-of`` on the cache of one Run All."""
    _, _, first, last = curves.history_rows[n]
    diff, as_of = f"%dag history --diff {first} {last}", f"%dag run --as-of {last}"
    times: dict[str, list[float]] = {diff: [], as_of: []}
    with kernel(base, {"DAGNB_CACHE_DIR": str(cache)}) as k:
        k.run("%load_ext dagnb")
        for i in range(1, n + 1):
            k.run(cell("dagnb", "chain", i, " --no-run"), CELL_TIMEOUT)
        for order in interleaved(plan.repeats(n), diff, as_of):
            for command in order:
                done = k.run(command, CELL_TIMEOUT)
                if command == as_of and (done.stdout + done.shown).count(" restored") != n:
                    raise RuntimeError(f"`{as_of}` did not restore the {n} values: {done.stdout[-500:]}")
                times[command].append(done.kernel_seconds)
    curves.history_ms = {"diff": times[diff], "as_of": times[as_of]}


# ------------------------------------------------------- definitions, first run


def define_and_run(shape: str, n: int, plan: Plan, work: Path, curves: Curves) -> None:
    """Sessions that define ``n`` tasks cell by cell, then run them all, and dask on the same functions."""
    dagnb_times, dask_times = [], []
    for r, order in enumerate(interleaved(plan.repeats(n), "dagnb", "dask")):
        base = work / f"first-{shape}-{n}-{r}"
        base.mkdir()
        with kernel(base, {"DAGNB_CACHE_DIR": str(base / "cache")}) as k:
            k.run("%load_ext dagnb\nfrom dask.local import get_sync")
            curves.definitions.setdefault(shape, []).append(_define(k, shape, n, curves))
            k.run(dask_graph(shape, n))
            for which in order:
                if which == "dagnb":
                    dagnb_times.append(_first_run(k, n).kernel_seconds)
                else:
                    dask_times.append(k.run("_ = get_sync(dsk, list(dsk))", CELL_TIMEOUT).kernel_seconds)
    curves.first[(shape, n)] = {"dagnb": dagnb_times, "dask": dask_times}


def _define(k: Kernel, shape: str, n: int, curves: Curves) -> list[float]:
    times: list[float] = []
    plain = curves.plain_defs.setdefault(shape, [])
    plain.append([])
    for i in range(1, n + 1):
        times.append(k.run(cell("dagnb", shape, i, " --no-run"), CELL_TIMEOUT).kernel_seconds)
        if i % 10 == 0:
            plain[-1].append(k.run(f"def plain_{i}(x):\n    return x + 1\n").kernel_seconds)
    return times


def _first_run(k: Kernel, n: int) -> Cell:
    done = k.run("%dag run", CELL_TIMEOUT)
    statuses = done.dagnb[-1]["statuses"] if done.dagnb else {}
    ran = sum(s == "done" for s in statuses.values()) if isinstance(statuses, dict) else 0
    if ran != n:
        raise RuntimeError(f"`%dag run` was to run {n} tasks, it ran {ran}")
    return done


def plain_at(curves: Curves, shape: str, k: int) -> float:
    """The plain ``def`` cells of the same sessions near the k-th definition (those after definitions k-49..k).

    IPython's own time per cell grows along a session (about 0.3 ms from the
    20th cell to the 2,000th here), so the k-th definition is compared with
    plain cells at the same point, not with the session's average.
    """
    return median([t for session in curves.plain_defs.get(shape, []) if len(session) * 10 >= k
                   for i, t in enumerate(session, 1) if k - 50 < i * 10 <= max(k, 10)])


def all_plain(curves: Curves) -> list[float]:
    """Every plain ``def`` cell of the definition sessions."""
    return [t for sessions in curves.plain_defs.values() for session in sessions for t in session]


def definition_at(curves: Curves, shape: str, k: int) -> float:
    """The k-th definition: median of cells k-4..k over every session of at least k tasks."""
    return median([t for session in curves.definitions.get(shape, []) if len(session) >= k
                   for t in session[max(0, k - 5):k]])


# ------------------------------------------------------------------------ rows


def collect(plan: Plan, work: Path) -> tuple[Curves, list[Row]]:
    """Every measurement, each guarded (a failure is a row) and with the load average around it."""
    curves, failures = Curves(), []
    groups = [("run_all", f"Restart & Run All, {n:,}-cell {shape}", shape, n, restart_run_all)
              for shape in SHAPES for n in plan.run_all]
    groups += [("first", f"definitions and first run, {n:,} tasks, {shape}", shape, n, define_and_run)
               for shape in SHAPES for n in plan.first]
    for kind, name, shape, n, measure in groups:
        before = os.getloadavg()[0]
        failures += guarded(name, lambda m=measure, s=shape, n=n: m(s, n, plan, work, curves))  # type: ignore[misc]
        curves.loads[(kind, shape, n)] = (before, os.getloadavg()[0])
    return curves, failures


def rows(sizes: Sizes) -> list[Row | Table]:
    from _kernel_report import curve_tables, headline_rows

    plan = Plan.of(sizes)
    with tempfile.TemporaryDirectory(prefix="dagnb-bench-kernel-") as tmp:
        curves, failures = collect(plan, Path(tmp))
    return [*headline_rows(plan, curves), *failures, *curve_tables(plan, curves)]

