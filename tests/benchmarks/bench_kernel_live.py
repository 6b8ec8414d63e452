"""Issue 16 on the user's path, continued: live ``%dag`` views and the dask backend, in a real kernel.

1. **Live views.** A kernel defines a chain of 2,000 tasks (one cell of
   ``@dagnb.task`` functions: how they were defined does not matter to a
   view) and runs it. Then one more task is defined with ``%%task
   --no-run`` (a new task each time, reading the last), first with no view
   open, then with 6 live ``%dag`` views displayed (the most that follow a
   session). Time: the kernel's time for that cell, which includes the
   views' redraws (they happen when the cell ends, before its reply).
   Bytes: every iopub message from the request until nothing more arrives
   for 0.5 s (so redraws sent from a timer are counted too), JSON frames
   plus buffers (see ``_kernel.py``). Without and with views cannot be
   interleaved in one kernel (views stay open), so they run one after the
   other. The same kernel then times a run under the views: a new chain of
   ``RUN_TASKS`` tasks is defined in one cell and run with ``%dag run``,
   once before the views are opened and once (another chain) with them,
   counting its iopub bytes the same way; the run with views plans a graph
   larger by the first chain.
2. **The dask backend.** A kernel starts a ``LocalCluster`` of 2
   single-threaded worker processes, defines the 1,000 no-op tasks of
   ``bench_graph``'s random DAG (each reads up to 2 earlier ones), and
   runs them with ``%dag run --backend dask://ADDRESS --jobs 2`` (a first
   run: all execute) and with ``client.get`` on the same functions and
   graph on the same cluster, in alternating order. Both connections are
   warmed on a one-task graph first. Each repetition is a new kernel and
   cluster (3 by default).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from _common import Row, Sizes, guarded, interleaved, median, ms, ratio, us_per
from _kernel import Kernel, kernel
from bench_graph import random_edges, task_source
from bench_kernel import CELL_TIMEOUT

VIEWS = 6
RUN_TASKS = 1_000
QUIET = 0.5  # seconds without an iopub message that end a cell's count
GOAL_VIEWS_MS = 50.0
GOAL_VIEWS_BYTES = 100_000
GOAL_DASK_RATIO = 0.5


@dataclass
class Definition:
    seconds: list[float] = field(default_factory=list)
    nbytes: list[int] = field(default_factory=list)
    comm_msgs: list[int] = field(default_factory=list)


def _chain_cell(n: int, prefix: str = "t") -> str:
    """One cell defining ``t1`` .. ``t{n}`` (a chain) through ``@dagnb.task``."""
    p = prefix
    lines = ["import dagnb", "@dagnb.task", f"def {p}1():", "    return 1"]
    for i in range(2, n + 1):
        lines += ["@dagnb.task", f"def {p}{i}({p}{i - 1}):", f"    return {p}{i - 1} + 1"]
    return "\n".join(lines) + "\n"


def _run_chain(k: Kernel, prefix: str, n: int, into: Definition) -> None:
    """Define a new chain of ``n`` tasks, then time ``%dag run`` (which runs them) and count its bytes."""
    k.run(_chain_cell(n, prefix), CELL_TIMEOUT)
    k.drain(QUIET)
    done = k.run("%dag run", CELL_TIMEOUT)
    later = k.drain(QUIET)
    ran = sum(s == "done" for s in done.dagnb[-1]["statuses"].values()) if done.dagnb else 0
    if ran < n:
        raise RuntimeError(f"the run was to run the {n} tasks of chain {prefix}, it ran {ran}")
    into.seconds.append(done.kernel_seconds)
    into.nbytes.append(done.nbytes + later.nbytes)
    into.comm_msgs.append((done.messages + later.messages)["comm_msg"])


def _define_one(k: Kernel, name: str, last: int, into: Definition) -> None:
    done = k.run(f"%%task --no-run\ndef {name}(t{last}):\n    return t{last} + 1\n", CELL_TIMEOUT)
    later = k.drain(QUIET)
    into.seconds.append(done.kernel_seconds)
    into.nbytes.append(done.nbytes + later.nbytes)
    into.comm_msgs.append((done.messages + later.messages)["comm_msg"])


def views_session(n: int, repeat: int, work: Path, run_n: int = RUN_TASKS
                  ) -> tuple[Definition, Definition, Counter[str], Definition, Definition]:
    """(definitions without views, with 6 views, iopub messages of opening the views, runs without and with)."""
    bare, live, bare_run, live_run = Definition(), Definition(), Definition(), Definition()
    with kernel(work, {"DAGNB_CACHE_DIR": str(work / "cache-views")}) as k:
        k.run("%load_ext dagnb")
        k.run(_chain_cell(n), CELL_TIMEOUT)
        ran = k.run("%dag run", CELL_TIMEOUT)
        if sum(s == "done" for s in ran.dagnb[-1]["statuses"].values()) != n:
            raise RuntimeError(f"the {n} tasks did not all run")
        k.drain(QUIET)
        for r in range(repeat):
            _define_one(k, f"bare{r}", n, bare)
        _run_chain(k, "b", run_n, bare_run)
        opened: Counter[str] = Counter()
        for _ in range(VIEWS):
            opened += k.run("%dag", CELL_TIMEOUT).messages
        opened += k.drain(QUIET).messages
        for r in range(repeat):
            _define_one(k, f"live{r}", n, live)
        _run_chain(k, "l", run_n, live_run)
    return bare, live, opened, bare_run, live_run


def view_rows(n: int, repeat: int, work: Path, run_n: int = RUN_TASKS) -> list[Row]:
    bare, live, opened, bare_run, live_run = views_session(n, repeat, work, run_n)
    took, sent = median(live.seconds), median([float(b) for b in live.nbytes])
    label = f"one definition (`%%task --no-run`) of a {n:,}-task graph with {VIEWS} live `%dag` views"
    return [
        Row(f"{label}: kernel time ({repeat} runs; vs none open)", ms(took), f"no view: {ms(median(bare.seconds))}",
            None, f"<= {GOAL_VIEWS_MS:.0f} ms", took * 1e3 <= GOAL_VIEWS_MS),
        Row(f"{label}: bytes on iopub ({repeat} runs; vs none open)",
            f"{sent / 1e6:.2f} MB in {median([float(c) for c in live.comm_msgs]):.0f} comm messages",
            f"no view: {median([float(b) for b in bare.nbytes]) / 1e3:.1f} KB", None,
            f"<= {GOAL_VIEWS_BYTES / 1e3:.0f} KB", sent <= GOAL_VIEWS_BYTES),
        Row(f"`%dag run` of {run_n:,} new tasks (a chain) in a graph of {n:,}, with {VIEWS} live `%dag` views vs "
            "none open: kernel time (info)", ms(live_run.seconds[0]), f"no view: {ms(bare_run.seconds[0])}",
            None, "—", None),
        Row(f"`%dag run` of {run_n:,} new tasks (a chain) in a graph of {n:,}, with {VIEWS} live `%dag` views vs "
            "none open: bytes on iopub (info)",
            f"{live_run.nbytes[0] / 1e6:.2f} MB in {live_run.comm_msgs[0]} comm messages",
            f"no view: {bare_run.nbytes[0] / 1e3:.1f} KB", None, "—", None),
    ]


# ------------------------------------------------------------------ dask backend

_CLUSTER = """
import warnings
from distributed import Client, LocalCluster
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                           processes=True)
client = Client(cluster)
print(cluster.scheduler_address)
"""


def _random_dag_cells(n: int) -> tuple[str, str]:
    """(a cell defining the random DAG's tasks, a cell building ``dsk`` over the same functions)."""
    edges = random_edges(n)
    tasks = "import dagnb\n" + "".join("@dagnb.task\n" + task_source(i, ups) for i, ups in enumerate(edges))
    graph = ", ".join(f"'t{i}': (t{i}_f, {', '.join(repr(f't{j}') for j in ups)})" if ups else f"'t{i}': (t{i}_f,)"
                      for i, ups in enumerate(edges))
    funcs = "".join(f"t{i}_f = _specs['t{i}'].func\n" for i in range(n))
    return tasks, f"_specs = dagnb.current().tasks.specs\n{funcs}dsk = {{{graph}}}\n"


def dask_session(n: int, order: list[str], work: Path) -> dict[str, float]:
    times = {}
    with kernel(work, {"DAGNB_CACHE_DIR": str(work / "cache")}) as k:
        k.run("%load_ext dagnb")
        address = k.run(_CLUSTER, CELL_TIMEOUT).stdout.split()[-1].removeprefix("tcp://")
        tasks, graph = _random_dag_cells(n)
        k.run(tasks, CELL_TIMEOUT)
        k.run(graph, CELL_TIMEOUT)
        k.run("%%task\ndef warm():\n    return 0\n")
        k.run(f"%dag run warm --backend dask://{address} --jobs 2", CELL_TIMEOUT)
        k.run("client.get({'w': (abs, -1)}, 'w')", CELL_TIMEOUT)
        for which in order:
            if which == "dagnb":
                done = k.run(f"%dag run --backend dask://{address} --jobs 2", CELL_TIMEOUT)
                ran = sum(s == "done" for s in done.dagnb[-1]["statuses"].values())
                if ran != n:
                    raise RuntimeError(f"`%dag run --backend dask` was to run {n} tasks, it ran {ran}")
            else:
                done = k.run("_ = client.get(dsk, list(dsk))", CELL_TIMEOUT)
            times[which] = done.kernel_seconds
        k.run("client.close()\ncluster.close()", CELL_TIMEOUT)
    return times


def dask_rows(n: int, repeat: int, work: Path) -> list[Row]:
    runs = []
    for r, order in enumerate(interleaved(repeat, "dagnb", "client")):
        session = work / f"dask-{r}"
        session.mkdir()
        runs.append(dask_session(n, order, session))
    d, c = median([t["dagnb"] for t in runs]), median([t["client"] for t in runs])
    return [Row(f"{n:,} no-op tasks, `%dag run --backend dask --jobs 2` (2 single-threaded workers), first run, "
                f"vs `client.get` on the same graph and cluster, in a kernel ({repeat} runs)",
                us_per(d, n), us_per(c, n), ratio(c, d), f">= {GOAL_DASK_RATIO}x client.get",
                ratio(c, d) >= GOAL_DASK_RATIO)]


def rows(sizes: Sizes) -> list[Row]:
    views_n, dask_n = (100, 50) if sizes.quick else (2_000, 1_000)
    run_n = 50 if sizes.quick else RUN_TASKS
    repeat, dask_repeat = (1, 1) if sizes.quick else (5, 3)
    out: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dagnb-bench-live-") as tmp:
        work = Path(tmp)
        out += guarded(f"{VIEWS} live views, {views_n:,} tasks", lambda: view_rows(views_n, repeat, work, run_n))
        out += guarded(f"dask backend, {dask_n:,} tasks", lambda: dask_rows(dask_n, dask_repeat, work))
    return out
