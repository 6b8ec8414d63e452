"""The ``dask`` backend: task bodies run on a ``distributed`` cluster's workers, local or remote.

Each worker holds a :class:`~dagnb.run.worker.WorkerActor` actor; the kernel sends
a task straight to the runner with the fewest tasks in flight, and the
reply carries its outcome (one round trip per task; the scheduler's own path
costs several, more than a small task itself). The call reaches the worker
directly when it is on this machine's loopback (or the client says so), and
through the scheduler otherwise.

Invariants:
    * the kernel pickles what a task needs (function, inputs, and the user
      modules it reaches, by value) in the thread that submits: a value that
      cannot travel fails its own task at once;
    * a task is run at most once per submission: a lost worker fails the
      task (the executor's retries decide whether it runs again);
    * a task the run abandoned (a timeout, Ctrl-C) finishes on its worker
      and its reply is dropped;
    * remote workers only compute: the kernel alone writes the cache.
"""

from __future__ import annotations

import contextlib
import pickle
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from dagnb.errors import CommandError
from dagnb.run.work import Outcome, Work, send_by_value
from dagnb.run.worker import WorkerActor, run_pickled, with_kernel_source

__all__ = ["DaskBackend"]


class DaskBackend:
    """Runs tasks on a ``distributed`` cluster's workers; results come back to the kernel.

    Responsibilities:
        * place a runner on each worker at the first submission, keep them on
          the client for its later runs, and place one again where a worker
          was lost;
        * send each task to the least-loaded runner, and settle its future
          from the client's event loop when the reply arrives;
        * with no runner (no worker yet, or dagnb not importable on the
          workers), submit tasks through the scheduler instead.
    """

    name = "dask"

    def __init__(self, client: Any, owned: Any = None, close_client: bool = False) -> None:
        self.client, self._owned, self._close_client = client, owned, close_client
        workers = client.scheduler_info().get("workers", {})
        self.jobs = max(1, sum(w.get("nthreads", 1) for w in workers.values()))
        self._lock = threading.Lock()  # in-flight counts change in the kernel's thread and the client's loop

    @classmethod
    def connect(cls, address: str | None, jobs: int) -> DaskBackend:
        """A client of the scheduler at ``address``, or of a new LocalCluster on 127.0.0.1."""
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise CommandError(
                "The `dask` backend needs `distributed`, which is not installed. "
                'Install it with `pip install "dagnb[dask]"`, or use `--backend processes`.'
            ) from None
        if address:
            return cls(Client(address, timeout="10s", set_as_default=False), close_client=True)
        cluster = LocalCluster(
            n_workers=max(1, jobs), threads_per_worker=1, host="127.0.0.1", dashboard_address=None, processes=True
        )
        return cls(Client(cluster), owned=cluster)

    def submit(self, work: Work) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        try:
            payload = _payload(work.func, work.kwargs)
        except Exception as exc:  # an input (or the function) cannot be pickled: only this task fails
            future.set_result(Outcome(error=exc, remote=True))
            return future
        runner = self._runner()
        if runner is None:
            return self._through_scheduler(work, payload)
        self.client.loop.add_callback(self._call, runner, payload, work.func, future)
        return future

    def _runner(self) -> _Runner | None:
        """The live runner with the fewest tasks in flight (counted as taken); placed first if need be.

        Placing waits on the client's event loop, so it happens without the
        lock, which that loop takes when a call ends.
        """
        runners = getattr(self.client, _RUNNERS, None)
        if runners is None or any(r.lost or r.future.status != "finished" for r in runners):  # a worker left
            runners = _place_runners(self.client, runners or [])
            setattr(self.client, _RUNNERS, runners)
        if not runners:
            return None
        with self._lock:
            runner = min(runners, key=lambda r: r.in_flight / r.threads)
            runner.in_flight += 1
        return runner

    async def _call(self, runner: _Runner, payload: bytes, func: Any, future: Future[Outcome]) -> None:
        """On the client's event loop: call the runner, then settle ``future`` with what came back.

        The call is the message a dask ``Actor`` proxy sends, made here so
        that a lost worker fails the task at once (the proxy would wait for
        the actor to come back, and run the task again there).
        """
        from distributed.protocol import to_serialize

        try:
            reply = await runner.rpc.actor_execute(
                actor=runner.key, function="run", args=[to_serialize(payload)], kwargs={}
            )
            if reply["status"] != "OK":
                raise reply["exception"]
            outcome = pickle.loads(reply["result"])
        except BaseException as exc:  # noqa: BLE001 - a lost worker, a reply that cannot be loaded: the task failed
            runner.lost = runner.lost or isinstance(exc, OSError) or runner.future.status != "finished"
            outcome = Outcome(error=exc, remote=True)
        finally:
            with self._lock:
                runner.in_flight -= 1
        if future.cancelled():  # abandoned (a timeout, Ctrl-C): nobody waits for it
            return
        with contextlib.suppress(InvalidStateError):  # cancelled meanwhile, from the kernel's thread
            future.set_result(with_kernel_source(outcome, func))

    def _through_scheduler(self, work: Work, payload: bytes) -> Future[Outcome]:
        """Submit one task as a dask task (no runner could be placed)."""
        future: Future[Outcome] = Future()
        remote = self.client.submit(run_pickled, payload, pure=False)

        def settle(done: Any) -> None:
            if future.cancelled():  # abandoned (a timeout, Ctrl-C): nobody waits for it
                return
            try:
                future.set_result(with_kernel_source(pickle.loads(done.result()), work.func))
            except BaseException as exc:  # cancelled, lost worker: the task failed
                future.set_result(Outcome(error=exc, remote=True))

        remote.add_done_callback(settle)
        future.add_done_callback(lambda f: remote.cancel() if f.cancelled() else None)
        return future

    def shutdown(self) -> None:
        with contextlib.suppress(AttributeError):
            delattr(self.client, _RUNNERS)  # releasing their futures ends the actors
        if self._close_client and self._owned is None:
            self.client.close()
        if self._owned is not None:
            self.client.close()
            self._owned.close()


