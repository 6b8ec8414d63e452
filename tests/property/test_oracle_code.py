"""The oracle over the code a key must see: incremental runs equal from-scratch runs, minimally.

The generated notebook is the one that fooled earlier keys. Its namespace is a
real module (``oracle_nb_N`` in ``sys.modules``), so values of its classes
and functions pickle by reference as they do in a kernel's ``__main__``. It
has:

* a module file ``oracle_mod_N.py`` on disk beside it, imported both ways
  (``import oracle_mod_N as mod`` and ``from oracle_mod_N import mscale``);
  ``mscale`` reads the module global ``MK``. Edits: the file changes and is
  reloaded (``module``); an unrelated function of the file changes
  (``unrelated``); the file changes on disk only, without a reload
  (``disk``: the kernel keeps running, and keying, the old code);
  ``mod.MK`` is set from the notebook (``state``);
* ``class Base`` and ``class Sub(Base)``: a task calls ``Sub().value(c)``;
  ``Base`` changes (``base``);
* ``class Mode(enum.Enum)``: a task reads ``Mode.FAST.value`` (its members
  are instances of the class itself); a member's value changes (``enum``);
* a ``carrier`` task whose value carries code: a dispatch table, an instance
  of a notebook class, a partial, the class itself, a bound method, or an
  instance deep inside containers, around ``op``; readers call it. ``op`` changes (``op``), and
  early cutoff must not hide it;
* tasks whose default is a lambda (``f=lambda v: v + L``): ``L`` changes
  (``lambda``), or the cell runs again unchanged (``again``);
* tasks that read an earlier task's variable as a global, with no parameter.

Task bodies append their name to a log file, so executions are counted for
real. After each step: every value equals a pure-Python model and a run
from scratch over a cold cache, and exactly the tasks whose key state was
never seen before executed (minimality; undoing an edit is a cache hit).
A ``restart`` reloads the module from disk (as a new kernel would import
it) and builds a new ``Graph`` over the same cache.

``test_the_oracle_catches_each_planted_bug`` puts each bug this oracle was
written for back into dagnb, one at a time, and checks that a scenario
fails: the oracle can fail.
"""

from __future__ import annotations

import importlib
import io
import os
import sys
import tempfile
import textwrap
import types
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dagnb
from dagnb.errors import LocalModuleChangedWarning, UnpicklableOutputWarning

USES = (None, None, "module", "from_module", "body_import", "class", "lambda", "carrier", "enum")
CARRIERS = ("dict", "instance", "partial", "class", "bound", "nested")
EDITS = ("body", "module", "unrelated", "disk", "state", "base", "op", "enum", "lambda", "again", "restart")
_N = count()


@dataclass(frozen=True)
class TaskGen:
    index: int
    ups: tuple[int, ...]
    hidden: int | None  # an earlier task read as a global, with no parameter
    use: str | None
    k: int
    lam: int


@dataclass(frozen=True)
class Edit:
    kind: str
    target: int
    value: int


@dataclass
class Versions:
    """What the generated code computes now (the model reads these)."""

    moff_disk: int = 0  # MOFF in the module's file
    moff: int = 0  # MOFF in the code the namespace runs
    mk: int = 2  # mod.MK as the namespace sees it
    bk: int = 1  # Base.bonus
    opk: int = 2  # op
    ek: int = 1  # Mode.FAST
    unrelated: int = 0


