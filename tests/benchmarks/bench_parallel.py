"""Parallel runs: each backend side by side with inline and with dask's and joblib's own schedulers.

1. **Waiting tasks**: 8 independent tasks that each ``time.sleep(1)``, with
   4 jobs on ``threads``, ``processes`` and ``dask``, against the same graph
   inline (8 s). Sleeping releases the GIL, so every backend can overlap
   them; what is left above 2 s is scheduling and transport.
2. **CPU-bound diamonds**: a source, 4 branches of ~0.5 s of pure-Python
   arithmetic, a sink, repeated twice in series (8 branches, ~4 s of CPU),
   on ``processes`` with 2 jobs (and on a 2-worker dask cluster) against
   inline. Pure Python holds the GIL: only worker processes overlap it.
3. **Per-task overhead**: 1,000 no-op tasks (the random DAG of
   ``bench_graph``) on every backend, next to dask's local threaded
   scheduler (``dask.threaded.get``, 2 threads) and ``distributed``
   (``client.get`` on the same dict graph, same 2-worker cluster).
4. **Naive baseline**: the DAG of (2) run level by level with
   ``joblib.Parallel(n_jobs=2)`` (a barrier after each level), against
   dagnb on ``processes``.

Every timed run uses a new ``Graph`` with a memory store, so every task
executes; pools and clusters are started and warmed before timing (a
kernel keeps them across runs), and no dask cluster is alive while the
other backends are timed. Rows that take seconds are timed once or
twice (see :class:`Plan`): a sleep-bound run varies little. ``--quick`` shrinks
sleeps, work and task counts; its numbers are not comparable with the goals.

dagnb's ``processes`` backend and joblib share loky's process-wide
executor, and joblib cannot reuse the one dagnb made (a known dagnb bug, see
``tests/backends/test_known_bugs.py``): the pool is reset before the joblib
row.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from _common import Row, Sizes, best_of, best_of_call, ms, ratio, us_per
from bench_graph import random_edges, task_source

import dagnb
from dagnb.graph import TaskGraph, spec_from_function

GOAL_SLEEP_WALL = 2.3  # seconds for 8 x sleep(1) on 4 jobs
GOAL_CPU_SPEEDUP = 1.7  # inline time / processes time on 2 cores
JOBS_WAITING = 4
JOBS_CPU = 2
BRANCHES = 4
DIAMONDS = 2
DIAMOND_TASKS = 1 + DIAMONDS * (BRANCHES + 1)


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of this suite, from the shared :class:`Sizes`."""

    sleep: float  # seconds each waiting task sleeps
    waiting_tasks: int
    branch_seconds: float  # CPU time of one diamond branch
    noop_tasks: int
    cpu_repeat: int  # the diamonds on processes and with joblib (inline and dask: once)
    noop_repeat: int  # no-op tasks on inline, threads and dask.threaded.get
    remote_noop_repeat: int  # no-op tasks on processes, dask and distributed
    one_cluster: bool  # quick: one cluster of 2 workers x 2 threads serves every dask row

    @classmethod
    def of(cls, sizes: Sizes) -> Plan:
        if sizes.quick:
            return cls(0.05, 8, 0.02, sizes.tasks, 1, sizes.repeat, 1, True)
        return cls(1.0, 8, 0.5, sizes.tasks, 2, sizes.repeat, 1, False)


# ------------------------------------------------------------------ graphs


