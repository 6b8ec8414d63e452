"""The backend contract: what every backend must do, run for each of them.

``BackendContract`` holds the tests; a subclass per backend chooses where
task bodies run: ``inline`` (the caller's thread, the reference),
``threads`` (2 threads), ``processes`` (2 loky worker processes) and
``dask`` (the session's real ``distributed.LocalCluster`` of 2 worker
processes, passed as a ``Client``; one test reaches it as
``dask://HOST:PORT``).

Executions are counted in a log file each task body appends to through
``note()`` (see :class:`notebook_cells.Notebook`): it is a notebook
function, so on ``processes`` and ``dask`` it travels by value and appends
from the worker process. A task waits on a "go" file where a test needs it
to stay in flight (a timeout, a Ctrl-C) and to finish on demand afterwards,
so what happens to a late result is observed, not assumed.

No test asserts a duration; sleeps only order events, with wide margins.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from notebook_cells import Notebook
from notebook_cells import diamond as _diamond

import dagnb
from dagnb.errors import CommandError, TaskDefinitionError, TaskFailed, TaskTimedOut
from dagnb.events import Event, TaskFinished, TaskStarted
from dagnb.run.backends import make_backend

# ------------------------------------------------------------------ notebooks

FAILING = [
    "def fail():\n    note('fail')\n    raise ValueError('boom')\n",
    "def child(fail):\n    note('child')\n    return fail\n",
    "def z1():\n    note('z1')\n    time.sleep(SLOW)\n    return 1\n",
    "def z2():\n    note('z2')\n    return 2\n",
    "def z3():\n    note('z3')\n    return 3\n",
]


KEY_ERROR = "def fail():\n    note('fail')\n    rows = []\n    raise KeyError('row 3 is empty')\n"


def _failing(tmp_path: Path) -> Notebook:
    """``fail`` raises at once; ``z1`` is slow so it is still running then::

        fail --> child        z1 (slow)   z2   z3
    """
    nb = Notebook(tmp_path)
    nb.cell("import time\nSLOW = 0.5\n")
    for source in FAILING:
        nb.task(source)
    return nb


WAIT_FOR = '''
import os, time

def wait_for(path, limit=20.0):
    """Sleep until ``path`` exists (at most ``limit`` seconds)."""
    end = time.monotonic() + limit
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.02)
'''


def _with_gate(tmp_path: Path) -> tuple[Notebook, Path]:
    """A notebook whose tasks can ``wait_for(GO)``; the test creates ``GO`` to let them finish."""
    nb = Notebook(tmp_path)
    go = tmp_path / "go"
    nb.cell(WAIT_FOR)
    nb.ns["GO"] = str(go)
    return nb, go


def _failure(nb: Notebook, *targets: str, **options: Any) -> TaskFailed:
    """The ``TaskFailed`` that running ``nb`` raises."""
    with pytest.raises(TaskFailed) as info:
        nb.run(*targets, **options)
    return info.value


def _runs(nb: Notebook) -> list[str]:
    return nb.log.read_text().split() if nb.log.exists() else []


def _wait_until(condition: Callable[[], bool], limit: float = 30.0) -> bool:
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.02)
    return True


def _temp_files(nb: Notebook) -> list[Path]:
    return list((nb.log.parent / "cache" / "blobs").rglob(".tmp-*"))


def _stored_values(nb: Notebook, tasks: list[str]) -> dict[str, Any]:
    """Every stored cache entry of ``tasks``, loaded (a broken one raises)."""
    store = nb.graph.store
    return {f"{e.task}@{e.key[:8]}": store.load(e) for t in tasks for e in store.entries_of(t) if e.stored}


class _Events:
    """Every event of a graph's bus, in order."""

    def __init__(self, nb: Notebook) -> None:
        self.seen: list[Event] = []
        nb.graph.bus.subscribe(self.seen.append)

    def started(self) -> list[str]:
        return [e.task for e in self.seen if isinstance(e, TaskStarted)]

    def finished(self, task: str) -> bool:
        return any(isinstance(e, TaskFinished) and e.task == task for e in list(self.seen))

    def clear(self) -> None:
        self.seen.clear()


