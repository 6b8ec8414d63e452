"""Tasks and the dependency graph between them.

A parameter resolves, in order, to another task (an upstream edge), to its
default (a constant input), to a variable of the namespace (an external
input), or fails with a message that names the task, the parameter and the
closest existing names. A task whose code (or a notebook helper it calls)
reads another task's variable as a global, without a parameter, depends on
that task too: a *hidden* upstream edge, so the task never runs before, or
without noticing, the value it reads. What a task itself is (its
:class:`~dagnb.taskspec.TaskSpec`, built from a function or a cell) is
:mod:`dagnb.taskspec`; its names are importable from here too.

Responsibilities:
    * resolve parameters against the tasks and a namespace;
    * keep the graph acyclic and names unique, raising at once otherwise;
    * keep the edges, their reverse and the run order as tasks come and go.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dagnb.errors import CycleError, SavePathTaken, UnknownTask, UnresolvedParameter, close_matches
from dagnb.options import TaskOptions
from dagnb.run.save import saved_path
from dagnb.taskspec import Input, TaskSpec, parse_task_cell, parse_task_module, spec_from_function

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "Input",
    "TaskGraph",
    "TaskOptions",
    "TaskSpec",
    "check_save_path",
    "parse_task_cell",
    "parse_task_module",
    "spec_from_function",
]


class TaskGraph:
    """The tasks of a session and the edges their parameters imply.

    Responsibilities:
        * hold the :class:`TaskSpec` of each task by name;
        * resolve each parameter to an :class:`Input`;
        * refuse a definition that would make a cycle;
        * keep the edges, their reverse and the run order up to date as tasks
          come and go, at a cost that follows the task and its readers, not
          the size of the graph.

    Invariants: ``_upstream`` and ``_children`` hold every task; ``_readers``
    maps each name a task mentions (a parameter, a global its code or its
    helpers read) to those tasks, so a definition updates only the tasks that
    mention its name. A table of specs assigned from outside (``specs = ...``)
    is noticed by the next lookup, which rebuilds everything once.
    """

    def __init__(self) -> None:
        self.specs: dict[str, TaskSpec] = {}
        self.watchers: list[Callable[[str | None], None]] = []  # told a name before and after it changes (None: all)
        self._rebuild()

    def _rebuild(self) -> None:
        """Derive everything from ``specs`` again."""
        self._source = self.specs
        self._upstream: dict[str, list[str]] = {}
        self._children: dict[str, list[str]] = {name: [] for name in self.specs}
        self._mentions: dict[str, frozenset[str]] = {}
        self._readers: dict[str, set[str]] = {}
        self._fixed: dict[str, tuple[tuple[Input | None, ...], bool]] = {}  # per task: see `resolve`
        self._dag: nx.DiGraph | None = None
        self._order: list[str] | None = None
        self._position: dict[str, int] | None = None
        self._async = {name for name, spec in self.specs.items() if spec.is_async}
        for name in self.specs:
            self._link(name)

    def _current(self) -> None:
        if self._source is not self.specs:
            self._rebuild()
            self._tell(None)

    def _tell(self, name: str | None) -> None:
        for watcher in self.watchers:
            watcher(name)

    def _link(self, name: str) -> None:
        """(Re)compute the edges of task ``name`` from its spec and the tasks there are now."""
        self._unlink(name)
        spec = self.specs[name]
        mentions = frozenset(spec.params) | spec.global_names(self.specs)
        self._mentions[name] = mentions
        for mentioned in mentions:
            self._readers.setdefault(mentioned, set()).add(name)
        ups = spec.upstream_in(self.specs)
        self._upstream[name] = ups
        self._children.setdefault(name, [])
        for up in ups:
            self._children.setdefault(up, []).append(name)
        self._fixed.pop(name, None)

    def _unlink(self, name: str) -> None:
        for up in self._upstream.pop(name, ()):
            children = self._children.get(up)
            if children is not None and name in children:
                children.remove(name)
        for mentioned in self._mentions.pop(name, ()):
            readers = self._readers.get(mentioned)
            if readers is not None:
                readers.discard(name)
        self._fixed.pop(name, None)

    def _changed(self, name: str, appended: bool) -> None:
        """Task ``name`` came, went or changed: relink it (if it is there) and every task that mentions it."""
        spec = self.specs.get(name)
        if spec is not None and spec.is_async:
            self._async.add(name)
        else:
            self._async.discard(name)
        for reader in sorted(self._readers.get(name, set()) - {name}):
            self._link(reader)
        if name in self.specs:
            self._link(name)
        else:
            self._unlink(name)
            self._children.pop(name, None)
        self._dag = None
        if appended and self._order is not None and self._position is not None:
            self._position[name] = len(self._order)  # nobody reads it: last is a valid place, and Kahn's
            self._order.append(name)
        else:
            self._order = self._position = None

    def __contains__(self, name: object) -> bool:
        return name in self.specs

    def any_async(self) -> bool:
        """Whether some task is an ``async def`` (kept as tasks come and go)."""
        self._current()
        return bool(self._async)

    def __len__(self) -> int:
        return len(self.specs)

    def add(self, spec: TaskSpec) -> TaskSpec | None:
        """Add or replace a task; return the definition it replaced.

        Only the new task's own edges can close a cycle, and only if some task
        already reads its name: then the check walks upstream from its inputs
        looking for it.
        """
        self._current()
        _check_self_dependency(spec)
        old = self.specs.get(spec.name)
        readers = self._readers.get(spec.name, set()) - {spec.name}
        if old is None and not readers:
            self.specs[spec.name] = spec  # nothing reads it yet: no cycle can pass through it
            self._source = self.specs
            self._changed(spec.name, appended=True)
            self._tell(spec.name)
            return None
        trial = dict(self.specs)
        trial[spec.name] = spec
        _check_cycle_through(trial, spec.name)
        self._tell(spec.name)  # along the edges before the change, then after it
        self.specs = self._source = trial
        self._changed(spec.name, appended=False)
        self._tell(spec.name)
        return old

    def drop(self, name: str) -> TaskSpec:
        """Remove a task; its dependents will fail to resolve until redefined."""
        self._current()
        spec = self.get(name)
        self._tell(name)
        del self.specs[name]
        self._changed(name, appended=False)
        self._tell(name)
        return spec

    def get(self, name: str) -> TaskSpec:
        """The spec of ``name``, or :class:`UnknownTask` with close matches."""
        try:
            return self.specs[name]
        except KeyError:
            raise UnknownTask(name, close_matches(name, self.specs)) from None

    def upstream(self, name: str) -> list[str]:
        """Tasks that ``name`` reads directly, parameters first (a shared list: do not change it)."""
        self._current()
        return self._upstream[name]

    def children(self, name: str) -> list[str]:
        """Tasks that read ``name`` directly (a shared list: do not change it)."""
        self._current()
        return self._children.get(name, [])

    def hidden(self, name: str) -> list[str]:
        """Tasks that ``name`` reads as globals, not through a parameter."""
        spec = self.specs[name]
        if spec.fixed_code is not None:
            return []
        return self.upstream(name)[sum(1 for p in spec.params if p in self.specs and p != name) :]

    @property
    def dag(self) -> nx.DiGraph:
        """The dependency graph: an edge ``a -> b`` means ``b`` reads ``a``."""
        self._current()
        if self._dag is None:
            self._dag = _build_dag(self.specs, self._upstream)
        return self._dag

    def order(self, targets: Iterable[str] | None = None) -> list[str]:
        """Targets and everything upstream of them, upstream first.

        Ties break by definition order, so output is deterministic.
        """
        position = self._positions()
        if targets is None:
            return list(self._order or ())
        wanted = self._ancestors_and_self([self.get(t).name for t in targets])
        return sorted(wanted, key=position.__getitem__)

    def run_order(self) -> Sequence[str]:
        """Every task in run order, not copied (:meth:`order` copies): read it at once, never change it.

        The list is only ever appended to (a new task below all others); any
        other change makes a new list. So a prefix of it, held with its length,
        stays that order (the plans after cells rely on it: ``dagnb.replan``)."""
        self._positions()
        return self._order or ()

    def _positions(self) -> dict[str, int]:
        """Each task's place in the run order (kept until the graph changes)."""
        self._current()
        if self._order is None or self._position is None:
            self._order = _topological(self.specs, self.upstream)
            self._position = {name: i for i, name in enumerate(self._order)}
        return self._position

    def _ancestors_and_self(self, names: list[str]) -> set[str]:
        seen, stack = set(names), list(names)
        while stack:
            for up in self.upstream(stack.pop()):
                if up not in seen:
                    seen.add(up)
                    stack.append(up)
        return seen

    def below(self, name: str) -> set[str]:
        """Every task that depends on ``name``, directly or not, in no order (cheaper than :meth:`downstream`)."""
        self._current()
        below: set[str] = set()
        stack = list(self._children.get(name, ()))
        while stack:
            task = stack.pop()
            if task not in below:
                below.add(task)
                stack.extend(self._children.get(task, ()))
        below.discard(name)
        return below

    def sort(self, names: Iterable[str]) -> list[str]:
        """``names`` in run order (upstream first, ties by definition order)."""
        return sorted(names, key=self._positions().__getitem__)  # no copy of the whole order: a cell sorts a few

    def downstream(self, name: str) -> list[str]:
        """Every task that depends on ``name``, directly or not, upstream first."""
        return self.sort(self.below(name))

    def resolve(self, name: str, namespace: Mapping[str, Any]) -> list[Input]:
        """How each parameter of ``name`` is fed, or :class:`UnresolvedParameter`.

        Upstream and constant inputs depend on the tasks alone, so they are
        kept until a task is added or dropped; the other parameters are
        looked up in ``namespace`` on every call.
        """
        self._current()
        known = self._fixed.get(name)
        if known is None:
            known = self._fixed[name] = _fixed_inputs(self.specs[name], self.specs)
        fixed, complete = known
        if complete:
            return list(fixed)  # type: ignore[arg-type]
        spec = self.specs[name]
        return [
            _resolve_param(spec, p, self.specs, namespace) if item is None else item
            for p, item in zip(spec.params, fixed)
        ]


