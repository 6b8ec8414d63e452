"""Keys that see all the code a result depends on, in the notebooks people write.

Each test is a notebook shape that served a stale value before: helpers in a
``.py`` file beside the notebook, a ``%run`` script, code carried inside values
(a fitted model, a dispatch table, a partial), base classes, keyword-only
defaults, lambdas as defaults, values with no fingerprint, a task that reads
another task's variable without a parameter. Executions are counted in a log
file the task bodies append to; values are compared with what the current
code computes.
"""

from __future__ import annotations

import functools
import importlib
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notebook_cells import Notebook, define

import dagnb
from dagnb.errors import CycleError, LocalModuleChangedWarning, Unfingerprintable, UnfingerprintableWarning
from dagnb.fingerprints.code import code_fingerprint, module_version


class Modules:
    """A folder on ``sys.path`` beside the notebook, where a test writes and edits ``.py`` files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: set[str] = set()
        self.clock = 0

    def write(self, name: str, source: str) -> Path:
        path = self.root / f"{name.replace('.', '/')}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        self.clock += 2  # each version of a file gets its own modification time, as an editor gives it
        stamp = path.stat().st_mtime + self.clock
        os.utime(path, (stamp, stamp))
        self.names.add(name.split(".")[0])
        importlib.invalidate_caches()
        return path


@pytest.fixture()
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Modules]:
    root = tmp_path / "beside_the_notebook"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    found = Modules(root)
    yield found
    for name in list(sys.modules):
        if name.split(".")[0] in found.names:
            del sys.modules[name]


HELPERS = """
FACTOR = 2

def scale(x):
    return x * FACTOR

def unrelated():
    return 'a'