class GeneratedNotebook:
    """The module file, the namespace (a real module) and the tasks' source."""

    def __init__(self, tasks: list[TaskGen], carrier: str, root: str) -> None:
        self.n = next(_N)
        self.tasks, self.carrier, self.root = list(tasks), carrier, root
        self.log = os.path.join(root, "log.txt")
        self.mod_name, self.nb_name = f"oracle_mod_{self.n}", f"oracle_nb_{self.n}"
        self.v = Versions()
        self.clock = 0
        self.write_module()
        self.module = types.ModuleType(self.nb_name)
        sys.modules[self.nb_name] = self.module
        for pickler in _cloudpicklers():  # as cloudpickle sends a kernel's `__main__`: by value
            pickler.register_pickle_by_value(self.module)
        self.ns = self.module.__dict__
        self.cell(f"import functools\nimport {self.mod_name} as mod\nfrom {self.mod_name} import mscale\n")
        self.define_classes()
        self.define_op()
        self.define_enum()
        self.funcs: dict[str, Any] = {}
        self.funcs["carrier"] = self.exec_task(self.carrier_source(), "carrier")
        for task in self.tasks:
            self.define(task)

    def close(self) -> None:
        for pickler in _cloudpicklers():
            pickler.unregister_pickle_by_value(self.module)
        for name in (self.mod_name, self.nb_name):
            sys.modules.pop(name, None)

    # -- cells

    def cell(self, source: str) -> None:
        exec(compile(source, f"<{self.nb_name}-cell>", "exec"), self.ns)  # noqa: S102 - generated cells

    def write_module(self) -> None:
        path = os.path.join(self.root, f"{self.mod_name}.py")
        with open(path, "w") as handle:
            handle.write(textwrap.dedent(f"""\
                MK = 2

                def mscale(v):
                    return v * MK + {self.v.moff_disk}

                def unrelated():
                    return {self.v.unrelated}
                """))
        self.clock += 2  # a new modification time for each version, as an editor gives it
        stamp = os.stat(path).st_mtime + self.clock
        os.utime(path, (stamp, stamp))
        importlib.invalidate_caches()

    def reload(self) -> None:
        """The module as a new import reads it from disk (``MK`` back to the file's value)."""
        importlib.reload(sys.modules[self.mod_name])
        self.cell(f"import {self.mod_name} as mod\nfrom {self.mod_name} import mscale\n")
        self.v.moff, self.v.mk = self.v.moff_disk, 2

    def define_classes(self) -> None:
        self.cell(f"class Base:\n    def bonus(self):\n        return {self.v.bk}\n"
                  "class Sub(Base):\n    def value(self, v):\n        return v + self.bonus()\n")

    def define_op(self) -> None:
        self.cell(f"def op(v):\n    return v * {self.v.opk}\n"
                  f"class Op:\n    def __call__(self, v):\n        return v * {self.v.opk}\n")

    def define_enum(self) -> None:
        self.cell(f"import enum\nclass Mode(enum.Enum):\n    FAST = {self.v.ek}\n    SLOW = 10\n")

    def carrier_source(self) -> str:
        made = {"dict": "{'op': op}", "instance": "Op()", "partial": "functools.partial(op)",
                "class": "Op", "bound": "Op().__call__", "nested": "{'ops': [(1, Op())]}"}[self.carrier]
        return f"def carrier(log={self.log!r}):\n{self.logline('carrier')}    return {made}\n"

    def call_carrier(self, arg: str) -> str:
        return {"dict": f"carrier['op']({arg})", "class": f"carrier()({arg})",
                "nested": f"carrier['ops'][0][1]({arg})"}.get(self.carrier, f"carrier({arg})")

    @staticmethod
    def logline(name: str) -> str:
        return f"    with open(log, 'a') as fh:\n        fh.write('{name}\\n')\n"

    def name(self, index: int) -> str:
        return f"t{index}"

    @property
    def names(self) -> list[str]:
        return ["carrier", *(self.name(t.index) for t in self.tasks)]

    def source(self, task: TaskGen) -> str:
        name = self.name(task.index)
        params = [self.name(u) for u in task.ups]
        if task.use == "carrier":
            params.append("carrier")
        params.append("c=1")
        if task.use == "lambda":
            params.append(f"f=lambda v: v + {task.lam}")
        params.append(f"log={self.log!r}")
        terms = [self.name(u) for u in task.ups]
        if task.hidden is not None:
            terms.append(self.name(task.hidden))
        body = ""
        extra = {"module": "mod.mscale(c)", "from_module": "mscale(c)", "body_import": "m.mscale(c)",
                 "class": "Sub().value(c)", "lambda": "f(c)", "carrier": self.call_carrier("c"),
                 "enum": "Mode.FAST.value * c"}.get(task.use or "")
        if task.use == "body_import":
            body = f"    import {self.mod_name} as m\n"
        if extra:
            terms.append(extra)
        total = " + ".join(terms) or "0"
        return (f"def {name}({', '.join(params)}):\n{self.logline(name)}{body}"
                f"    return ({total}) * 3 + {task.k}\n")

    def exec_task(self, source: str, name: str) -> Any:
        self.cell(source)
        return self.ns[name]

    def define(self, task: TaskGen) -> Any:
        self.tasks[task.index] = task
        name = self.name(task.index)
        self.funcs[name] = self.exec_task(self.source(task), name)
        return self.funcs[name]

    # -- the model

    def model(self) -> dict[str, int]:
        v, values = self.v, {}
        for task in self.tasks:
            total = sum(values[self.name(u)] for u in task.ups)
            if task.hidden is not None:
                total += values[self.name(task.hidden)]
            if task.use in ("module", "from_module", "body_import"):
                total += 1 * v.mk + v.moff
            elif task.use == "class":
                total += 1 + v.bk
            elif task.use == "lambda":
                total += 1 + task.lam
            elif task.use == "carrier":
                total += 1 * v.opk
            elif task.use == "enum":
                total += 1 * v.ek
            values[self.name(task.index)] = total * 3 + task.k
        return values

    def states(self, values: dict[str, int]) -> dict[str, tuple[Any, ...]]:
        """What each task's key depends on: a task runs exactly when its state is new."""
        v = self.v
        out: dict[str, tuple[Any, ...]] = {"carrier": (v.opk,)}
        for task in self.tasks:
            uses = {"module": (v.mk, v.moff), "from_module": (v.mk, v.moff), "body_import": (v.mk, v.moff),
                    "class": (v.bk,), "lambda": (task.lam,), "carrier": (v.opk,), "enum": (v.ek,)}.get(task.use or "", ())
            inputs = tuple(values[self.name(u)] for u in task.ups)
            hidden = values[self.name(task.hidden)] if task.hidden is not None else None
            out[self.name(task.index)] = (task.k, uses, inputs, hidden)
        return out