class _CtrlC:
    """Press Ctrl-C for real: a ``threading.Timer`` sends SIGINT to this process once ``ready()`` holds."""

    def __init__(self, ready: Callable[[], bool], delay: float = 0.2) -> None:
        self.ready, self.delay, self.sent = ready, delay, False
        self._stop = threading.Event()
        self.timer = threading.Timer(0.01, self._fire)

    def _fire(self) -> None:
        end = time.monotonic() + 20
        while not self.ready():
            if self._stop.is_set() or time.monotonic() > end:
                return
            time.sleep(0.01)
        if not self._stop.wait(self.delay):
            self.sent = True
            os.kill(os.getpid(), signal.SIGINT)

    def __enter__(self) -> _CtrlC:
        # Python's own handler, as in a terminal or a kernel: a shell that starts a job in the background
        # without job control starts it with SIGINT ignored, and Python then keeps it ignored.
        self._previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.timer.join()
        signal.signal(signal.SIGINT, self._previous)


# ------------------------------------------------------------------ the contract


class BackendContract:
    """What every backend must do; subclasses choose ``backend`` and ``jobs``."""

    backend: Any = "inline"
    jobs = 1
    remote = False  # task bodies run in other processes

    def run(self, nb: Notebook, *targets: str, **options: Any) -> tuple[Any, list[str]]:
        return nb.run(*targets, backend=self.backend, jobs=self.jobs, **options)

    def failure(self, nb: Notebook, **options: Any) -> TaskFailed:
        """The ``TaskFailed`` that running ``nb`` on this backend raises."""
        return _failure(nb, backend=self.backend, jobs=self.jobs, **options)

    def lanes_are_right(self, lanes: set[str]) -> None:
        raise NotImplementedError

    # -- values, run-once, targets, incremental

    def test_values_are_correct(self, tmp_path: Path) -> None:
        nb = _diamond(tmp_path)
        report, _ = self.run(nb)
        assert {t: nb.graph[t] for t in "abcd"} == {"a": 2, "b": 20, "c": 3, "d": 23}
        assert nb.ns["d"] == 23, "values are bound in the namespace"
        assert report.ok

    def test_each_task_runs_exactly_once(self, tmp_path: Path) -> None:
        nb = _diamond(tmp_path)
        report, ran = self.run(nb)
        assert sorted(ran) == ["a", "b", "c", "d"]
        assert ran[0] == "a" and ran[-1] == "d"
        assert sorted(report.executed) == ["a", "b", "c", "d"]

    def test_only_the_targets_and_their_upstream_run(self, tmp_path: Path) -> None:
        nb = _diamond(tmp_path)
        report, ran = self.run(nb, "b")
        assert ran == ["a", "b"]
        assert list(report.statuses) == ["a", "b"]
        assert "c" not in nb.graph.results and "d" not in nb.graph.results

    def test_a_second_run_executes_nothing(self, tmp_path: Path) -> None:
        nb = _diamond(tmp_path)
        self.run(nb)
        report, ran = self.run(nb)
        assert ran == []
        assert sorted(report.cached) == ["a", "b", "c", "d"]
        assert report.executed == []

    # -- failures

    def test_a_failure_raises_task_failed_skips_dependents_and_cancels_the_rest(self, tmp_path: Path) -> None:
        nb = _failing(tmp_path)
        failure = self.failure(nb)
        assert failure.task == "fail"
        assert isinstance(failure.__cause__, ValueError) and str(failure.__cause__) == "boom"
        report = failure.report  # type: ignore[attr-defined]
        assert report.failed == ["fail"]
        assert report.skipped == ["child"]
        assert "z3" in report.cancelled, "no new task starts after the first failure"
        ran = set(_runs(nb))
        assert "child" not in ran and "z3" not in ran
        assert set(report.statuses) == {"fail", "child", "z1", "z2", "z3"}

    def test_keep_going_runs_every_independent_branch(self, tmp_path: Path) -> None:
        nb = _failing(tmp_path)
        nb.ns["SLOW"] = 0.0
        report = self.failure(nb, keep_going=True).report  # type: ignore[attr-defined]
        assert sorted(report.executed) == ["z1", "z2", "z3"]
        assert report.skipped == ["child"]
        assert sorted(_runs(nb)) == ["fail", "z1", "z2", "z3"]
        assert (nb.graph["z1"], nb.graph["z2"], nb.graph["z3"]) == (1, 2, 3)

    def test_raise_errors_false_returns_the_report(self, tmp_path: Path) -> None:
        nb = _failing(tmp_path)
        report, _ = self.run(nb, raise_errors=False, keep_going=True)
        assert report.failed == ["fail"]
        assert isinstance(report.errors["fail"], ValueError)
        assert not report.ok
        assert nb.graph.last_run is report

    def test_a_failed_task_runs_again_next_time(self, tmp_path: Path) -> None:
        nb = _failing(tmp_path)
        nb.ns["SLOW"] = 0.0
        self.run(nb, raise_errors=False, keep_going=True)
        nb.task("def fail():\n    note('fail')\n    return 5\n")
        report, ran = self.run(nb)
        assert sorted(ran) == ["child", "fail"]
        assert nb.graph["child"] == 5

    def test_a_task_error_shows_the_users_exception_type_message_and_line(self, tmp_path: Path) -> None:
        nb = Notebook(tmp_path)
        nb.task(KEY_ERROR)
        failure = self.failure(nb)
        assert str(failure) == (
            "Task `fail` raised KeyError: 'row 3 is empty'. Fix the task (or its inputs) and "
            "run it again; the values of other tasks are kept."
        )
        error = failure.__cause__
        assert type(error) is KeyError and error.args == ("row 3 is empty",)
        filename = nb.ns["fail"].__code__.co_filename
        if self.remote:  # tracebacks do not cross processes: the worker's, as text
            assert f'File "{filename}", line 4, in fail' in error.remote_traceback  # type: ignore[attr-defined]
            assert error.remote_traceback.rstrip().endswith("KeyError: 'row 3 is empty'")  # type: ignore[attr-defined]
        else:
            frames = [(f.filename, f.lineno, f.name) for f in _frames(error)]
            assert frames[-1] == (filename, 4, "fail")

    # -- retries

    FLAKY = (
        "def flaky():\n"
        "    note('flaky')\n"
        "    with open(COUNTER, 'a') as handle:\n"
        "        handle.write('x')\n"
        "    with open(COUNTER) as handle:\n"
        "        attempt = len(handle.read())\n"
        "    if attempt <= FAILS:\n"
        "        raise RuntimeError(f'attempt {attempt} fails')\n"
        "    return attempt\n"
    )

    def _flaky(self, tmp_path: Path, fails: int, retries: int) -> Notebook:
        """``flaky`` fails on its first ``fails`` attempts (counted in a file, across processes) --> use."""
        nb = Notebook(tmp_path)
        nb.ns.update(COUNTER=str(tmp_path / "attempts"), FAILS=fails)
        nb.task(self.FLAKY, retries=retries)
        nb.task("def use(flaky):\n    note('use')\n    return flaky * 10\n")
        return nb

    def test_a_flaky_task_succeeds_within_its_retries(self, tmp_path: Path) -> None:
        nb = self._flaky(tmp_path, fails=2, retries=2)
        report, ran = self.run(nb)
        assert ran == ["flaky", "flaky", "flaky", "use"]
        assert report.attempts == {"flaky": 3}
        assert report.executed == ["flaky", "use"]
        assert nb.graph["flaky"] == 3 and nb.graph["use"] == 30

    def test_a_task_failing_more_often_than_its_retries_fails(self, tmp_path: Path) -> None:
        nb = self._flaky(tmp_path, fails=2, retries=1)
        failure = self.failure(nb)
        assert isinstance(failure.__cause__, RuntimeError)
        assert str(failure.__cause__) == "attempt 2 fails"
        report = failure.report  # type: ignore[attr-defined]
        assert _runs(nb) == ["flaky", "flaky"]
        assert report.attempts == {"flaky": 2}
        assert report.statuses == {"flaky": "failed", "use": "skipped"}

    # -- timeouts

    def test_a_task_past_its_timeout_times_out_and_its_result_is_never_used(self, tmp_path: Path) -> None:
        """``hang`` waits on the go file far past its 0.5 s timeout.

        Inline, it is interrupted: its second note never happens, even once
        the go file exists. Elsewhere it is abandoned: it carries on, and
        when it does finish (the test lets it, then waits for it), its value
        is neither bound nor cached; the next run executes it again.
        """
        nb, go = _with_gate(tmp_path)
        hang = "def hang():\n    note('hang')\n    wait_for(GO)\n    note('hang-end')\n    return 7\n"
        nb.task(hang, timeout=0.5)
        nb.task("def child(hang):\n    note('child')\n    return hang + 1\n")
        failure = self.failure(nb)
        assert str(failure) == (
            "Task `hang` did not finish within its timeout of 0.5 s. Raise the timeout "
            "(`%%task --timeout SECONDS`, `@task(timeout=...)`) or make the task faster; "
            "its dependents were skipped."
        )
        report = failure.report  # type: ignore[attr-defined]
        assert isinstance(report.errors["hang"], TaskTimedOut)
        assert report.timed_out == ["hang"] and report.skipped == ["child"]
        # the clock starts at submission: on a pool still starting, `hang` may begin only after its timeout
        assert _wait_until(lambda: _runs(nb) == ["hang"]), "hang started, and did not get past its wait"

        go.touch()
        if self.backend == "inline":
            assert _runs(nb) == ["hang"], "the inline task was interrupted: nothing of it runs on"
        else:
            assert _wait_until(lambda: "hang-end" in _runs(nb)), "the abandoned task finishes in its worker"
        assert "hang" not in nb.graph.results and callable(nb.ns["hang"]), "no value was bound"
        assert nb.graph.store.head("hang") is None and nb.graph.store.entries_of("hang") == []

        nb.task(hang, timeout=30)  # a busy machine may be slow to hand it to a worker: only the rerun matters now
        report, ran = self.run(nb)
        assert ran == ["hang", "hang-end", "child"]
        assert nb.graph["child"] == 8 and report.timed_out == []

    # -- Ctrl-C

    INTERRUPTED = [
        "def fast():\n    note('fast')\n    return 1\n",
        "def slow():\n    note('slow')\n    wait_for(GO)\n    note('slow-end')\n    return 2\n",
        "def after(slow, fast):\n    note('after')\n    return slow + fast\n",
    ]

    def test_ctrl_c_keeps_what_finished_and_the_next_run_does_the_rest(self, tmp_path: Path) -> None:
        """fast   slow --> after, with a real SIGINT while ``slow`` is in flight (and ``fast`` is done).

        Inline, the signal lands in ``slow``'s sleep in the main thread;
        elsewhere in the run loop's wait, while ``slow`` runs on a worker.
        """
        nb, go = _with_gate(tmp_path)
        for source in self.INTERRUPTED:
            nb.task(source)
        events = _Events(nb)
        with _CtrlC(lambda: events.finished("fast") and "slow" in _runs(nb)) as ctrl_c:
            with pytest.raises(KeyboardInterrupt) as info:
                self.run(nb)
        assert ctrl_c.sent
        where = {f.name for f in _frames(info.value)}
        assert ("wait_for" in where) == (self.backend == "inline"), f"interrupted in {sorted(where)}"

        assert nb.graph.statuses == {"fast": "done", "slow": "cancelled", "after": "skipped"}
        assert nb.ns["fast"] == 1 and nb.graph["fast"] == 1, "a task that finished is bound"
        assert "after" not in _runs(nb), "a task that had not started never runs"
        assert _temp_files(nb) == []
        assert list(_stored_values(nb, ["fast", "slow", "after"]).values()) == [1], "only fast is cached"

        go.touch()
        if self.backend != "inline":  # the abandoned body finishes in its worker; its value is dropped
            assert _wait_until(lambda: "slow-end" in _runs(nb))
        assert "slow" not in nb.graph.results and nb.graph.store.head("slow") is None

        before = len(_runs(nb))
        report = nb.graph.run(backend=self.backend, jobs=self.jobs)
        assert _runs(nb)[before:] == ["slow", "slow-end", "after"]
        assert report.cached == ["fast"] and nb.graph["after"] == 3

    # -- printed output

    def test_prints_reach_the_cell_and_are_kept_for_a_cache_hit(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        source = (
            "import sys\n"
            "def p():\n"
            "    note('p')\n"
            "    print('hello from p')\n"
            "    print('careful', file=sys.stderr)\n"
            "    return 1\n"
        )
        recorded = [
            {"output_type": "stream", "name": "stdout", "text": "hello from p\n"},
            {"output_type": "stream", "name": "stderr", "text": "careful\n"},
        ]
        nb = Notebook(tmp_path)
        nb.task(source)
        capsys.readouterr()
        self.run(nb)
        shown = capsys.readouterr()
        assert (shown.out, shown.err) == ("hello from p\n", "careful\n")
        assert nb.graph.results["p"].captured == recorded
        nb.graph.store.close()

        restarted = Notebook(tmp_path)  # a new kernel over the same cache
        restarted.task(source)
        report, ran = self.run(restarted)
        assert ran == [] and report.cached == ["p"]
        assert restarted.graph.results["p"].captured == recorded
        capsys.readouterr()
        restarted.graph.replay(restarted.graph.results["p"].captured)  # what `%%task` does on a hit
        shown = capsys.readouterr()
        assert (shown.out, shown.err) == ("hello from p\n", "careful\n")

    # -- lanes

    def test_trace_lanes_name_where_each_task_ran(self, tmp_path: Path) -> None:
        """Two tasks that overlap in time, then a third that reads both."""
        nb = Notebook(tmp_path)
        nb.cell("import time\n")
        nb.task("def left():\n    note('left')\n    time.sleep(0.3)\n    return 1\n")
        nb.task("def right():\n    note('right')\n    time.sleep(0.3)\n    return 2\n")
        nb.task("def both(left, right):\n    note('both')\n    return left + right\n")
        self.run(nb)
        trace = nb.graph.trace
        assert trace is not None and {s.task for s in trace.spans} == {"left", "right", "both"}
        self.lanes_are_right({s.lane for s in trace.spans})

    # -- cost-aware order

    ORDERED = [
        "def chain1():\n    note('chain1')\n    return 1\n",
        "def tiny():\n    note('tiny')\n    return 2\n",
        "def long():\n    note('long')\n    time.sleep(0.4)\n    return 3\n",
        "def chain2(chain1):\n    note('chain2')\n    return chain1 + 1\n",
    ]

    def test_measured_durations_start_the_longest_path_first(self, tmp_path: Path) -> None:
        """chain1 --> chain2    tiny    long (0.4 s), defined in that order.

        Before anything was measured, every task counts the same: chain1
        heads the longest path (two tasks) and ties keep definition order,
        so ``chain1`` and ``tiny`` start first, ``long`` last. Once measured,
        ``long`` is the longest path and starts first. With one job
        (inline) the order is the definition order, always.
        """
        nb = Notebook(tmp_path)
        nb.cell("import time\n")
        for source in self.ORDERED:
            nb.task(source)
        events = _Events(nb)
        self.run(nb)
        first = events.started()
        events.clear()
        self.run(nb, force=["chain1", "chain2", "tiny", "long"])
        second = events.started()
        assert sorted(first) == sorted(second) == ["chain1", "chain2", "long", "tiny"]
        if self.jobs == 1:
            assert first == second == ["chain1", "tiny", "long", "chain2"]
        else:
            assert first[:2] == ["chain1", "tiny"], "unmeasured, long waits: what FIFO would do"
            assert second[0] == "long", "measured, the longest remaining path starts first"


def _frames(error: BaseException) -> list[Any]:
    import traceback

    return list(traceback.extract_tb(error.__traceback__))


def _pid(lane: str) -> int:
    match = re.fullmatch(r"pid (\d+)", lane)
    assert match, f"lane {lane!r} does not name a process"
    return int(match.group(1))


class TestInlineBackend(BackendContract):
    backend = "inline"
    jobs = 1

    def lanes_are_right(self, lanes: set[str]) -> None:
        assert lanes == {"main"}


class TestThreadBackend(BackendContract):
    backend = "threads"
    jobs = 2

    def lanes_are_right(self, lanes: set[str]) -> None:
        assert len(lanes) == 2 and lanes <= {"dagnb_0", "dagnb_1"}, lanes


class TestProcessBackend(BackendContract):
    backend = "processes"
    jobs = 2
    remote = True

    def lanes_are_right(self, lanes: set[str]) -> None:
        workers = {p.pid for p in psutil.Process().children(recursive=True)}
        pids = {_pid(lane) for lane in lanes}
        assert os.getpid() not in pids
        assert pids <= workers, f"{pids} are not worker processes of this one ({workers})"


def _close_leaked_client(keep: Any) -> None:
    """Close the client dagnb opened for ``dask://`` (the newest default client), not ``keep``."""
    from distributed import default_client

    leaked = default_client()
    if leaked is not keep:
        leaked.close()


class TestDaskBackend(BackendContract):
    """On the session's LocalCluster, through the ``Client`` object."""

    jobs = 2
    remote = True

    @pytest.fixture(autouse=True)
    def _on_the_cluster(self, dask_client: Any) -> None:
        self.backend = self.client = dask_client

    def lanes_are_right(self, lanes: set[str]) -> None:
        workers = set(self.client.run(os.getpid).values())
        pids = {_pid(lane) for lane in lanes}
        assert os.getpid() not in pids
        assert pids <= workers, f"{pids} are not the cluster's workers ({workers})"

    def test_a_scheduler_address_reaches_the_same_cluster(self, tmp_path: Path, dask_cluster: Any) -> None:
        address = dask_cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        nb = _diamond(tmp_path)
        try:
            report, ran = nb.run(backend="dask://" + address[len("tcp://"):])
            assert sorted(ran) == ["a", "b", "c", "d"] and nb.graph["d"] == 23
            workers = set(self.client.run(os.getpid).values())
            assert {_pid(s.lane) for s in nb.graph.trace.spans} <= workers
            report, ran = nb.run(backend="dask://" + address[len("tcp://"):])
            assert ran == [] and sorted(report.cached) == ["a", "b", "c", "d"]
        finally:
            nb.graph.close()
            _close_leaked_client(self.client)  # close() leaves it open: see test_known_bugs.py


# ------------------------------------------------------------------ errors a user can hit


def test_an_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(CommandError) as info:
        make_backend("nope")
    assert str(info.value) == (
        "There is no backend `nope`. Use one of: inline, threads, processes, dask, dask://HOST:PORT."
    )


def test_an_unknown_backend_fails_the_run_before_any_task_runs(tmp_path: Path) -> None:
    nb = _diamond(tmp_path)
    with pytest.raises(CommandError, match="^There is no backend `thread`"):
        nb.run(backend="thread")
    assert _runs(nb) == []


def test_the_dask_backend_without_distributed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    with pytest.raises(CommandError) as info:
        make_backend("dask")
    assert str(info.value) == (
        "The `dask` backend needs `distributed`, which is not installed. "
        'Install it with `pip install "dagnb[dask]"`, or use `--backend processes`.'
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retries": -1}, "Task `t`: `retries` is -1. Give a whole number, 0 or more."),
        ({"retries": 1.5}, "Task `t`: `retries` is 1.5. Give a whole number, 0 or more."),
        ({"timeout": 0}, "Task `t`: `timeout` is 0. Give a number of seconds above 0."),
        ({"timeout": -2.5}, "Task `t`: `timeout` is -2.5. Give a number of seconds above 0."),
    ],
)
def test_bad_retries_and_timeouts_are_refused_at_definition(options: dict[str, Any], message: str) -> None:
    graph = dagnb.Graph()

    def t() -> int:
        return 1

    with pytest.raises(TaskDefinitionError) as info:
        graph.task(**options)(t)
    assert str(info.value) == message
    assert "t" not in graph.tasks


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # the session's cluster has it
def test_backend_dask_starts_a_local_cluster_that_close_ends(tmp_path: Path, dask_client: Any) -> None:
    """``backend="dask"``: a LocalCluster of its own (not the session's), kept across runs, ended by ``close``."""
    nb = _diamond(tmp_path)
    ours = set(dask_client.run(os.getpid).values())
    try:
        _, ran = nb.run(backend="dask")
        assert sorted(ran) == ["a", "b", "c", "d"] and nb.graph["d"] == 23
        pids = {_pid(s.lane) for s in nb.graph.trace.spans}
        assert len(pids) == 1, "jobs=1: one worker"
        assert not pids & ours and os.getpid() not in pids
        assert all(psutil.pid_exists(p) for p in pids)
        nb.task("def e(d):\n    note('e')\n    return d + 1\n")
        _, ran = nb.run(backend="dask")
        assert ran == ["e"] and {_pid(s.lane) for s in nb.graph.trace.spans} == pids, "the cluster is reused"
    finally:
        nb.graph.close()
    assert _wait_until(lambda: not any(psutil.pid_exists(p) for p in pids)), "close() ends the workers"