def _fixed_inputs(spec: TaskSpec, specs: Mapping[str, TaskSpec]) -> tuple[tuple[Input | None, ...], bool]:
    """Each parameter's input where the tasks alone decide it, else ``None``; and whether they decide every one."""
    fixed: list[Input | None] = []
    complete = True
    for p in spec.params:
        if p in specs and p != spec.name or p in spec.defaults:
            fixed.append(_resolve_param(spec, p, specs, {}))
        else:
            fixed.append(None)
            complete = False
    return tuple(fixed), complete


def _resolve_param(spec: TaskSpec, param: str, specs: Mapping[str, TaskSpec], namespace: Mapping[str, Any]) -> Input:
    if param in specs and param != spec.name:
        return Input(param, "upstream")
    if param in spec.defaults:
        return Input(param, "constant", spec.defaults[param])
    if param in namespace and param != spec.name:
        return Input(param, "external", namespace[param])
    names = [n for n in (*specs, *namespace) if not n.startswith("_") and n != spec.name]
    raise UnresolvedParameter(spec.name, param, close_matches(param, names))


def _build_dag(specs: Mapping[str, TaskSpec], upstream: Mapping[str, list[str]]) -> nx.DiGraph:
    import networkx  # on first use: importing it costs a kernel's first cell about 70 ms, and only views ask for it

    dag = networkx.DiGraph()
    dag.add_nodes_from(specs)
    for name in specs:
        dag.add_edges_from((p, name) for p in upstream[name])
    return dag