"""


def _quiet_run(nb: Notebook, *targets: str) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LocalModuleChangedWarning)
        return nb.run(*targets)[1]


# ------------------------------------------------------------------ local modules

USES = {
    "import at the top": ("import helpers\n", "return helpers.scale(3)"),
    "from-import at the top": ("from helpers import scale\n", "return scale(3)"),
    "import in the body": ("", "import helpers\n    return helpers.scale(3)"),
    "from-import in the body": ("", "from helpers import scale\n    return scale(3)"),
}


def _uses(tmp_path: Path, modules: Modules, use: str) -> Notebook:
    modules.write("helpers", HELPERS)
    top, body = USES[use]
    nb = Notebook(tmp_path)
    if top:
        nb.cell(top)
    nb.task(f"def t():\n    note('t')\n    {body}\n")
    return nb


def _reload(nb: Notebook, use: str) -> None:
    importlib.reload(sys.modules["helpers"])
    if USES[use][0]:
        nb.cell(USES[use][0])  # the user runs the import cell again


@pytest.mark.parametrize("use", list(USES))
def test_a_function_in_a_module_beside_the_notebook_counts_by_its_code(
    tmp_path: Path, modules: Modules, use: str
) -> None:
    nb = _uses(tmp_path, modules, use)
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 6
    modules.write("helpers", HELPERS.replace("x * FACTOR", "x * FACTOR + 1"))
    _reload(nb, use)
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 7
    modules.write("helpers", HELPERS)
    _reload(nb, use)
    assert nb.run()[1] == [] and nb.graph["t"] == 6, "undoing the edit is a cache hit"


@pytest.mark.parametrize("use", list(USES))
def test_an_edit_elsewhere_in_the_module_reruns_nothing(tmp_path: Path, modules: Modules, use: str) -> None:
    nb = _uses(tmp_path, modules, use)
    nb.run()
    modules.write("helpers", HELPERS.replace("'a'", "'b'"))
    _reload(nb, use)
    assert nb.run()[1] == [], "only what the task uses counts"


def test_an_edited_module_that_was_not_reloaded_keeps_its_key_and_says_so(tmp_path: Path, modules: Modules) -> None:
    nb = _uses(tmp_path, modules, "import at the top")
    nb.run()
    modules.write("helpers", HELPERS.replace("x * FACTOR", "x * FACTOR + 1"))
    with pytest.warns(LocalModuleChangedWarning) as caught:
        assert nb.run()[1] == [], "the kernel still runs the old code: its result is right"
    assert nb.graph["t"] == 6
    assert str(caught[0].message) == (
        "`helpers.py` changed on disk after `helpers` was imported: tasks use the code loaded in the kernel "
        "(and are keyed by it), not the file. Run `importlib.reload(helpers)`, or `%load_ext autoreload` then "
        "`%autoreload 2`, to use the new code."
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", LocalModuleChangedWarning)
        nb.run()  # said once


def test_state_set_on_a_module_from_the_notebook_is_a_global(tmp_path: Path, modules: Modules) -> None:
    nb = _uses(tmp_path, modules, "import at the top")
    nb.run()
    nb.cell("helpers.FACTOR = 5\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 15
    nb.cell("helpers.FACTOR = 2\n")
    assert nb.run()[1] == [] and nb.graph["t"] == 6


def test_a_module_read_as_a_whole_counts_every_function(tmp_path: Path, modules: Modules) -> None:
    """``getattr(helpers, name)`` hides which function runs: every function of the module counts."""
    modules.write("helpers", HELPERS)
    nb = Notebook(tmp_path)
    nb.cell("import helpers\n")
    nb.task("def t():\n    note('t')\n    return getattr(helpers, 'scale')(3)\n")
    nb.run()
    modules.write("helpers", HELPERS.replace("'a'", "'b'"))
    importlib.reload(sys.modules["helpers"])
    assert _quiet_run(nb) == ["t"]


def test_modules_that_import_modules_count_recursively(tmp_path: Path, modules: Modules) -> None:
    modules.write("units", "def base():\n    return 10\n")
    modules.write("helpers", "import units\n\ndef scale(x):\n    return x * units.base()\n")
    nb = Notebook(tmp_path)
    nb.cell("import helpers\n")
    nb.task("def t():\n    note('t')\n    return helpers.scale(3)\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 30
    modules.write("units", "def base():\n    return 100\n")
    importlib.reload(sys.modules["units"])
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 300


def test_a_package_beside_the_notebook_counts_by_its_code(tmp_path: Path, modules: Modules) -> None:
    modules.write("mypkg.__init__", "")
    modules.write("mypkg.stats", "def mean(xs):\n    return sum(xs) / len(xs)\n")
    nb = Notebook(tmp_path)
    nb.cell("from mypkg import stats\n")
    nb.task("def t():\n    note('t')\n    return stats.mean([1, 2, 3])\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 2
    modules.write("mypkg.stats", "def mean(xs):\n    return sum(xs) / len(xs) * 10\n")
    importlib.reload(sys.modules["mypkg.stats"])
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 20


def _percent_run(nb: Notebook, script: Path) -> None:
    """What ``%run script.py`` does: the script runs in a namespace of its own, copied into the notebook's."""
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": str(script)}
    exec(compile(script.read_text(), str(script), "exec"), namespace)  # noqa: S102 - the test's own script
    nb.ns.update({k: v for k, v in namespace.items() if not k.startswith("__")})


def test_functions_brought_in_with_percent_run_count_by_their_code(tmp_path: Path, modules: Modules) -> None:
    script = modules.write("prep", "OFFSET = 1\n\ndef prepare(x):\n    return x + OFFSET\n")
    nb = Notebook(tmp_path)
    _percent_run(nb, script)
    nb.task("def t():\n    note('t')\n    return prepare(1)\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 2
    modules.write("prep", "OFFSET = 1\n\ndef prepare(x):\n    return x + OFFSET * 100\n")
    with pytest.warns(LocalModuleChangedWarning, match=r"^`prep.py` changed on disk after the functions "
                                                        r"`%run prep.py` defined: .* Run `%run prep.py` again "):
        assert nb.run()[1] == []
    _percent_run(nb, script)
    assert _quiet_run(nb) == ["t"] and nb.graph["t"] == 101


# ------------------------------------------------------------------ library versions


def _fake_distribution(site: Path, dist: str, version: str, package: str) -> None:
    (site / package.replace(".", "/")).mkdir(parents=True)
    (site / package.replace(".", "/") / "__init__.py").write_text(f"WHO = {dist!r}\n")
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "RECORD").write_text(f"{package.replace('.', '/')}/__init__.py,,\n")
    (info / "top_level.txt").write_text(package.split(".")[0] + "\n")