# A client's runners, kept on the client itself: a table keyed by clients would keep every client alive
# (the runners' futures refer to it), while a client and its runners are collected together.
_RUNNERS = "_dagnb_runners"


@dataclass
class _Runner:
    """One worker's :class:`~dagnb.run.worker.WorkerActor`: the future that holds it, where it is, its load."""

    future: Any
    rpc: Any  # the worker, directly or through the scheduler, as the client reaches workers
    address: str
    threads: int
    in_flight: int = 0
    lost: bool = False

    @property
    def key(self) -> str:
        return self.future.key


def _place_runners(client: Any, previous: list[_Runner]) -> list[_Runner]:
    """A runner on each worker the scheduler knows (those of ``previous`` still alive are kept)."""
    from distributed.actor import ProxyRPC

    runners = [r for r in previous if not r.lost and r.future.status == "finished"]
    held = {r.address for r in runners}
    workers = client.scheduler_info().get("workers", {})
    futures = {
        address: client.submit(
            WorkerActor,
            actor=True,
            workers=[address],
            allow_other_workers=False,
            pure=False,
            key=f"dagnb-runner-{uuid.uuid4().hex}",
        )
        for address in workers
        if address not in held
    }
    for address, future in futures.items():
        try:
            future.result(timeout=30)  # `distributed.wait` would look for the default client, maybe another
        except Exception:  # dagnb is not importable there, or the worker left: tasks go elsewhere
            future.release()
            continue
        rpc = client.rpc(address) if _reaches_directly(client, address) else ProxyRPC(client.scheduler, address)
        runners.append(_Runner(future, rpc, address, max(1, workers[address].get("nthreads", 1))))
    return runners


def _reaches_directly(client: Any, address: str) -> bool:
    """Whether calls go straight to the worker at ``address`` rather than through the scheduler.

    As the client says (``direct_to_workers``); when it leaves it open (the
    default), straight to a worker on this machine's loopback when the
    scheduler is on it too (a ``LocalCluster``): one hop each way instead of
    two. A worker elsewhere may be reachable only through its scheduler.
    """
    if client.direct_to_workers is not None:
        return bool(client.direct_to_workers)
    return _on_loopback(client.scheduler.address) and _on_loopback(address)


def _on_loopback(address: str) -> bool:
    import ipaddress

    from distributed.comm import parse_address, parse_host_port

    scheme, location = parse_address(address)
    if scheme == "inproc":
        return True
    try:
        host = parse_host_port(location)[0]
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name, or no port: not known to be here
        return False


def _payload(func: Callable[..., Any], kwargs: dict[str, Any]) -> bytes:
    """What a worker needs to run a task: its function, inputs and user modules, pickled once here."""
    import cloudpickle

    modules = send_by_value(func)
    return cloudpickle.dumps((func, kwargs, modules), protocol=pickle.HIGHEST_PROTOCOL)