def _cloudpicklers() -> list[Any]:
    import cloudpickle  # what loky and distributed send functions with

    return [cloudpickle]


# ------------------------------------------------------------------ strategies


@st.composite
def dags(draw: st.DrawFn) -> list[TaskGen]:
    n = draw(st.integers(2, 6))
    tasks = []
    for i in range(n):
        ups = draw(st.lists(st.integers(0, i - 1), max_size=min(2, i), unique=True)) if i else []
        hidden = draw(st.sampled_from([None, None, *[u for u in range(i) if u not in ups]]))
        tasks.append(TaskGen(i, tuple(sorted(ups)), hidden, draw(st.sampled_from(USES)), draw(st.integers(0, 3)),
                             draw(st.integers(0, 3))))
    return tasks


@st.composite
def scenarios(draw: st.DrawFn, carriers: tuple[str, ...] = CARRIERS) -> tuple[list[TaskGen], str, list[list[Edit]]]:
    tasks = draw(dags())
    steps = [[Edit(draw(st.sampled_from(EDITS)), draw(st.integers(0, len(tasks) - 1)), draw(st.integers(0, 3)))
              for _ in range(draw(st.integers(1, 2)))] for _ in range(draw(st.integers(1, 5)))]
    return tasks, draw(st.sampled_from(carriers)), steps


# ------------------------------------------------------------------ the oracle


