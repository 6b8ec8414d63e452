"""Where task bodies run: inline, a thread pool, worker processes, or a Dask cluster.

A backend takes a :class:`Work` and returns a ``concurrent.futures.Future``
of an :class:`Outcome`; the executor needs nothing else (dask's
``submit`` pattern). ``inline`` runs in the caller's thread and is the
reference; ``threads`` suits tasks that wait on I/O or release the GIL;
``processes`` (loky's reusable executor, as vendored by joblib: functions
defined in a notebook travel by value with cloudpickle) suits CPU-bound
Python; ``dask`` (:mod:`dagnb.run.dask_backend`) sends tasks to a ``distributed``
cluster's workers, local or remote.
Remote workers only compute: the kernel alone writes the cache.

Responsibilities:
    * run a task body and describe it as an :class:`Outcome`;
    * name the lane it ran on (``main``, a thread, ``pid N``);
    * stop an inline task at its timeout (a signal in the main thread).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Protocol

from dagnb.errors import CommandError, TaskTimedOut
from dagnb.run.costs import Costs
from dagnb.run.dask_backend import DaskBackend
from dagnb.run.interrupts import CountingWhenArmed, counting_interrupts, interrupts_seen, keyboard_interrupts
from dagnb.run.work import Outcome, Work, current_lane, send_by_value
from dagnb.run.worker import run_remote, with_kernel_source

__all__ = [
    "Backend",
    "BackendPool",
    "DaskBackend",
    "InlineBackend",
    "Outcome",
    "ProcessBackend",
    "ThreadBackend",
    "TimedOut",
    "Work",
    "async_runner",
    "gather",
    "current_lane",
    "CountingWhenArmed",
    "counting_interrupts",
    "interrupts_seen",
    "keyboard_interrupts",
    "make_backend",
]


def gather(futures: list[Future[Outcome]], on_slice: Callable[[int], None] | None = None) -> Future[Outcome]:
    """One future for the slices of a map task: their values concatenated in order, the first error wins.

    ``on_slice(i)`` is called when slice ``i`` succeeds (in the thread that completes it).
    """
    combined: Future[Outcome] = Future()
    remaining = [len(futures)]
    lock = threading.Lock()

    def one_done(done: Future[Outcome]) -> None:
        if on_slice is not None and not done.cancelled() and done.exception() is None and done.result().error is None:
            on_slice(futures.index(done))
        with lock:
            remaining[0] -= 1
            if remaining[0] or combined.done():
                return
        outcomes = [f.result() for f in futures]
        error = next((o.error for o in outcomes if o.error is not None), None)
        merged = Outcome(
            value=None if error else [v for o in outcomes for v in o.value],
            captured=[out for o in outcomes for out in o.captured],
            costs=Costs(
                started=min(o.costs.started for o in outcomes),
                duration=max(o.costs.duration for o in outcomes),
                cpu_time=sum(o.costs.cpu_time for o in outcomes),
            ),
            error=error,
            lane=outcomes[0].lane,
            remote=any(o.remote for o in outcomes),
            interrupted=any(o.interrupted for o in outcomes),
        )
        combined.set_result(merged)

    for future in futures:
        future.add_done_callback(one_done)
    return combined


class TimedOut(BaseException):
    """Raised inside an inline task at its timeout (a BaseException, so ``except Exception`` in user code cannot swallow it)."""


class Backend(Protocol):
    """Where task bodies run: ``submit`` returns a future of an :class:`Outcome`."""

    name: str
    jobs: int

    def submit(self, work: Work) -> Future[Outcome]: ...

    def shutdown(self) -> None: ...


def _in_lane(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
    def call() -> Outcome:
        outcome, lane = fn(), current_lane()
        return outcome if outcome.lane == lane else replace(outcome, lane=lane)  # a body names its own lane

    return call


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimedOut` in this thread after ``seconds`` (main thread on Unix only)."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable or seconds is None:
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimedOut

    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)  # a timer already set (pytest-timeout, alarm())
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:  # re-arm what remains of it, so an outer deadline still fires
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - started), 0.001))


def _with_alarm(work: Work) -> Outcome:
    """Run ``work`` here, stopped by :class:`TimedOut` at its timeout."""
    with _alarm(work.timeout):
        return work.local()


class InlineBackend:
    """Runs each task at once in the caller's thread: the reference backend."""

    name = "inline"
    jobs = 1

    def submit(self, work: Work) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        try:
            outcome = _with_alarm(work) if work.timeout else work.local()  # KeyboardInterrupt reaches the run loop
        except TimedOut:
            timeout = work.timeout or 0.0
            outcome = Outcome(error=TaskTimedOut(work.task, timeout), costs=Costs(duration=timeout))
        lane = current_lane()
        future.set_result(outcome if outcome.lane == lane else replace(outcome, lane=lane))
        return future

    def shutdown(self) -> None:
        pass


