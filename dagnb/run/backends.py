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
from dataclasses import dataclass, field
from typing import Any, Protocol

from dagnb.errors import CommandError, TaskTimedOut

__all__ = [
    "Backend",
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
    "counting_interrupts",
    "interrupts_seen",
    "keyboard_interrupts",
    "make_backend",
]


@dataclass
class Outcome:
    """What running one task produced (in a worker)."""

    value: Any = None
    output: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    duration: float = 0.0
    error: BaseException | None = None
    started: float = 0.0
    cpu_time: float = 0.0
    peak_memory: int = 0
    output_bytes: int = 0
    worker: str = "main"
    remote: bool = False  # ran in another process: its prints were recorded, not shown live
    items: tuple[int, int] | None = None  # a map task: (elements computed, elements), set when committed
    interrupted: bool = False  # Ctrl-C arrived while it ran and the task caught it: its value may be partial


@dataclass
class Work:
    """One task body, ready to run where the backend chooses.

    ``local`` runs it in this process with the session's output capture;
    remote backends send ``func`` and ``kwargs`` to a worker instead.
    """

    task: str
    func: Callable[..., Any] = field(repr=False)
    kwargs: dict[str, Any] = field(repr=False)
    local: Callable[[], Outcome] = field(repr=False)
    timeout: float | None = None
    retries: int = 0
    run_async: Callable[[], Any] | None = field(default=None, repr=False)  # an async task: makes its coroutine
    parts: list[Work] | None = field(default=None, repr=False)  # a map task's slices of elements, one per worker
    progress: Any = field(default=None, repr=False)  # a map task's ItemProgress


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
            outputs=[out for o in outcomes for out in o.outputs],
            duration=max(o.duration for o in outcomes),
            error=error,
            started=min(o.started for o in outcomes),
            cpu_time=sum(o.cpu_time for o in outcomes),
            worker=outcomes[0].worker,
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


def current_lane() -> str:
    """The trace lane of the calling thread: ``main`` for the main thread, else the thread's name."""
    thread = threading.current_thread()
    return "main" if thread is threading.main_thread() else thread.name


def _in_lane(fn: Callable[[], Outcome]) -> Callable[[], Outcome]:
    def call() -> Outcome:
        outcome = fn()
        outcome.worker = current_lane()
        return outcome

    return call


@contextlib.contextmanager
def _alarm(seconds: float | None) -> Iterator[None]:
    """Raise :class:`TimedOut` in this thread after ``seconds`` (main thread on Unix only)."""
    usable = seconds and hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
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


@contextlib.contextmanager
def keyboard_interrupts() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt in this block, whatever handler the caller's event loop set.

    ipykernel turns Ctrl-C during an awaited cell into cancelling it, which
    waits for the running code to return; a task blocking the loop must be
    interrupted instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.default_int_handler, signal.SIG_IGN, None):  # None: set outside Python
        yield
        return
    if isinstance(previous, _Counting) and previous.previous is signal.default_int_handler:
        yield
        return
    signal.signal(signal.SIGINT, _Counting(signal.default_int_handler))  # counted, for tasks that catch it
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_interrupts = [0]  # how many SIGINTs dagnb's handler has seen in this process


def interrupts_seen() -> int:
    """How many times Ctrl-C (SIGINT) arrived while dagnb counted: compare before and after a task body."""
    return _interrupts[0]


class _Counting:
    """A SIGINT handler that counts, then does what the handler it wraps did (raise KeyboardInterrupt, as a rule)."""

    __slots__ = ("previous",)

    def __init__(self, previous: Callable[[int, Any], Any]) -> None:
        self.previous = previous

    def __call__(self, signum: int, frame: Any) -> Any:
        _interrupts[0] += 1
        return self.previous(signum, frame)


@contextlib.contextmanager
def counting_interrupts() -> Iterator[None]:
    """Count Ctrl-C while a run goes, so a task that catches it and returns is noticed.

    Training loops catch ``KeyboardInterrupt`` and return a partial result
    (``except KeyboardInterrupt: break``; scikit-learn's ``MLPClassifier.fit``):
    the result looks finished, but must not be cached. The handler is
    wrapped once per run (not per task: changing a signal handler is a system
    call), in the main thread only, where signals arrive.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous) or isinstance(previous, _Counting):  # SIG_IGN, SIG_DFL, a C handler; or counted
        yield
        return
    signal.signal(signal.SIGINT, _Counting(previous))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


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
            outcome = Outcome(error=TaskTimedOut(work.task, work.timeout or 0.0), duration=work.timeout or 0.0)
        outcome.worker = current_lane()
        future.set_result(outcome)
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


def _send_by_value(func: Callable[..., Any]) -> list[Any]:
    """The user modules ``func`` reaches, which cloudpickle will send by value, as the kernel holds them.

    Otherwise a worker imports the module's file again, which may have been
    edited since the kernel imported it (or whose state the notebook set):
    the task would run code its key does not describe.
    """
    from dagnb.fingerprints.code import user_modules

    bodies = [func, *getattr(func, "args", ())]  # a map task's body is a partial over the task's function
    modules = list({id(m): m for body in bodies if callable(body) for m in user_modules(body)}.values())
    try:
        import cloudpickle  # what loky and distributed send functions with
    except ImportError:  # loky falls back to pickle, which sends nothing by value
        return modules
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    return modules


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

        if self._pool is None or getattr(self._pool, "_broken", False) or getattr(self._pool, "_flags", None) and \
                getattr(self._pool._flags, "broken", None):
            self._pool = ProcessPoolExecutor(max_workers=self.jobs)
        return self._pool

    def submit(self, work: Work) -> Future[Outcome]:
        from dagnb.run.worker import run_remote, with_kernel_source

        future: Future[Outcome] = Future()
        modules = _send_by_value(work.func)
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
        return asyncio.run_coroutine_threadsafe(work.run_async(), self._loop)  # type: ignore[return-value]

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


def make_backend(name: str | None, jobs: int = 1) -> Backend:
    """A backend by name: ``inline`` (default), ``threads``, ``processes``, ``dask`` or ``dask://HOST:PORT``."""
    if name in (None, "inline"):
        return InlineBackend()
    if name == "threads":
        return ThreadBackend(jobs)
    if name == "processes":
        return ProcessBackend(jobs)
    if name == "dask" or (name or "").startswith("dask://"):
        address = name[len("dask://"):] if name and name.startswith("dask://") else None
        return DaskBackend.connect(f"tcp://{address}" if address else None, jobs)
    raise CommandError(f"There is no backend `{name}`. Use one of: {', '.join(BACKENDS)}.")


from dagnb.run.dask_backend import DaskBackend  # noqa: E402 - it builds on the names above