def test_a_namespace_package_has_the_version_of_the_distribution_that_owns_the_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``acme.storage`` and ``acme.compute`` come from two distributions (the ``google.*`` layout)."""
    site = tmp_path / "site-packages"
    _fake_distribution(site, "acme-storage", "1.5", "acme.storage")
    _fake_distribution(site, "acme-compute", "7.0", "acme.compute")
    monkeypatch.syspath_prepend(str(site))
    import dagnb.fingerprints.modules as modules

    for cached in (modules.module_version, modules._distributions):
        cached.cache_clear()
        monkeypatch.setattr(cached, "cache_clear", cached.cache_clear)
    try:
        from acme import compute, storage  # type: ignore[import-not-found]

        ns = define({"compute": compute, "storage": storage}, "def t(x):\n    return storage.WHO, compute.WHO\n")
        parts = code_fingerprint(ns["t"], skip=frozenset({"x"})).parts
        assert parts["module storage"] == "acme.storage 1.5"
        assert parts["module compute"] == "acme.compute 7.0"
    finally:
        for name in [n for n in sys.modules if n == "acme" or n.startswith("acme.")]:
            del sys.modules[name]
        modules.module_version.cache_clear()
        modules._distributions.cache_clear()


def test_a_library_module_counts_by_its_version_not_its_code() -> None:
    import numpy as np

    assert module_version("numpy.linalg") == f"numpy {np.__version__}"
    assert module_version("json.decoder").startswith("json 3.")


# ------------------------------------------------------------------ code inside values

MODEL = """
class Model:
    def __init__(self, k):
        self.k = k
    def predict(self, x):
        return x * self.k
"""

CARRIERS: dict[str, tuple[str, str, str]] = {
    # name: (notebook cell, a task returning a value that carries the code, how the reader uses it)
    "a fitted instance": (MODEL, "return Model(3)", "fit.predict(10)"),
    "a bound method": (MODEL, "return Model(3).predict", "fit(10)"),
    "a dispatch table": ("def neg(v):\n    return -v * 10\nOPS = {'neg': neg}\n", "return dict(OPS)",
                         "fit['neg'](10)"),
    "a partial": ("import functools\ndef mul(v, k):\n    return v * k * 10\n",
                  "return functools.partial(mul, k=3)", "fit(10)"),
    "an lru_cache wrapper": ("import functools\n@functools.lru_cache\ndef cube(v):\n    return v * 30\n",
                             "return [cube]", "fit[0](10)"),
    "a class": (MODEL, "return Model", "fit(3).predict(10)"),
}


@pytest.mark.parametrize("carrier", list(CARRIERS))
def test_an_edit_of_code_carried_inside_a_value_reruns_its_readers(tmp_path: Path, carrier: str) -> None:
    """``fit`` reruns (it references the code) and its output must not look identical: ``use`` reruns too."""
    cell, produce, use = CARRIERS[carrier]
    nb = Notebook(tmp_path, cache=False)  # values of notebook classes pickle by reference only in a real kernel
    nb.cell(cell)
    nb.task(f"def fit():\n    note('fit')\n    {produce}\n")
    nb.task(f"def use(fit):\n    note('use')\n    return {use}\n")
    nb.run()
    before = nb.graph["use"]
    edited = cell.replace("* self.k", "* self.k + 1").replace("* 10", "* 10 + 1").replace("* 30", "* 30 + 1")
    assert edited != cell
    nb.cell(edited)
    assert nb.run()[1] == ["fit", "use"]
    assert nb.graph["use"] == before + 1


def test_an_unchanged_value_with_code_keeps_its_fingerprint(tmp_path: Path) -> None:
    ns = define({}, MODEL + "def neg(v):\n    return -v\n")
    value = {"model": ns["Model"](3), "op": ns["neg"], "method": ns["Model"](2).predict, "cls": ns["Model"]}
    first = dagnb.fingerprint(value)
    define(ns, MODEL + "def neg(v):\n    return -v\n")  # the same cells run again: new objects, same code
    again = {"model": ns["Model"](3), "op": ns["neg"], "method": ns["Model"](2).predict, "cls": ns["Model"]}
    assert dagnb.fingerprint(again) == first
    define(ns, "def neg(v):\n    return -v - 0\n")
    again["op"] = ns["neg"]
    assert dagnb.fingerprint(again) != first


CARRYING_CODE = """
import functools
class Model:
    def __init__(self, k):
        self.k = k
    def predict(self, x):
        return x * self.k
def neg(v):
    return -v
value = {"model": Model(3), "ops": {"neg": neg}, "partial": functools.partial(neg), "f": lambda v: v + 1,
         "methods": [Model(2).predict], "cls": Model, "s": {neg, 1}}
