"""Backend edge cases the contract suite found: values that cannot travel, dead workers,
notebook exception classes, remote tracebacks, abandoned dask tasks, clients opened for an address,
outer timers.
"""

from __future__ import annotations

import logging
import os
import signal
import warnings
from pathlib import Path
from typing import Any

import pytest
from notebook_cells import Notebook

import dagnb.graph
from dagnb.errors import TaskFailed

from .test_contract import KEY_ERROR, _close_leaked_client, _diamond, _failure, _runs, _wait_until, _with_gate

REMOTE = ["processes", "dask"]


def _backend(name: str, request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("dask_client") if name == "dask" else name


CRASH = "import os\ndef crash():\n    note('crash')\n    os._exit(3)\n"  # ends its worker process


# ------------------------------------------------------------------ processes


@pytest.mark.parametrize("backend", REMOTE)
@pytest.mark.parametrize("what", ["output", "input"])
def test_remote_a_value_that_cannot_travel_fails_only_its_task(
    tmp_path: Path, what: str, backend: str, request: pytest.FixtureRequest
) -> None:
    """``handle`` returns a lock. As an output it cannot come back from a worker; as the input
    of ``use`` (computed inline first, kept in memory) it cannot be sent to one."""
    nb = Notebook(tmp_path)
    nb.cell("import threading\n")
    nb.task("def ok():\n    note('ok')\n    return 1\n")
    nb.task("def handle():\n    note('handle')\n    return {'lock': threading.Lock()}\n")
    nb.task("def use(handle):\n    note('use')\n    return 2\n")
    if what == "input":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unfingerprintable, unpicklable: kept in memory
            nb.run("handle")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        failure = _failure(nb, backend=_backend(backend, request), jobs=2)
    failed = "handle" if what == "output" else "use"
    assert failure.task == failed
    if backend == "dask":  # the kernel pickles what a task needs before sending it, the worker what it returns
        assert str(failure).startswith(f"Task `{failed}` raised TypeError: cannot pickle '_thread.lock' object.")
    report = failure.report  # type: ignore[attr-defined]
    assert report.statuses["ok"] in ("done", "cancelled") and report.statuses[failed] == "failed"


def test_processes_a_task_that_kills_its_worker_fails(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task(CRASH)
    assert _failure(nb, backend="processes", jobs=2).task == "crash"


def test_processes_the_same_graph_runs_again_after_a_worker_died(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task(CRASH)
    with pytest.raises(Exception):  # noqa: B017 - today TerminatedWorkerError; TaskFailed once fixed
        nb.run(backend="processes", jobs=2)
    nb.graph.drop("crash")
    nb.task("def healthy():\n    note('healthy')\n    return 1\n")
    report, ran = nb.run(backend="processes", jobs=2)
    assert ran == ["healthy"] and report.executed == ["healthy"]


def test_processes_joblib_parallel_still_works_after_a_run(tmp_path: Path) -> None:
    """A notebook that runs tasks on ``processes`` and then calls scikit-learn or joblib with n_jobs=2."""
    from joblib import Parallel, delayed

    nb = _diamond(tmp_path)
    nb.run(backend="processes", jobs=2)
    assert Parallel(n_jobs=2)(delayed(abs)(-i) for i in range(4)) == [0, 1, 2, 3]


# ------------------------------------------------------------------ remote errors


@pytest.mark.parametrize("backend", REMOTE)
def test_remote_an_exception_class_defined_in_the_notebook_keeps_its_type(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    nb = Notebook(tmp_path)
    nb.cell("class BadData(Exception):\n    pass\n")
    nb.task("def fail():\n    note('fail')\n    raise BadData('row 3 is empty')\n")
    failure = _failure(nb, backend=_backend(backend, request), jobs=2)
    assert isinstance(failure.__cause__, nb.ns["BadData"])
    assert str(failure).startswith("Task `fail` raised BadData: row 3 is empty.")


@pytest.mark.parametrize("backend", REMOTE)
def test_remote_traceback_shows_the_source_of_the_failing_line(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    nb = Notebook(tmp_path)
    nb.task(KEY_ERROR)
    failure = _failure(nb, backend=_backend(backend, request), jobs=2)
    text = failure.__cause__.remote_traceback  # type: ignore[union-attr]
    assert "    raise KeyError('row 3 is empty')\n" in text, "the cell's line, from the kernel's linecache"
    assert text.count("raise KeyError('row 3 is empty')") == 1 and text.rstrip().endswith("KeyError: 'row 3 is empty'")


@pytest.mark.parametrize("backend", REMOTE)
def test_remote_traceback_names_the_cell_of_a_notebook_helper(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """The failing line is in a helper defined in another cell; the traceback names that cell."""
    nb = Notebook(tmp_path)
    nb.cell("def parse(row):\n    return int(row)\n")
    nb.task("def fail():\n    note('fail')\n    return parse('x')\n")
    failure = _failure(nb, backend=_backend(backend, request), jobs=2)
    text = failure.__cause__.remote_traceback  # type: ignore[union-attr]
    helper = nb.ns["parse"].__code__.co_filename
    assert f'File "{helper}", line 2, in parse\n    return int(row)\n' in text
    assert f'File "{nb.ns["fail"].__code__.co_filename}", line 3, in fail\n    return parse(\'x\')\n' in text


# ------------------------------------------------------------------ dask


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_dask_an_abandoned_task_finishing_later_logs_no_error(tmp_path: Path, dask_client: Any) -> None:
    nb, go = _with_gate(tmp_path)
    nb.task("def hang():\n    note('hang')\n    wait_for(GO)\n    note('hang-end')\n    return 7\n", timeout=0.5)
    errors = _Records()
    logger = logging.getLogger("distributed.client")  # it does not propagate
    logger.addHandler(errors)
    try:
        with pytest.raises(TaskFailed):
            nb.run(backend=dask_client)
        go.touch()
        assert _wait_until(lambda: "hang-end" in _runs(nb))
        assert _wait_until(lambda: not any(dask_client.processing().values()))
        _wait_until(lambda: bool(errors.records), limit=2.0)  # the client's callback runs just after
    finally:
        logger.removeHandler(errors)
    assert [r.getMessage() for r in errors.records] == []


def test_dask_a_map_task_splits_its_elements_across_the_workers(tmp_path: Path, dask_client: Any) -> None:
    nb = Notebook(tmp_path)
    nb.cell("import os, time\n")
    nb.ns["files"] = [f"f{i}" for i in range(8)]
    nb.task("def where(files):\n    time.sleep(0.05)\n    note(f'{files}@{os.getpid()}')\n    return files.upper()\n")
    nb.graph.add(dagnb.graph.spec_from_function(nb.ns["where"], map="files"))
    report = nb.graph.run(backend=dask_client, jobs=2)
    assert nb.graph["where"] == [f"F{i}" for i in range(8)], "results in element order"
    assert report.items == {"where": (8, 8)}
    calls = _runs(nb)
    assert sorted(c.split("@")[0] for c in calls) == [f"f{i}" for i in range(8)], "each element once"
    workers = set(dask_client.run(os.getpid).values())
    assert {int(c.split("@")[1]) for c in calls} == workers, f"both workers shared the elements: {calls}"


RENDEZVOUS = [  # each returns whether it saw the other's file within 10 s
    "def left():\n    note('left')\n    wait_for(GATE + '-right', 10)\n    open(GATE + '-left', 'w').close()\n"
    "    return os.path.exists(GATE + '-right')\n",
    "def right():\n    note('right')\n    open(GATE + '-right', 'w').close()\n    wait_for(GATE + '-left', 10)\n"
    "    return os.path.exists(GATE + '-left')\n",
]


def test_dask_a_worker_of_two_threads_runs_two_tasks_at_once(tmp_path: Path, dask_one_worker: Any) -> None:
    """``left`` waits for a file ``right`` writes first, and ``right`` for one ``left`` writes after:
    both see the other's file only if they run at the same time."""
    nb, _ = _with_gate(tmp_path)
    nb.cell("import os\n")
    nb.ns["GATE"] = str(tmp_path / "gate")
    for source in RENDEZVOUS:
        nb.task(source)
    report, ran = nb.run(backend=dask_one_worker, jobs=2)
    assert sorted(ran) == ["left", "right"] and sorted(report.executed) == ["left", "right"]
    assert (nb.graph["left"], nb.graph["right"]) == (True, True)
    assert len({s.lane for s in nb.graph.trace.spans}) == 1, "one worker process ran both"


def test_dask_a_task_that_kills_its_worker_fails_and_the_next_run_uses_the_new_worker(
    tmp_path: Path, dask_one_worker: Any
) -> None:
    nb = Notebook(tmp_path)
    nb.task(CRASH)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        failure = _failure(nb, backend=dask_one_worker, jobs=2)
    assert failure.task == "crash" and _runs(nb) == ["crash"], "run once, never again on another worker"
    nb.graph.drop("crash")
    nb.task("def healthy():\n    note('healthy')\n    return os.getpid()\n")
    report, ran = nb.run(backend=dask_one_worker, jobs=2)
    assert ran == ["healthy"] and report.executed == ["healthy"]
    assert nb.graph["healthy"] in set(dask_one_worker.run(os.getpid).values())


def test_dask_close_disconnects_the_client_opened_for_an_address(
    tmp_path: Path, dask_cluster: Any, dask_client: Any
) -> None:
    def clients() -> int:
        return dask_client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.clients))

    before = clients()
    nb = _diamond(tmp_path)
    nb.run(backend="dask://" + dask_cluster.scheduler_address[len("tcp://"):])
    assert clients() == before + 1
    nb.graph.close()
    try:
        assert _wait_until(lambda: clients() == before, limit=5.0)
    finally:
        _close_leaked_client(dask_client)


def _count_proxied_calls(client: Any) -> None:
    """Make the scheduler count the calls it passes on to a worker for a client (its ``proxy`` handler)."""

    def install(dask_scheduler: Any) -> None:
        original = dask_scheduler.handlers["proxy"]
        dask_scheduler.dagnb_proxied = 0

        async def counted(*args: Any, **kwargs: Any) -> Any:
            dask_scheduler.dagnb_proxied += 1
            return await original(*args, **kwargs)

        if not hasattr(dask_scheduler, "dagnb_proxy"):
            dask_scheduler.dagnb_proxy = original
            dask_scheduler.handlers["proxy"] = counted

    client.run_on_scheduler(install)


def _proxied(client: Any) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.dagnb_proxied)  # type: ignore[no-any-return]


def test_dask_on_loopback_tasks_go_straight_to_the_workers_and_elsewhere_through_the_scheduler(
    tmp_path: Path, dask_cluster: Any, dask_client: Any
) -> None:
    """A cluster on this machine's loopback is called directly (one hop each way); a client that says
    ``direct_to_workers=False`` (workers it cannot reach) has every call passed on by the scheduler."""
    from distributed import Client

    _count_proxied_calls(dask_client)
    nb = _diamond(tmp_path / "direct")
    report, ran = nb.run(backend=dask_client, jobs=2)
    assert sorted(ran) == sorted(report.executed) and len(ran) == 4
    assert _proxied(dask_client) == 0, "no task call went through the scheduler"
    through = Client(dask_cluster, direct_to_workers=False, set_as_default=False)
    try:
        nb = _diamond(tmp_path / "proxied")
        report, ran = nb.run(backend=through, jobs=2)
        assert sorted(ran) == sorted(report.executed) and len(ran) == 4
        assert _proxied(dask_client) >= 4, "each task call was passed on by the scheduler"
    finally:
        through.close()


@pytest.mark.parametrize(("address", "here"), [
    ("tcp://127.0.0.1:8786", True), ("tcp://127.0.0.2:8786", True), ("tcp://[::1]:8786", True),
    ("tcp://localhost:8786", True), ("inproc://10.0.0.5/123/1", True), ("tcp://10.0.0.5:8786", False),
    ("tls://scheduler.example.org:8786", False), ("tcp://127.0.0.1", False),
])
def test_dask_which_worker_addresses_count_as_this_machine(address: str, here: bool) -> None:
    pytest.importorskip("distributed")
    from dagnb.run.dask_backend import _on_loopback

    assert _on_loopback(address) is here


# ------------------------------------------------------------------ inline


def test_inline_a_timeout_keeps_an_enclosing_interval_timer(tmp_path: Path) -> None:
    fired: list[int] = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 60.0)
    try:
        nb = Notebook(tmp_path)
        nb.task("def quick():\n    note('quick')\n    return 1\n", timeout=5)
        nb.run()
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _runs(nb) == ["quick"] and fired == []
    assert 0 < remaining <= 60.0, "the enclosing 60 s timer is still armed"


def test_known_bugs_do_not_leave_the_process_pool_broken(tmp_path: Path) -> None:
    """After the tests above (a worker killed, joblib interleaved), ``processes`` works in a new graph."""
    nb = _diamond(tmp_path)
    _, ran = nb.run(backend="processes", jobs=2)
    assert sorted(ran) == ["a", "b", "c", "d"] and nb.graph["d"] == 23
    assert os.getpid() not in {int(s.lane.split()[1]) for s in nb.graph.trace.spans}
