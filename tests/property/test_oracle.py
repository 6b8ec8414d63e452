"""The correctness oracle: incremental runs equal from-scratch runs, and run no more than they must.

Hypothesis draws a random DAG of 2-8 tasks and a random sequence of edits.
Every task is generated as *source text* and ``exec``'d into one namespace
dict ``ns`` (as a notebook would), so tasks are plain functions whose
``__globals__`` is ``ns``. A task computes an integer from its upstream
values, a default constant ``c``, optionally an external input ``x0``/``x1``
that lives in ``ns`` and optionally a notebook helper ``h`` (which itself
reads the global ``G``). Each body appends its name to a log file whose path
is a default parameter, so executions are counted for real, not through
dagnb's own report.

After each step (one or two edits, then an incremental ``Graph.run``) the
test checks:

(a) every value equals an independent pure-Python model *and* a fresh
    ``Graph`` run from scratch over a cold cache (the oracle);
(b) what executed lies inside the stale cone (edited tasks and their
    descendants): minimality;
(c) a task that was not edited and whose inputs kept their values did not
    execute (early cutoff);
and, exactly, that a task executed iff its key was never seen before (the
cache keeps every key a task ever had, so undoing an edit is a cache hit).

The same scenarios run on three backends: inline, ``threads`` (2 threads)
and ``processes`` (2 loky worker processes; the tasks travel by value and
their prints come back with the result).

A ``restart`` edit replaces the graph with a new ``Graph`` over the same
cache directory: re-running it must execute nothing and give equal values.

Half of the examples register each generated source in ``linecache`` (the
way IPython does for cells, so dagnb hashes the normalized source); the
other half leave the source unavailable (dagnb falls back to bytecode).
Task names differ between the two modes so code objects never compare
equal across them.
"""

from __future__ import annotations

import io
import linecache
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dagnb

EXTERNALS = ("x0", "x1")
KINDS = ("body", "comment", "default", "external", "helper", "global", "same_output", "readd", "restart")
COMMENT_VARIANTS = 5
FORMS = ("(v * 2)", "(v + v)", "(2 * v)")  # equal outputs, different code: early cutoff
_FILES = count()


# ------------------------------------------------------------------ the generated notebook


@dataclass(frozen=True)
class TaskGen:
    """One generated task: everything its source text and its value depend on."""

    index: int
    ups: tuple[int, ...]
    ext: str | None
    helper: bool
    mod: int | None
    k: int
    c: int
    form: int
    comment: int


@dataclass(frozen=True)
class Edit:
    kind: str
    target: int  # a task index, or an index into EXTERNALS for "external"
    value: int


class Notebook:
    """The generated sources, the shared namespace ``ns`` and the live functions."""

    def __init__(self, tasks: list[TaskGen], with_source: bool, log: str) -> None:
        self.tasks = list(tasks)
        self.with_source = with_source
        self.prefix = "t" if with_source else "b"
        self.helper_name = "h" if with_source else "hb"
        self.log = log
        # A per-example constant in every body keeps code objects of different
        # examples unequal (see test_oracle_regressions.py for why that matters).
        self.salt = next(_FILES)
        self.helper_k = 1
        self.ns: dict[str, Any] = {"__name__": "__main__", "G": 2, "x0": 10, "x1": 20}
        self.funcs: dict[str, Any] = {}
        self.define_helper()
        for task in self.tasks:
            self.define(task)

    def name(self, index: int) -> str:
        return f"{self.prefix}{index}"

    @property
    def names(self) -> list[str]:
        return [self.name(t.index) for t in self.tasks]

    # -- source text

    def source(self, task: TaskGen) -> str:
        name = self.name(task.index)
        params = [self.name(u) for u in task.ups]
        if task.ext:
            params.append(task.ext)
        params += [f"c={task.c}", f"log={self.log!r}"]
        terms = [self.name(u) for u in task.ups]
        if task.ext:
            terms.append(task.ext)
        if task.helper:
            terms.append(f"{self.helper_name}(c)")
        total = " + ".join(terms) or "0"
        form = FORMS[task.form]
        result = f"{form} % {task.mod}" if task.mod else form
        variant = task.comment
        if variant == 3 and not self.with_source:
            variant = 1  # docstrings are only ignored when the source is known
        lines = [f"def {name}({', '.join(params)}):"]
        if variant == 3:
            lines.append(f'    """Task {name}, documented."""')
        lines += [
            '    with open(log, "a") as fh:',
            f'        fh.write("{name}\\n")',
            f'    print("{name} ran in {self.salt}")',
        ]
        if variant == 1:
            lines.append("    # the sum of everything this task reads")
        if variant == 4:
            lines += [f"    v = (({total}) *", f"         3 + c+{task.k})"]
        else:
            lines.append(f"    v = ({total}) * 3 + c + {task.k}")
        if variant == 2:
            lines += ["", f"    return {result}  # done", ""]
        else:
            lines.append(f"    return {result}")
        return "\n".join(lines) + "\n"

    def helper_source(self) -> str:
        return f"def {self.helper_name}(v):\n    return v * G + {self.helper_k}\n"

    def _exec(self, source: str, name: str) -> Any:
        filename = f"<dagnb-oracle-{next(_FILES)}>"
        if self.with_source:
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), self.ns)  # noqa: S102 - generated tasks, as a notebook cell
        return self.ns[name]

    def define(self, task: TaskGen) -> Any:
        self.tasks[task.index] = task
        name = self.name(task.index)
        self.funcs[name] = self._exec(self.source(task), name)
        return self.funcs[name]

    def define_helper(self) -> None:
        self._exec(self.helper_source(), self.helper_name)

    # -- the model

    def users_of_helper(self) -> set[str]:
        return {self.name(t.index) for t in self.tasks if t.helper}

    def users_of(self, ext: str) -> set[str]:
        return {self.name(t.index) for t in self.tasks if t.ext == ext}

    def model(self) -> dict[str, int]:
        """Every task's value, computed without dagnb."""
        values: dict[str, int] = {}
        for task in self.tasks:
            total = sum(values[self.name(u)] for u in task.ups)
            if task.ext:
                total += self.ns[task.ext]
            if task.helper:
                total += task.c * self.ns["G"] + self.helper_k
            v = total * 3 + task.c + task.k
            values[self.name(task.index)] = (2 * v) % task.mod if task.mod else 2 * v
        return values

    def states(self, values: dict[str, int]) -> dict[str, tuple[Any, ...]]:
        """What each task's key depends on (comments and the form of equal code aside)."""
        out = {}
        for task in self.tasks:
            out[self.name(task.index)] = (
                task.k,
                task.form,
                task.c,
                self.ns[task.ext] if task.ext else None,
                (self.helper_k, self.ns["G"]) if task.helper else None,
                tuple(values[self.name(u)] for u in task.ups),
            )
        return out

    def descendants(self, names: set[str]) -> set[str]:
        cone = set(names)
        for task in self.tasks:  # tasks are in topological order
            if any(self.name(u) in cone for u in task.ups):
                cone.add(self.name(task.index))
        return cone