class ThreadBackend:
    """Runs tasks on a pool of threads (for tasks that release the GIL or wait on I/O)."""

    name = "threads"

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self._pool = ThreadPoolExecutor(self.jobs, thread_name_prefix="dagnb")

    def submit(self, work: Work) -> Future[Outcome]:
        return self._pool.submit(_in_lane(work.local))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class ProcessBackend:
    """Runs tasks in worker processes: a loky pool of its own, kept warm across runs of a graph.

    Its own pool, not loky's process-wide reusable one, so joblib's own
    ``Parallel`` in the same kernel keeps working; a pool whose worker died
    is replaced at the next submission.
    """

    name = "processes"

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self._pool: Any = None

    def _executor(self) -> Any:
        from joblib.externals.loky import ProcessPoolExecutor

        if (
            self._pool is None
            or getattr(self._pool, "_broken", False)
            or getattr(self._pool, "_flags", None)
            and getattr(self._pool._flags, "broken", None)
        ):
            self._pool = ProcessPoolExecutor(max_workers=self.jobs)
        return self._pool

    def submit(self, work: Work) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        modules = send_by_value(work.func)
        try:
            remote = self._executor().submit(run_remote, work.func, work.kwargs, modules)
        except Exception:  # a broken pool: start a new one, once
            self._pool = None
            remote = self._executor().submit(run_remote, work.func, work.kwargs, modules)

        def settle(done: Any) -> None:
            if future.cancelled():
                return
            try:
                future.set_result(with_kernel_source(done.result(), work.func))
            except BaseException as exc:  # an input or output that cannot be pickled, a worker that died
                if isinstance(exc, Exception) and "Terminated" in type(exc).__name__:
                    self._pool = None
                future.set_result(Outcome(error=exc, remote=True))

        remote.add_done_callback(settle)
        return future

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


class AsyncRunner:
    """Runs async tasks, all at once, on one event loop in a background thread.

    The kernel's own loop is busy running the cell that started the run, so
    dagnb keeps a loop of its own; async tasks of a run interleave on it
    whatever the backend of the other tasks.
    """

    name = "async"

    def __init__(self) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dagnb-async", daemon=True)
        self._thread.start()

    def submit(self, work: Work) -> Future[Outcome]:
        import asyncio

        assert work.run_async is not None
        return asyncio.run_coroutine_threadsafe(work.run_async(), self._loop)

    def shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


_async_runner: AsyncRunner | None = None


def async_runner() -> AsyncRunner:
    """The process's event loop thread for async tasks (started on first use)."""
    global _async_runner
    if _async_runner is None:
        _async_runner = AsyncRunner()
    return _async_runner


BACKENDS = ("inline", "threads", "processes", "dask", "dask://HOST:PORT")


class BackendPool:
    """The backends a session chose, by name: worker pools and clusters are started once and reused
    across its runs (until :meth:`shutdown`); ``inline`` and ``threads`` are made for each run."""

    def __init__(self) -> None:
        self._kept: dict[tuple[str, int], Backend] = {}

    def get(self, backend: str | Backend | Any, jobs: int) -> Backend:
        """A backend by name, a ready-made one, or a ``distributed.Client`` (wrapped)."""
        if not isinstance(backend, str):
            chosen: Backend = DaskBackend(backend) if hasattr(backend, "scheduler_info") else backend
            return chosen
        if backend in ("inline", "threads"):
            return make_backend(backend, jobs)
        if (backend, jobs) not in self._kept:
            self._kept[(backend, jobs)] = make_backend(backend, jobs)
        return self._kept[(backend, jobs)]

    def shutdown(self) -> None:
        """End every worker pool and cluster kept."""
        for backend in self._kept.values():
            backend.shutdown()
        self._kept.clear()


def make_backend(name: str | None, jobs: int = 1) -> Backend:
    """A backend by name: ``inline`` (default), ``threads``, ``processes``, ``dask`` or ``dask://HOST:PORT``."""
    if name in (None, "inline"):
        return InlineBackend()
    if name == "threads":
        return ThreadBackend(jobs)
    if name == "processes":
        return ProcessBackend(jobs)
    if name == "dask" or (name or "").startswith("dask://"):
        address = name[len("dask://") :] if name and name.startswith("dask://") else None
        return DaskBackend.connect(f"tcp://{address}" if address else None, jobs)
    raise CommandError(f"There is no backend `{name}`. Use one of: {', '.join(BACKENDS)}.")