def _runs(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return handle.read().split()


class Oracle:
    def __init__(self, nb: GeneratedNotebook, run_kwargs: dict[str, Any]) -> None:
        self.nb, self.run_kwargs = nb, run_kwargs
        self.cache = os.path.join(nb.root, "cache")
        self.graph = self.new_graph(self.cache)
        self.seen: dict[str, set[tuple[Any, ...]]] = {name: set() for name in nb.names}
        self.fresh = count()

    def new_graph(self, cache_dir: str) -> dagnb.Graph:
        graph = dagnb.Graph(cache_dir=cache_dir, namespace=self.nb.ns)
        for name in self.nb.names:
            graph.task(self.nb.funcs[name])
        return graph

    def apply(self, edit: Edit) -> None:
        nb, v = self.nb, self.nb.v
        task = nb.tasks[edit.target]
        if edit.kind == "body":
            self.graph.task(nb.define(replace(task, k=edit.value)))
        elif edit.kind == "lambda":
            self.graph.task(nb.define(replace(task, lam=edit.value)))
        elif edit.kind == "again":
            self.graph.task(nb.define(task))
        elif edit.kind in ("module", "disk", "unrelated"):
            if edit.kind == "unrelated":
                v.unrelated += 1
            else:
                v.moff_disk = edit.value
            nb.write_module()
            if edit.kind != "disk":
                nb.reload()
        elif edit.kind == "state":
            nb.ns["mod"].MK = v.mk = 2 + edit.value
        elif edit.kind == "base":
            v.bk = edit.value
            nb.define_classes()
        elif edit.kind == "op":
            v.opk = 2 + edit.value
            nb.define_op()
        elif edit.kind == "enum":
            v.ek = edit.value
            nb.define_enum()
        elif edit.kind == "restart":
            self.graph.close()
            nb.reload()
            nb.define_classes()  # a new kernel runs every cell again: new objects, the same code
            nb.define_op()
            nb.define_enum()
            for name in nb.names:
                task = next((t for t in nb.tasks if nb.name(t.index) == name), None)
                nb.funcs[name] = nb.exec_task(nb.carrier_source(), name) if task is None else nb.define(task)
            self.graph = self.new_graph(self.cache)

    def run_and_check(self) -> None:
        nb = self.nb
        model = nb.model()
        states = nb.states(model)
        expected = {t for t, s in states.items() if s not in self.seen[t]}
        before = len(_runs(nb.log))
        self.graph.run(**self.run_kwargs)
        ran = _runs(nb.log)[before:]
        assert len(ran) == len(set(ran)), f"a task ran twice in one run: {ran}"
        fresh = self.new_graph(os.path.join(nb.root, f"fresh{next(self.fresh)}"))
        fresh.run()  # the reference: from scratch, inline
        fresh.close()
        for name in nb.names[1:]:
            assert self.graph[name] == model[name] == fresh[name], (name, self.graph[name], model[name], fresh[name])
        assert set(ran) == expected, f"ran {sorted(ran)}, expected {sorted(expected)}"
        for name, state in states.items():
            self.seen[name].add(state)


def check_scenario(tasks: list[TaskGen], carrier: str, steps: list[list[Edit]], run_kwargs: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="dagnb-code-oracle-") as root, _on_path(root), warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalModuleChangedWarning)
        warnings.simplefilter("error", UnpicklableOutputWarning)  # values of the notebook pickle by reference
        nb = GeneratedNotebook(tasks, carrier, root)
        oracle = Oracle(nb, run_kwargs)
        saved, sys.stdout = sys.stdout, io.StringIO()
        try:
            oracle.run_and_check()
            for step in steps:
                for edit in step:
                    oracle.apply(edit)
                oracle.run_and_check()
            oracle.apply(Edit("restart", 0, 0))
            oracle.run_and_check()
        finally:
            sys.stdout = saved
            oracle.graph.close()
            nb.close()


@contextmanager
def _on_path(root: str) -> Iterator[None]:
    sys.path.insert(0, root)
    saved = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a reload within the same second must not read a stale .pyc
    try:
        yield
    finally:
        sys.path.remove(root)
        sys.dont_write_bytecode = saved


SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize(
    "options",
    [pytest.param({}, id="inline"), pytest.param({"backend": "threads", "jobs": 2}, id="threads")],
)
@SETTINGS
@given(scenarios())
def test_incremental_runs_see_all_the_code(options: dict[str, Any], scenario: Any) -> None:
    tasks, carrier, steps = scenario
    check_scenario(tasks, carrier, steps, options)


# A notebook *function* computed in a worker comes back as a copy that pickle cannot store by
# reference (kept in memory, recomputed after a restart); a notebook *class* comes back as itself.
REMOTE_CARRIERS = ("instance", "class", "bound", "nested")


@settings(SETTINGS, max_examples=12)  # each run starts worker processes: the costliest backend
@given(scenarios(REMOTE_CARRIERS))
def test_incremental_runs_see_all_the_code_on_worker_processes(scenario: Any) -> None:
    tasks, carrier, steps = scenario
    check_scenario(tasks, carrier, steps, {"backend": "processes", "jobs": 2})


# ------------------------------------------------------------------ the oracle can fail

EVERY_USE = [
    TaskGen(0, (), None, "module", 0, 0),
    TaskGen(1, (0,), None, "from_module", 1, 0),
    TaskGen(2, (), 0, "body_import", 2, 0),
    TaskGen(3, (), 1, "class", 0, 0),
    TaskGen(4, (), None, "lambda", 0, 1),
    TaskGen(5, (), None, "carrier", 0, 0),
]


def _plant(bug: str, patch: pytest.MonkeyPatch) -> None:
    """Put one bug the oracle was written for back into dagnb."""
    import dagnb.fingerprints.modules as modules
    import dagnb.fingerprints.pickled as pickled
    import dagnb.fingerprints.references as references
    import dagnb.fingerprints.walk as walk
    import dagnb.graph as graph

    if bug == "modules-by-version":
        for module in (modules, references, walk):  # each module of the room that asks
            patch.setattr(module, "is_user_module", lambda m: m.__name__ == "__main__")
    elif bug == "code-in-values-by-name":
        patch.setattr(pickled, "_code_token", lambda obj: None)
    elif bug == "bases-by-name":
        patch.setattr(walk._Walk, "klass", _klass_without_bases)
    elif bug == "no-hidden-edges":
        patch.setattr(graph.TaskSpec, "upstream_in", lambda self, specs: [
            p for p in self.params if p in specs and p != self.name])
    elif bug == "lambda-by-identity":
        patch.setattr(pickled, "_code_token", lambda obj: f"{id(obj)}")


def _klass_without_bases(self: Any, cls: type, path: frozenset[int]) -> str:
    """A class digest of the class's own attributes only (how bases were missed)."""
    import xxhash

    from dagnb.fingerprints.values import _text

    h = xxhash.xxh3_128(b"class")
    _text(h, cls.__qualname__)
    for attr, value in sorted(vars(cls).items()):
        if attr not in ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"):
            _text(h, attr)
            _text(h, self.member(attr, value, path))
    return h.hexdigest()


PLANTED = {  # bug -> a scenario that exposes it
    "modules-by-version": (EVERY_USE, "dict", [[Edit("module", 0, 3)]]),
    "code-in-values-by-name": (EVERY_USE, "instance", [[Edit("op", 0, 3)]]),
    "bases-by-name": (EVERY_USE, "dict", [[Edit("base", 0, 3)]]),
    "no-hidden-edges": (EVERY_USE, "dict", [[Edit("body", 0, 3)]]),
    "lambda-by-identity": (EVERY_USE, "dict", [[Edit("again", 4, 0)]]),
}


@pytest.mark.parametrize("bug", list(PLANTED))
def test_the_oracle_catches_each_planted_bug(bug: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tasks, carrier, steps = PLANTED[bug]
    check_scenario(tasks, carrier, steps, {})  # without the bug: green
    _plant(bug, monkeypatch)
    with pytest.raises((AssertionError, dagnb.TaskFailed)):  # a wrong value, a wrong run, or a task run too early
        check_scenario(tasks, carrier, steps, {})