# ------------------------------------------------------------------ strategies


@st.composite
def dags(draw: st.DrawFn) -> list[TaskGen]:
    n = draw(st.integers(2, 8))
    tasks = []
    for i in range(n):
        ups = draw(st.lists(st.integers(0, i - 1), max_size=min(3, i), unique=True)) if i else []
        tasks.append(
            TaskGen(
                index=i,
                ups=tuple(sorted(ups)),
                ext=draw(st.sampled_from((None, None, *EXTERNALS))),
                helper=draw(st.booleans()),
                mod=draw(st.sampled_from((None, None, 3, 5))),
                k=draw(st.integers(0, 3)),
                c=draw(st.integers(0, 3)),
                form=0,
                comment=0,
            )
        )
    return tasks


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[TaskGen], list[list[Edit]], bool]:
    tasks = draw(dags())
    n = len(tasks)
    steps = []
    for _ in range(draw(st.integers(1, 5))):
        step = []
        for _ in range(draw(st.integers(1, 2))):
            kind = draw(st.sampled_from(KINDS))
            if kind == "external":
                target = draw(st.integers(0, len(EXTERNALS) - 1))
            else:
                target = draw(st.integers(0, n - 1))
            step.append(Edit(kind, target, draw(st.integers(0, 4))))
        steps.append(step)
    return tasks, steps, draw(st.booleans())


# ------------------------------------------------------------------ the oracle


def _log_lines(path: str) -> list[str]:
    if not os.path.exists(path):
        return []
    with open(path) as handle:
        return handle.read().split()