def _topological(specs: Mapping[str, TaskSpec], upstream: Any) -> list[str]:
    """Kahn's algorithm; among ready tasks the earliest defined comes first.

    When every task is defined after the tasks it reads (the usual notebook),
    that is definition order itself, found in one pass over the edges.
    """
    rank = {name: i for i, name in enumerate(specs)}
    if all(rank[up] < i for i, name in enumerate(specs) for up in upstream(name)):
        return list(specs)
    waiting = {name: len(upstream(name)) for name in specs}
    children: dict[str, list[str]] = {name: [] for name in specs}
    for name in specs:
        for up in upstream(name):
            children[up].append(name)
    ready = [(rank[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (rank[child], child))
    return order


def _check_self_dependency(spec: TaskSpec) -> None:
    if spec.name in spec.params and spec.name not in spec.defaults:
        raise CycleError([spec.name])


def _check_cycle_through(specs: Mapping[str, TaskSpec], name: str) -> None:
    """Raise :class:`CycleError` if ``name`` is (transitively) upstream of its own inputs."""
    parents: dict[str, str] = {}
    stack = specs[name].upstream_in(specs)
    for p in stack:
        parents.setdefault(p, name)
    while stack:
        task = stack.pop()
        if task == name:
            cycle = [name]
            step = parents[name]
            while step != name:
                cycle.append(step)
                step = parents[step]
            start = cycle.index(min(cycle))  # print it from a stable place
            loop = cycle[start:] + cycle[:start]
            edges = zip(loop, [*loop[1:], loop[0]])  # each task feeds the next
            raise CycleError(loop, [(reader, read) for read, reader in edges if read not in specs[reader].params])
        for up in specs[task].upstream_in(specs):
            if up not in parents:
                parents[up] = task
                stack.append(up)


def check_save_path(spec: TaskSpec, specs: Mapping[str, TaskSpec]) -> None:
    """Raise :class:`SavePathTaken` if another task of ``specs`` already writes the file ``spec.save`` names."""
    if not spec.save:
        return
    path = saved_path(spec.name, spec.save)
    for other in specs.values():
        if other.save and other.name != spec.name and saved_path(other.name, other.save).resolve() == path.resolve():
            raise SavePathTaken(spec.name, str(path), other.name)