"""


def _fingerprint_in_a_new_process(tmp_path: Path, seed: str, with_source: bool) -> str:
    script = tmp_path / "cell.py"
    script.write_text(CARRYING_CODE)
    register = (
        "import linecache; src = open(path).read(); "
        "linecache.cache['<cell-1>'] = (len(src), None, src.splitlines(True), '<cell-1>'); "
        if with_source else "src = open(path).read(); "
    )
    code = (
        f"import dagnb; path = {str(script)!r}; {register}"
        "ns = {'__name__': '__main__'}; exec(compile(src, '<cell-1>', 'exec'), ns); "
        "print(dagnb.fingerprint(ns['value']))"
    )
    env = {**os.environ, "PYTHONHASHSEED": seed}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_value_that_carries_code_fingerprints_the_same_in_every_process(tmp_path: Path) -> None:
    """Across processes and hash seeds, and whether or not the process has the cell's source (a worker has not)."""
    digests = {_fingerprint_in_a_new_process(tmp_path, seed, with_source)
               for seed in ("0", "1", "4242") for with_source in (True, False)}
    assert len(digests) == 1, digests


# ------------------------------------------------------------------ classes and defaults

CLASSES = {
    "a base class method": ("class Base:\n    def f(self):\n        return 1\n", "return 1", "return 2"),
    "a dunder method": ("class Base:\n    def __add__(self, other):\n        return 1\n    def f(self):\n"
                        "        return self + self\n", "return 1\n", "return 5\n"),
    "a metaclass": ("class Meta(type):\n    def scale(cls):\n        return 1\nclass Base(metaclass=Meta):\n"
                    "    def f(self):\n        return type(self).scale()\n", "return 1\n", "return 3\n"),
}