class Oracle:
    """Drives one scenario: edits, incremental runs, checks."""

    def __init__(self, nb: Notebook, root: str, run_kwargs: dict[str, Any]) -> None:
        self.nb, self.root, self.run_kwargs = nb, root, run_kwargs
        self.cache = os.path.join(root, "cache")
        self.graph = self.new_graph(self.cache)
        self.seen: dict[str, set[tuple[Any, ...]]] = {name: set() for name in nb.names}
        self.fresh_dirs = count()

    def new_graph(self, cache_dir: str) -> dagnb.Graph:
        graph = dagnb.Graph(cache_dir=cache_dir, namespace=self.nb.ns)
        for name in self.nb.names:
            graph.task(self.nb.funcs[name])
        return graph

    def apply(self, edit: Edit) -> set[str]:
        """Apply one edit (re-registering what it redefines); return the tasks it touches directly."""
        nb = self.nb
        if edit.kind == "external":
            ext = EXTERNALS[edit.target]
            nb.ns[ext] = 10 * (edit.target + 1) + edit.value
            return nb.users_of(ext)
        if edit.kind == "helper":
            nb.helper_k = edit.value
            nb.define_helper()
            return nb.users_of_helper()
        if edit.kind == "global":
            nb.ns["G"] = edit.value
            return nb.users_of_helper()
        if edit.kind == "restart":
            self.graph.store.close()
            self.graph = self.new_graph(self.cache)
            return set()
        task = nb.tasks[edit.target]
        name = nb.name(task.index)
        if edit.kind == "body":
            task = replace(task, k=edit.value)
        elif edit.kind == "comment":
            task = replace(task, comment=(task.comment + 1 + edit.value) % COMMENT_VARIANTS)
        elif edit.kind == "default":
            task = replace(task, c=edit.value)
        elif edit.kind == "same_output":
            task = replace(task, form=(task.form + 1 + edit.value) % len(FORMS))
        elif edit.kind == "readd":
            self.graph.drop(name)
        self.graph.task(nb.define(task))
        return {name}

    def run_and_check(self, touched: set[str]) -> None:
        nb = self.nb
        model = nb.model()
        states = nb.states(model)
        expected_runs = {t for t, s in states.items() if s not in self.seen[t]}
        before = len(_log_lines(nb.log))
        stdout = sys.stdout
        report = self.graph.run(**self.run_kwargs)
        assert sys.stdout is stdout, "the run left sys.stdout redirected"
        ran = _log_lines(nb.log)[before:]
        executed = set(ran)

        assert len(ran) == len(executed), f"a task executed twice in one run: {Counter(ran)}"
        assert set(report.executed) == executed, (report.executed, ran)
        if self.run_kwargs.get("backend") == "processes":  # the bodies really ran in worker processes
            lanes = {s.lane for s in self.graph.trace.spans if s.kind == "run"}
            assert all(lane.startswith("pid ") and lane != f"pid {os.getpid()}" for lane in lanes), lanes
        for name in nb.names:  # values are bound in the namespace, as in a notebook
            assert nb.ns[name] == self.graph[name], name

        # (a) the oracle: the model, and a from-scratch run over a cold cache
        fresh_dir = os.path.join(self.root, f"fresh{next(self.fresh_dirs)}")
        fresh = self.new_graph(fresh_dir)
        fresh.run()
        fresh.store.close()
        for name in nb.names:
            assert self.graph[name] == model[name] == fresh[name], (name, self.graph[name], model[name], fresh[name])

        # (b) minimality: nothing outside the stale cone
        cone = nb.descendants(touched)
        assert executed <= cone, f"executed {sorted(executed - cone)} outside the stale cone {sorted(cone)}"

        # (c) untouched tasks whose inputs kept their values did not execute
        previous = self.previous_values
        changed_inputs = {
            nb.name(t.index)
            for t in nb.tasks
            if any(previous.get(nb.name(u)) != model[nb.name(u)] for u in t.ups)
        }
        idle = set(nb.names) - touched - changed_inputs
        assert not executed & idle, f"{sorted(executed & idle)} executed though nothing they read changed"

        # exactly the tasks whose key is new execute (history: an undone edit is a hit)
        assert executed == expected_runs, (
            f"executed {sorted(executed)}, expected {sorted(expected_runs)} "
            f"(statuses {report.statuses}, reasons {report.reasons})"
        )
        for name, state in states.items():
            self.seen[name].add(state)
        self.previous_values = model
        for name in executed:  # what a task printed is recorded with that task only
            assert self.graph.results[name].captured == [
                {"output_type": "stream", "name": "stdout", "text": f"{name} ran in {nb.salt}\n"}
            ], (name, self.graph.results[name].captured)

    def first_run(self) -> None:
        self.previous_values = {}
        self.run_and_check(set(self.nb.names))
        assert all(self.seen.values())


def check_scenario(
    tasks: list[TaskGen], steps: list[list[Edit]], with_source: bool, run_kwargs: dict[str, Any]
) -> None:
    with tempfile.TemporaryDirectory(prefix="dagnb-oracle-") as root:
        nb = Notebook(tasks, with_source, os.path.join(root, "log.txt"))
        oracle = Oracle(nb, root, run_kwargs)
        saved_stdout = sys.stdout
        sys.stdout = io.StringIO()  # the bodies print; keep pytest's output clean
        try:
            oracle.first_run()
            for step in steps:
                touched: set[str] = set()
                for edit in step:
                    touched |= oracle.apply(edit)
                oracle.run_and_check(touched)
            # a final restart: a new Graph over the same cache executes nothing
            touched = oracle.apply(Edit("restart", 0, 0))
            oracle.run_and_check(touched)
        finally:
            sys.stdout = saved_stdout
            oracle.graph.store.close()


SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({}, id="inline"),
        pytest.param({"backend": "threads", "jobs": 2}, id="threads"),
        # task bodies run in 2 loky worker processes: they travel by value, print there, log there
        pytest.param({"backend": "processes", "jobs": 2}, id="processes"),
    ],
)
@SETTINGS
@given(scenarios())
def test_incremental_runs_equal_from_scratch_runs(
    options: dict[str, Any], scenario: tuple[list[TaskGen], list[list[Edit]], bool]
) -> None:
    tasks, steps, with_source = scenario
    check_scenario(tasks, steps, with_source, options)
