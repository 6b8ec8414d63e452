"""What the rooms around a :class:`~dagnb.api.Graph` call back on it: epochs, what planning and runs ask.

The planner, the run room (:class:`~dagnb.run.host.Host`) and the notebook
glue call these; a user rarely does. Each hands the call on to the module
that owns the logic (:mod:`dagnb.planning`, :mod:`dagnb.epoch`,
:mod:`dagnb.freshness`, :mod:`dagnb.untracked_warnings`). A part of
:class:`~dagnb.api.Graph`, which sets the attributes declared here.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from dagnb.freshness import Reads, namespace_reads

if TYPE_CHECKING:
    from dagnb.epoch import Epoch
    from dagnb.fingerprints.scopes import FunctionNode
    from dagnb.fingerprints.untracked import Untracked
    from dagnb.freshness import Freshness
    from dagnb.graph import TaskGraph, TaskSpec
    from dagnb.inplace import InputGuard
    from dagnb.plan import Decision, Result
    from dagnb.planning import Planner
    from dagnb.run.taskrunner import TaskRunner
    from dagnb.untracked_warnings import UntrackedWarnings

__all__ = ["HostCalls"]


class HostCalls:
    """Epochs, freshness, parameter checks, untracked-read warnings and binding a value, for a graph."""

    tasks: TaskGraph
    namespace: MutableMapping[str, Any]
    results: dict[str, Result]
    interrupted: dict[str, Any]
    freshness: Freshness
    _epoch: Epoch
    _planner: Planner
    _runner: TaskRunner
    _guard: InputGuard
    _untracked: UntrackedWarnings

    def epoch(self) -> AbstractContextManager[None]:
        """One epoch for what runs inside: plans share one fingerprint of each notebook input and one plan.

        Open it where nothing but dagnb changes the namespace (the notebook glue
        holds one over each ``%%task`` cell, up to the plan after it). Entering
        it ends the epoch before; inside, a definition or a task body that ran
        still ends the epoch (see :mod:`dagnb.epoch`). Outside it, every
        planning call and every run starts an epoch of its own.
        """
        return self._epoch.hold(self._planner.new_epoch)

    def namespace_changed(self) -> None:
        """The namespace may have changed (each run and plan starts with this): a new epoch, in which tasks that
        read the namespace are decided again, unless every name they read is still bound to the same unchanging
        object. Inside :meth:`epoch` nothing but a task body changes the namespace: only after one is it a new epoch."""
        self._planner.namespace_changed()

    def fingerprint_input(self, value: Any) -> str:
        """A value a key reads, fingerprinted once per epoch (planning calls it)."""
        return self._epoch.fingerprint(value)

    def _reads(self, task: str, spec: TaskSpec) -> Reads | None:
        """What ``task``'s key reads from the namespace, to compare at the next cell (None: nothing)."""
        return namespace_reads(self.tasks, self.namespace, task, spec)

    def ran_before(self, task: str) -> bool:
        """Whether ``task`` has a value in memory or a head in the cache (``stale`` rather than ``pending``).

        Asked for every task after each cell: the answer is kept, and forgotten when this session binds a
        value (another session's writes only turn a ``pending`` into ``stale`` later than they could).
        """
        return self._planner.ran_before(task)

    def fresh_decision(self, task: str) -> Decision | None:
        """What a run would decide for ``task`` when its value is known up to date (see :mod:`dagnb.freshness`)."""
        return self._planner.fresh_decision(task)

    def check(self, name: str) -> None:
        """Raise now if any parameter of ``name``, or of an upstream task that ran before and is not known
        fresh, cannot resolve (one that never ran was checked when it was defined, and is when it runs)."""
        self._planner.check(name)

    def say_untracked(
        self, name: str, node: FunctionNode | None = None, line_offset: int | None = None
    ) -> list[Untracked]:
        """Warn once (:class:`UntrackedWarning`) if task ``name`` reads what its key does not cover.

        ``node`` is the task function's tree when the caller has parsed it
        (a ``%%task`` cell, ``line_offset=1``: its magic line comes first);
        otherwise its source is parsed here and lines count in its file. The
        same findings are not told twice (re-running an unchanged cell says
        nothing); a volatile task is never told. Returns the findings.
        """
        return self._untracked.say(self.tasks.get(name), self.tasks.specs, self.namespace, node, line_offset)

    @property
    def _damaged(self) -> set[str]:
        """Values a task changed in place in the current run, with no copy to put back (see inplace.py)."""
        return self._runner.damaged

    def _bind(self, task: str, result: Result) -> None:
        old = self.results.get(task)
        if old is None or old.value is not result.value:  # a new object: what was known of the old one is void
            self._guard.forget(task)
        if old is None or old.key != result.key or old.fingerprint != result.fingerprint:
            self.freshness.changed(task)
        self._planner.bound(task)
        self.interrupted.pop(task, None)
        self.results[task] = result
        self.namespace[task] = result.value