@pytest.mark.parametrize("case", list(CLASSES))
def test_editing_what_a_subclass_inherits_reruns_its_users(tmp_path: Path, case: str) -> None:
    base, old, new = CLASSES[case]
    nb = Notebook(tmp_path)
    nb.cell(base)
    nb.cell("class Sub(Base):\n    pass\n")
    nb.task("def t():\n    note('t')\n    return Sub().f()\n")
    nb.run()
    before = nb.graph["t"]
    nb.cell(base.replace(old, new, 1))
    nb.cell("class Sub(Base):\n    pass\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] != before


def test_a_helpers_keyword_only_defaults_count(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.cell("K = 2\ndef mul(x, *, k=K):\n    return x * k\n")
    nb.task("def t():\n    note('t')\n    return mul(5)\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 10
    nb.cell("K = 3\ndef mul(x, *, k=K):\n    return x * k\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 15


def test_a_dataclass_default_counts(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.cell("from dataclasses import dataclass, field\n@dataclass\nclass Opts:\n    k: int = 2\n")
    nb.task("def t():\n    note('t')\n    return Opts().k\n")
    nb.run()
    nb.cell("from dataclasses import dataclass, field\n@dataclass\nclass Opts:\n    k: int = 4\n")
    assert nb.run()[1] == ["t"] and nb.graph["t"] == 4


LAMBDA_TASK = "def t(f=lambda v: v + 1):\n    note('t')\n    return f(1)\n"


def test_an_unchanged_lambda_default_is_a_cache_hit_again_and_after_a_restart(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and nothing to warn about
        nb.task(LAMBDA_TASK)
        assert nb.run()[1] == ["t"]
        nb.task(LAMBDA_TASK)  # the cell runs again
        assert nb.run()[1] == []
        restarted = Notebook(tmp_path)
        restarted.task(LAMBDA_TASK)
        assert restarted.run()[1] == [] and restarted.graph["t"] == 2
        restarted.task(LAMBDA_TASK.replace("v + 1", "v + 2"))
        assert restarted.run()[1] == ["t"] and restarted.graph["t"] == 3


# ------------------------------------------------------------------ values with no fingerprint


def test_a_global_with_no_fingerprint_makes_its_task_always_run_and_says_why(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.ns["LOCK"] = threading.Lock()
    nb.task("def t():\n    note('t')\n    return 1 if LOCK else 0\n")
    with pytest.warns(UnfingerprintableWarning) as caught:
        assert nb.run()[1] == ["t"]
    assert [str(w.message) for w in caught] == [
        "Task `t` reads the global `LOCK`, a `_thread.lock` that dagnb cannot fingerprint (cannot pickle "
        "'_thread.lock' object). So `t` reruns every time, like a `--volatile` task, rather than risk a stale "
        "result. Pass something dagnb can fingerprint instead (the settings it is made from), or teach dagnb "
        "the type with `dagnb.register_fingerprint(lock, fn)`."
    ]
    func = nb.graph.tasks.specs["t"].func
    assert (caught[0].filename, caught[0].lineno) == (func.__code__.co_filename, 1), "at the task's cell"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        assert nb.run()[1] == ["t"]
        assert str(nb.graph.why("t")) == "t is stale: the global `LOCK` cannot be fingerprinted."


def test_rebinding_a_global_with_no_fingerprint_never_serves_an_old_value(tmp_path: Path) -> None:
    """Keyed by ``id()``, a rebinding could reuse an address and look unchanged (CPython reuses them)."""
    nb = Notebook(tmp_path)
    nb.cell("import threading\nclass Box:\n    def __init__(self, n):\n        self.n, self.lock = n, threading.Lock()\n")
    nb.task("def t():\n    note('t')\n    return BOX.n\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnfingerprintableWarning)
        for n in range(12):
            nb.cell(f"BOX = Box({n})\n")
            assert nb.run()[1] == ["t"] and nb.graph["t"] == n


@pytest.mark.parametrize(("where", "cell", "what"), [
    ("a default", "import threading\ndef t(lock=threading.Lock()):\n    note('t')\n    return 1\n",
     "the default of `lock`"),
    ("a notebook variable", "def t(lock):\n    note('t')\n    return 1\n", "the notebook variable `lock`"),
])
def test_an_input_with_no_fingerprint_is_named_as_what_it_is(tmp_path: Path, where: str, cell: str, what: str) -> None:
    nb = Notebook(tmp_path)
    nb.ns["lock"] = threading.Lock()
    nb.task(cell)
    with pytest.warns(UnfingerprintableWarning, match=rf"^Task `t` reads {what}, a `_thread.lock` that"):
        assert nb.run()[1] == ["t"]
    assert nb.run()[1] == ["t"]


# ------------------------------------------------------------------ hidden reads of another task


def _hidden(tmp_path: Path) -> Notebook:
    nb = Notebook(tmp_path)
    nb.task("def base():\n    note('base')\n    return 7\n")
    nb.task("def double():\n    note('double')\n    return base * 2\n")  # no parameter: a hidden read
    return nb


def test_a_task_read_as_a_global_is_an_upstream_edge(tmp_path: Path) -> None:
    nb = _hidden(tmp_path)
    assert nb.graph.upstream("double") == ["base"]
    assert nb.run("double")[1] == ["base", "double"] and nb.graph["double"] == 14
    nb.task("def base():\n    note('base')\n    return 8\n")
    assert nb.graph.stale(["double"]) == ["double"]
    assert nb.graph.tasks.downstream("base") == ["double"]
    assert str(nb.graph.why("double")) == "double is stale: upstream base reruns first."
    assert nb.run()[1] == ["base", "double"] and nb.graph["double"] == 16
    assert nb.run()[1] == []


def test_a_helper_that_reads_a_task_variable_makes_an_edge_too(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task("def base():\n    note('base')\n    return 7\n")
    nb.cell("def twice():\n    return base * 2\n")
    nb.task("def user():\n    note('user')\n    return twice()\n")
    assert nb.graph.upstream("user") == ["base"]


@pytest.mark.parametrize("backend", ["inline", "threads"])
def test_a_hidden_read_waits_for_its_task_on_every_backend(tmp_path: Path, backend: str) -> None:
    nb = Notebook(tmp_path)
    nb.cell("import time\n")
    nb.task("def slow():\n    note('slow')\n    time.sleep(0.3)\n    return 5\n")
    nb.task("def reader():\n    note('reader')\n    return slow + 1\n")
    nb.run(backend=backend, jobs=2)
    assert nb.graph["reader"] == 6
    nb.task("def slow():\n    note('slow')\n    time.sleep(0.3)\n    return 50\n")
    nb.run(backend=backend, jobs=2)
    assert nb.graph["reader"] == 51


def test_a_cycle_through_a_hidden_read_is_refused(tmp_path: Path) -> None:
    nb = Notebook(tmp_path)
    nb.task("def a():\n    note('a')\n    return 1\n")
    nb.task("def b(a):\n    note('b')\n    return a\n")
    with pytest.raises(CycleError) as refused:
        nb.task("def a():\n    note('a')\n    return b + 1\n")
    assert str(refused.value) == (
        "Tasks form a cycle: a -> b -> a (`a` reads the variable `b` of task `b`). A task cannot depend on its "
        "own output; rename a parameter, or stop reading that variable, to break the loop."
    )
    assert nb.graph.upstream("b") == ["a"] and nb.run()[1] == ["a", "b"], "the previous definition is kept"


def test_an_unchanged_upstream_read_as_a_global_is_early_cutoff(tmp_path: Path) -> None:
    nb = _hidden(tmp_path)
    nb.run()
    nb.task("def base():\n    note('base')\n    return 3 + 4\n")
    assert nb.run()[1] == ["base"], "the same output: `double` is not rerun"


# ------------------------------------------------------------------ deep and cyclic values


def test_a_matplotlib_figure_fingerprints_and_is_cached(tmp_path: Path) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    nb = Notebook(tmp_path)
    nb.cell("import matplotlib.pyplot as plt\n")
    nb.task("def fig():\n    note('fig')\n    f, ax = plt.subplots()\n    ax.plot([1, 2, 3])\n"
            "    plt.close(f)\n    return f\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither unfingerprintable nor unpicklable
        nb.run()
    assert not nb.graph.results["fig"].fingerprint.startswith("key "), "fingerprinted, not keyed by its producer"
    assert nb.graph.store.entry(nb.graph.results["fig"].key).stored


def test_values_nested_deeper_than_the_stack_fingerprint() -> None:
    def chain(depth: int, end: int) -> list[Any]:
        value: list[Any] = [end]
        for _ in range(depth):
            value = [value]
        return value

    deep = chain(50_000, 1)
    assert dagnb.fingerprint(deep) == dagnb.fingerprint(chain(50_000, 1))
    assert dagnb.fingerprint(deep) != dagnb.fingerprint(chain(50_000, 2))
    assert sys.getrecursionlimit() < 50_000, "the limit is restored"


def test_a_value_that_holds_itself_fingerprints() -> None:
    class Node:
        def __init__(self) -> None:
            self.peer: Any = None

    first, second = Node(), Node()
    first.peer, second.peer = second, first
    assert dagnb.fingerprint(first) == dagnb.fingerprint(first)
    loop: list[Any] = [1]
    loop.append(loop)
    assert dagnb.fingerprint(loop) == dagnb.fingerprint(loop)


def test_code_in_a_value_whose_attributes_raise_makes_it_unfingerprintable_not_a_crash() -> None:
    class Meta(type):
        def __getattribute__(cls, name: str) -> Any:
            if name == "__dict__":
                raise RuntimeError("no dict today")
            return super().__getattribute__(name)

    odd = Meta("Odd", (), {"f": lambda self: 1})
    with pytest.raises(Unfingerprintable, match=r"its code cannot be read \(RuntimeError\)"):
        dagnb.fingerprint([odd])


def test_a_partial_of_a_library_function_still_pickles_by_reference() -> None:
    value = functools.partial(max, 3)
    assert dagnb.fingerprint(value) == dagnb.fingerprint(functools.partial(max, 3))


def test_a_callable_object_is_refused_as_a_task_with_the_fix() -> None:
    class Scale:
        def __call__(self, x: int) -> int:
            return x * 2

    graph = dagnb.Graph()
    with pytest.raises(dagnb.errors.TaskDefinitionError) as refused:
        graph.task(functools.partial(max, 1))
    assert str(refused.value) == (
        "Task `partial`: it is a `partial`, not a function, so it has no code of its own to fingerprint. "
        "Define it with `def partial(...)`, calling the object inside if needed."
    )
    with pytest.raises(dagnb.errors.TaskDefinitionError, match=r"^Task `Scale`: it is a `.*Scale`, not a function"):
        graph.task(Scale())


def test_a_cells_source_digest_is_read_from_linecache_as_inspect_reads_it() -> None:
    import inspect

    from dagnb.fingerprints.code import function_digest, source_digest

    ns = define({}, "import functools\n\n@functools.lru_cache\ndef f(x):\n    '''doc'''\n    return x  # note\n\n"
                    "def g():\n    return 1\n")
    for fn in (ns["f"].__wrapped__, ns["g"]):
        assert function_digest(fn) == source_digest(inspect.getsource(fn))