def _exec(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__main__"}  # as a notebook: functions travel by value
    exec(source, namespace)  # noqa: S102 - the task sources are ours
    return namespace


def waiting_graph(n: int, seconds: float) -> dagnb.Graph:
    """``n`` independent tasks that each sleep ``seconds``."""
    source = "import time\n" + "".join(
        f"def w{i}(seconds={seconds!r}):\n    time.sleep(seconds)\n    return {i}\n" for i in range(n)
    )
    namespace = _exec(source)
    graph = dagnb.Graph()
    for i in range(n):
        graph.task(namespace[f"w{i}"])
    return graph


BRANCH = """
def {name}({up}, work={work}):
    total = 0
    for i in range(work):
        total += i * i % 7
    return {up} + total % 3
"""


def diamond_levels() -> list[list[tuple[str, list[str]]]]:
    """Levels of the diamond chain: ``s0``, 4 branches, ``s1``, 4 branches, ``s2`` (each: name, upstream)."""
    levels: list[list[tuple[str, list[str]]]] = [[("s0", [])]]
    for d in range(DIAMONDS):
        branches = [(f"b{d}_{k}", [f"s{d}"]) for k in range(BRANCHES)]
        levels += [branches, [(f"s{d + 1}", [b for b, _ in branches])]]
    return levels


def diamond_functions(work: int) -> dict[str, Callable[..., Any]]:
    """Fresh functions for the diamond chain; branches loop ``work`` times."""
    parts = ["def s0():\n    return 0\n"]
    for d in range(DIAMONDS):
        parts += [BRANCH.format(name=f"b{d}_{k}", up=f"s{d}", work=work) for k in range(BRANCHES)]
        args = ", ".join(f"b{d}_{k}" for k in range(BRANCHES))
        parts.append(f"def s{d + 1}({args}):\n    return sum(({args},))\n")
    namespace = _exec("".join(parts))
    return {name: namespace[name] for level in diamond_levels() for name, _ in level}


def diamond_graph(work: int) -> dagnb.Graph:
    graph = dagnb.Graph()
    for fn in diamond_functions(work).values():
        graph.task(fn)
    return graph


def calibrate(seconds: float) -> int:
    """Loop count of a branch that takes about ``seconds`` of CPU here."""
    probe = 200_000
    fn = diamond_functions(probe)["b0_0"]
    best = min(_seconds(lambda: fn(0)) for _ in range(3))
    return max(1_000, int(probe * seconds / best))


def _seconds(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


# ------------------------------------------------------------------ runs


def run_all(graph: dagnb.Graph, count: int, backend: Any, jobs: int) -> None:
    """Run every task of ``graph`` on ``backend``; all ``count`` of them must execute."""
    report = graph.run(backend=backend, jobs=jobs)
    if len(report.executed) != count:
        raise RuntimeError(f"expected {count} tasks to run, got: {report.summary()}")


def timed(make: Callable[[], dagnb.Graph], count: int, backend: Any, jobs: int, repeat: int) -> float:
    """Best wall time of a run of a new graph (built by ``make``, not timed) on ``backend``."""
    return best_of(lambda graph: run_all(graph, count, backend, jobs), make, repeat)


@contextlib.contextmanager
def cluster(workers: int, threads: int = 1) -> Iterator[Any]:
    """A LocalCluster of worker processes (``threads`` each) on 127.0.0.1, and its client."""
    import warnings

    from distributed import Client, LocalCluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Port 8787 is already in use"
        local = LocalCluster(n_workers=workers, threads_per_worker=threads, host="127.0.0.1",
                             dashboard_address=None, processes=True)
    client = Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


def reset_loky() -> None:
    """Shut down loky's process-wide executor (the next user starts a new one)."""
    from joblib.externals.loky import get_reusable_executor

    get_reusable_executor().shutdown(wait=True)


def joblib_levels(work: int, jobs: int) -> Callable[[], None]:
    """The diamond chain level by level with ``joblib.Parallel``: a barrier after each level."""
    from joblib import Parallel, delayed

    def call() -> None:
        functions = diamond_functions(work)
        values: dict[str, Any] = {}
        with Parallel(n_jobs=jobs) as parallel:
            for level in diamond_levels():
                results = parallel(delayed(functions[name])(*(values[u] for u in ups)) for name, ups in level)
                values.update(zip([name for name, _ in level], results, strict=True))
        if len(values) != sum(len(level) for level in diamond_levels()):
            raise RuntimeError("joblib did not compute every task")

    return call


def noop_graph(edges: list[tuple[int, ...]]) -> dagnb.Graph:
    """``bench_graph``'s no-op tasks, defined as in a notebook (module ``__main__``).

    Functions of no module would make cloudpickle search ``sys.modules`` for
    each one it sends, which notebook functions never cost. The task table
    is filled directly, as in ``bench_graph.make_graph``.
    """
    namespace = _exec("\n" * next(_BATCHES) + "".join(task_source(i, ups) for i, ups in enumerate(edges)))
    graph = dagnb.Graph()
    tasks = TaskGraph()
    tasks.specs = {f"t{i}": spec_from_function(namespace[f"t{i}"]) for i in range(len(edges))}
    graph.tasks = tasks
    return graph


_BATCHES = itertools.count()  # fresh code objects for every graph, as in bench_graph


def noop_dask_graph(edges: list[tuple[int, ...]]) -> dict[str, tuple[Any, ...]]:
    return {f"t{i}": (_noop, *(f"t{j}" for j in ups)) for i, ups in enumerate(edges)}


def _noop(*args: Any) -> None:
    return None


# ------------------------------------------------------------------ measurements


def measure_local(plan: Plan) -> tuple[dict[str, float], int]:
    """Every timing that needs no cluster, taken while none runs (idle dask processes still tick).

    Returns the timings by name and the loop count of a CPU-bound branch.
    """
    from dask.threaded import get as threaded_get

    t: dict[str, float] = {}
    n, sleep = plan.waiting_tasks, plan.sleep
    waiting = lambda: waiting_graph(n, sleep)  # noqa: E731
    run_all(waiting_graph(JOBS_WAITING, 0.0), JOBS_WAITING, "processes", JOBS_WAITING)  # start 4 workers
    t["wait.inline"] = timed(waiting, n, "inline", 1, 1)  # sleep-bound: one run says it
    for backend in ("threads", "processes"):
        t[f"wait.{backend}"] = timed(waiting, n, backend, JOBS_WAITING, 1)

    work = calibrate(plan.branch_seconds)
    diamonds = lambda: diamond_graph(work)  # noqa: E731
    run_all(diamond_graph(1_000), DIAMOND_TASKS, "processes", JOBS_CPU)  # 2 workers, imports loaded
    t["cpu.inline"] = timed(diamonds, DIAMOND_TASKS, "inline", 1, 1)
    t["cpu.processes"] = timed(diamonds, DIAMOND_TASKS, "processes", JOBS_CPU, plan.cpu_repeat)

    edges = random_edges(plan.noop_tasks)
    noops = lambda: noop_graph(edges)  # noqa: E731
    dsk = noop_dask_graph(edges)
    t["noop.threaded"] = best_of_call(lambda: threaded_get(dsk, list(dsk), num_workers=2), plan.noop_repeat)
    t["noop.inline"] = timed(noops, plan.noop_tasks, "inline", 1, plan.noop_repeat)
    t["noop.threads"] = timed(noops, plan.noop_tasks, "threads", 2, plan.noop_repeat)
    t["noop.processes"] = timed(noops, plan.noop_tasks, "processes", 2, plan.remote_noop_repeat)

    reset_loky()  # joblib cannot reuse dagnb's executor
    joblib_levels(1_000, JOBS_CPU)()  # start joblib's workers
    t["cpu.joblib"] = best_of_call(joblib_levels(work, JOBS_CPU), plan.cpu_repeat)
    reset_loky()  # nor dagnb's next runs joblib's
    return t, work


def measure_dask(plan: Plan, work: int) -> dict[str, float]:
    """The timings on dask clusters: 4 single-threaded workers for the waiting tasks, 2 for the rest."""
    t: dict[str, float] = {}

    def waiting(client: Any) -> float:
        make = lambda: waiting_graph(plan.waiting_tasks, plan.sleep)  # noqa: E731
        return timed(make, plan.waiting_tasks, client, JOBS_WAITING, 1)

    with contextlib.ExitStack() as stack:
        if plan.one_cluster:
            client2 = stack.enter_context(cluster(JOBS_CPU, threads=2))
            t["wait.dask"] = waiting(client2)
        else:
            with cluster(JOBS_WAITING) as client4:
                t["wait.dask"] = waiting(client4)
            client2 = stack.enter_context(cluster(JOBS_CPU))
        t["cpu.dask"] = timed(lambda: diamond_graph(work), DIAMOND_TASKS, client2, JOBS_CPU, 1)
        edges = random_edges(plan.noop_tasks)
        dsk = noop_dask_graph(edges)
        client2.get(dsk, list(dsk))  # warm
        t["noop.distributed"] = best_of_call(lambda: client2.get(dsk, list(dsk)), plan.remote_noop_repeat)
        t["noop.dask"] = timed(lambda: noop_graph(edges), plan.noop_tasks, client2, 2, plan.remote_noop_repeat)
    return t


# ------------------------------------------------------------------ rows


def waiting_rows(plan: Plan, t: dict[str, float]) -> list[Row]:
    n, sleep, inline = plan.waiting_tasks, plan.sleep, t["wait.inline"]
    goal = GOAL_SLEEP_WALL * sleep
    rows = []
    for name in ("threads", "processes", "dask"):
        wall = t[f"wait.{name}"]
        label = f"{n} tasks that each sleep {sleep:g} s, jobs={JOBS_WAITING}: {name} vs inline"
        if name == "threads":
            rows.append(Row(label, f"{wall:.2f} s wall", f"inline: {inline:.2f} s", ratio(inline, wall),
                            f"<= {goal:.2f} s wall", wall <= goal))
        else:
            rows.append(Row(label + " (info)", f"{wall:.2f} s wall", f"inline: {inline:.2f} s",
                            ratio(inline, wall), "—", None))
    return rows


def cpu_rows(plan: Plan, t: dict[str, float]) -> list[Row]:
    inline, processes = t["cpu.inline"], t["cpu.processes"]
    shape = (f"{DIAMONDS} diamonds in series ({BRANCHES} CPU-bound branches of ~{plan.branch_seconds:g} s "
             f"between a source and a sink)")
    speedup = ratio(inline, processes)
    return [
        Row(f"{shape}: processes (jobs={JOBS_CPU}) vs inline", ms(processes), f"inline: {ms(inline)}", speedup,
            f">= {GOAL_CPU_SPEEDUP}x inline", speedup >= GOAL_CPU_SPEEDUP),
        Row(f"{shape}: dask, {JOBS_CPU} worker processes, vs inline (info)", ms(t["cpu.dask"]),
            f"inline: {ms(inline)}", ratio(inline, t["cpu.dask"]), "—", None),
    ]


def noop_rows(plan: Plan, t: dict[str, float]) -> list[Row]:
    n, threaded, distributed = plan.noop_tasks, t["noop.threaded"], t["noop.distributed"]
    rows = []
    for name, jobs in (("inline", 1), ("threads", 2), ("processes", 2), ("dask", 2)):
        wall = t[f"noop.{name}"]
        label = f"{n:,} no-op tasks, first run, {name}" + (f" (jobs={jobs})" if jobs > 1 else "")
        if name in ("inline", "threads"):
            vs = ratio(threaded, wall)
            rows.append(Row(f"{label} vs dask.threaded.get (2 threads)", us_per(wall, n),
                            us_per(threaded, n), vs, "at least as fast per task (>= 1x)", vs >= 1))
        else:
            rows.append(Row(f"{label} vs distributed client.get, 2 workers (info)", us_per(wall, n),
                            us_per(distributed, n), ratio(distributed, wall), "—", None))
    return rows


def joblib_row(t: dict[str, float]) -> Row:
    processes, naive = t["cpu.processes"], t["cpu.joblib"]
    return Row(f"the same diamonds level by level with joblib.Parallel(n_jobs={JOBS_CPU}) vs dagnb processes "
               "(info)", ms(processes), f"joblib: {ms(naive)}", ratio(naive, processes), "—", None)


def rows(sizes: Sizes) -> list[Row]:
    plan = Plan.of(sizes)
    t, work = measure_local(plan)
    t.update(measure_dask(plan, work))
    return [*waiting_rows(plan, t), *cpu_rows(plan, t), *noop_rows(plan, t), joblib_row(t)]
