"""Fixtures of the backend tests: one real dask cluster per session, healthy loky workers.

* ``dask_cluster`` / ``dask_client``: a ``distributed.LocalCluster`` of two
  single-threaded worker processes on 127.0.0.1, started once for the
  session and closed at its end.
* ``dask_one_worker``: a client of a cluster of its own, one worker process
  of two threads, for the tests that kill a worker or need two tasks on one.
* loky: the ``processes`` backend uses the reusable executor that joblib's
  vendored loky keeps per process. After each test, work a test abandoned
  (a timed-out or interrupted task) must have drained so the next test gets
  both workers; a broken executor (a worker died) is shut down so the next
  ``Graph`` gets a new one. At the end of the session the workers are
  stopped, and loky's slot is left empty for whoever uses it next.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

UNIT = Path(__file__).resolve().parents[1] / "unit"
if str(UNIT) not in sys.path:
    sys.path.insert(0, str(UNIT))  # notebook_cells, the Notebook helper of the unit tests


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():  # "Port 8787 is already in use": its HTTP server moves to another
        warnings.simplefilter("ignore", UserWarning)
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
        )
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="session")
def dask_client(dask_cluster: Any) -> Iterator[Any]:
    from distributed import Client

    client = Client(dask_cluster)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def dask_one_worker() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        cluster = distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, host="127.0.0.1", dashboard_address=None, processes=True
        )
    client = distributed.Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def _loky_executor() -> Any:
    """The process's reusable loky executor, if one was made (never creates one)."""
    from joblib.externals.loky import reusable_executor

    return reusable_executor._executor


@pytest.fixture(autouse=True)
def _loky_workers_settled() -> Iterator[None]:
    yield
    executor = _loky_executor()
    if executor is None:
        return
    if executor._flags.broken:
        executor.shutdown(wait=True, kill_workers=True)
        return
    deadline = time.monotonic() + 30
    while getattr(executor, "_pending_work_items", None) and time.monotonic() < deadline:
        time.sleep(0.02)
    if getattr(executor, "_pending_work_items", None):
        executor.shutdown(wait=False, kill_workers=True)  # stuck: the next test starts new workers
        pytest.fail("loky workers still busy 30 s after the test ended")


@pytest.fixture(scope="session", autouse=True)
def _loky_workers_stopped_at_end() -> Iterator[None]:
    yield
    executor = _loky_executor()
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)
