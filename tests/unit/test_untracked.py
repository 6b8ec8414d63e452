"""What a task reads that its key does not cover: a table of small notebooks.

Each :class:`Case` is a notebook cell (imports, helpers, variables), an
optional upstream task, and one task function, with the untracked reads it
must be told about, as ``(kind, code as written)``; an empty list means no
warning at all (a false alarm is a defect too). Every case is judged twice,
the two ways dagnb sees a notebook:

* live: the cell runs into a namespace and the task is defined on a real
  :class:`dagnb.Graph` (names resolve by identity against loaded modules);
* as text: ``dagnb check`` reads the same cells (names resolve through the
  import lines), and must note the very same message, or nothing.
"""

from __future__ import annotations

import ast
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from notebook_cells import define

import dagnb
from dagnb.ci.check import check_source
from dagnb.errors import UntrackedWarning


@dataclass
class Case:
    id: str
    setup: str
    task: str
    expected: list[tuple[str, str]]
    upstream: list[str] = field(default_factory=list)  # names of tasks defined before (returning a path)


NP = "import numpy as np"
PD = "import io\nimport pandas as pd"
OS = "import os\nimport dagnb"
HELPERS = "import time\ndef load(p):\n    with open(p) as handle:\n        return handle.read()\ndef stamp():\n    return time.time()"

CASES = [
    # --- the global random generator, and generators without a seed
    Case("numpy-global", NP, "def t():\n    return np.random.rand(3)", [("random", "np.random.rand(3)")]),
    Case("numpy-unaliased", "import numpy", "def t():\n    return numpy.random.normal(size=2)",
         [("random", "numpy.random.normal(size=2)")]),
    Case("numpy-from-import", "from numpy.random import rand", "def t():\n    return rand(2)", [("random", "rand(2)")]),
    Case("numpy-module-alias", "import numpy.random as npr", "def t():\n    return npr.randint(5)",
         [("random", "npr.randint(5)")]),
    Case("stdlib-global", "import random", "def t():\n    return random.random()", [("random", "random.random()")]),
    Case("stdlib-renamed", "from random import random as r", "def t():\n    return r()", [("random", "r()")]),
    Case("import-inside-the-task", "", "def t():\n    import numpy as np\n    return np.random.rand()",
         [("random", "np.random.rand()")]),
    Case("unseeded-default-rng", NP, "def t():\n    return np.random.default_rng().random()",
         [("random", "np.random.default_rng()")]),
    Case("default-rng-of-none", NP, "def t():\n    return np.random.default_rng(None).random()",
         [("random", "np.random.default_rng(None)")]),
    Case("unseeded-stdlib-generator", "import random", "def t():\n    return random.Random().random()",
         [("random", "random.Random()")]),
    Case("seeded-default-rng", NP, "def t(seed=0):\n    rng = np.random.default_rng(seed)\n    return rng.random()", []),
    Case("seeded-stdlib-generator", "import random", "def t(seed=1):\n    return random.Random(seed).random()", []),
    Case("seed-call-first", NP, "def t():\n    np.random.seed(0)\n    return np.random.rand(2)", []),
    Case("seed-call-without-a-seed", "import random",
         "def t():\n    random.seed()\n    return random.random()", [("random", "random.random()")]),
    Case("uuid4", "import uuid", "def t():\n    return str(uuid.uuid4())", [("random", "uuid.uuid4()")]),
    # --- the clock
    Case("time-time", "import time", "def t():\n    return time.time()", [("clock", "time.time()")]),
    Case("datetime-now", "from datetime import datetime", "def t():\n    return datetime.now()",
         [("clock", "datetime.now()")]),
    Case("date-today", "import datetime", "def t():\n    return datetime.date.today()",
         [("clock", "datetime.date.today()")]),
    Case("timestamp-now-word", PD, "def t():\n    return pd.Timestamp('now')", [("clock", "pd.Timestamp('now')")]),
    Case("timestamp-of-a-date", PD, "def t():\n    return pd.Timestamp('2024-01-01')", []),
    Case("strftime-of-now", "import time", "def t():\n    return time.strftime('%Y')", [("clock", "time.strftime('%Y')")]),
    Case("strftime-of-a-given-time", "import time", "def t(when=(2024, 1, 1, 0, 0, 0, 0, 1, 0)):\n"
         "    return time.strftime('%Y', when)", []),
    Case("durations-are-not-the-date", "import time",
         "def t():\n    start = time.perf_counter()\n    time.sleep(0)\n    return time.perf_counter() - start", []),
    # --- the environment
    Case("environ-item", OS, "def t():\n    return os.environ['HOME']", [("environment", "os.environ['HOME']")]),
    Case("getenv", OS, "def t():\n    return os.getenv('MODE', 'fast')", [("environment", "os.getenv('MODE', 'fast')")]),
    Case("environ-imported", "from os import environ", "def t():\n    return environ.get('A')",
         [("environment", "environ.get('A')")]),
    Case("environ-membership", OS, "def t():\n    return 'CI' in os.environ", [("environment", "os.environ")]),
    Case("environ-written", OS, "def t():\n    os.environ['X'] = '1'\n    return 1", []),
    # --- files
    Case("open-a-literal", "", "def t():\n    return open('data.csv').read()", [("file", "open('data.csv')")]),
    Case("open-a-file-parameter", OS, "def t(path=dagnb.file('data.csv')):\n    return open(path).read()", []),
    Case("open-a-plain-string-parameter", "", "def t(path='data.csv'):\n    return open(path).read()",
         [("file", "open(path)")]),
    Case("open-for-writing", "", "def t():\n    with open('out.txt', 'w') as f:\n        f.write('x')\n"
         "    with open('log.txt', mode='a') as f:\n        f.write('x')\n    return 1", []),
    Case("read-back-what-it-wrote", "", "def t():\n    with open('tmp.txt', 'w') as f:\n        f.write('x')\n"
         "    return open('tmp.txt').read()", []),
    Case("mode-not-a-literal", "", "def t(path='a.csv', mode='r'):\n    return open(path, mode).read()", []),
    Case("a-file-descriptor", "", "def t():\n    return open(0).readable()", []),
    Case("joined-onto-a-file-folder", OS,
         "def t(folder=dagnb.file('data')):\n    return open(os.path.join(folder, 'a.csv')).read()", []),
    Case("derived-from-a-file-parameter", OS,
         "def t(root=dagnb.file('data')):\n    p = os.path.join(root, 'a.csv')\n    with open(p) as f:\n"
         "        return f.read()", []),
    Case("loop-over-file-parameters", OS,
         "def t(files=[dagnb.file('a.csv'), dagnb.file('b.csv')]):\n"
         "    return [open(f).read() for f in files]", []),
    Case("path-from-an-upstream-task", "", "def t(raw):\n    return open(raw).read()", [], upstream=["raw"]),
    Case("a-global-file", OS + "\nDATA = dagnb.file('d.csv')", "def t():\n    return open(DATA).read()", []),
    Case("a-global-string", "DATA = 'd.csv'", "def t():\n    return open(DATA).read()", [("file", "open(DATA)")]),
    Case("a-notebook-variable-file", OS + "\nsrc = dagnb.file('a.csv')", "def t(src):\n    return open(src).read()", []),
    Case("a-notebook-variable-string", "src = 'a.csv'", "def t(src):\n    return open(src).read()",
         [("file", "open(src)")]),
    Case("pandas-reader", PD, "def t():\n    return pd.read_csv('data.csv')", [("file", "pd.read_csv('data.csv')")]),
    Case("pandas-reads-a-buffer", PD, "def t(text='a\\n1'):\n    return pd.read_csv(io.StringIO(text))", []),
    Case("pathlib-read-text", "from pathlib import Path", "def t():\n    return Path('notes.txt').read_text()",
         [("file", "Path('notes.txt').read_text()")]),
    Case("inner-function-parameter", OS, "def t(path=dagnb.file('a.csv')):\n    def read(p):\n"
         "        return open(p).read()\n    return read(path)", []),
    # --- notebook helpers the task calls
    Case("helper-reads-a-literal-path", HELPERS, "def t():\n    return load('x.csv')", [("file", "open(p)")]),
    Case("helper-reads-a-file-parameter", HELPERS + "\nimport dagnb",
         "def t(path=dagnb.file('x.csv')):\n    return load(path)", []),
    Case("helper-reads-the-clock", HELPERS, "def t():\n    return stamp()", [("clock", "time.time()")]),
    # --- several at once, each said once
    Case("several-kinds", NP + "\nimport time",
         "def t():\n    a = np.random.rand(2)\n    b = np.random.rand(2)\n    return a + b + time.time()",
         [("random", "np.random.rand(2)"), ("clock", "time.time()")]),
]


def _live(case: Case, tmp_path: Path) -> list[tuple[str, str]]:
    namespace: dict = {}
    define(namespace, case.setup)
    graph = dagnb.Graph(namespace=namespace)
    for name in case.upstream:
        graph.task(define(namespace, f"def {name}():\n    return 'p.csv'\n")[name])
    define(namespace, case.task)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UntrackedWarning)
        graph.task(namespace["t"])
    return graph.say_untracked("t")


def _as_text(case: Case) -> list[str]:
    cells = [("code", case.setup)] if case.setup else []
    cells += [("code", f"%%task\ndef {name}():\n    return 'p.csv'\n") for name in case.upstream]
    result = check_source([*cells, ("code", "%%task\n" + case.task)], "nb")
    assert result.ok, result.render_text()
    return [note.message for note in result.notes]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_untracked_reads_are_found_live_and_in_the_text(case: Case, tmp_path: Path) -> None:
    found = _live(case, tmp_path)
    assert [(f.kind, f.code) for f in found] == case.expected
    expected_notes = [f"note: {UntrackedWarning('t', found, line_offset=1)}"] if found else []
    assert _as_text(case) == expected_notes


def test_a_volatile_task_is_never_told(tmp_path: Path) -> None:
    namespace = define({}, NP + "\ndef t():\n    return np.random.rand(3)\n")
    graph = dagnb.Graph(namespace=namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph.task(namespace["t"], volatile=True)
    assert graph.say_untracked("t") == []
    result = check_source([("code", NP), ("code", "%%task --volatile\ndef t():\n    return np.random.rand(3)")])
    assert result.notes == []


def test_the_warning_names_the_task_what_is_not_seen_and_every_fix(tmp_path: Path) -> None:
    namespace = define({}, "import time\nimport numpy as np\n")
    source = "def sample(n=3):\n    x = np.random.rand(n)\n    return x, time.time(), open('raw.csv').read()\n"
    define(namespace, source)
    graph = dagnb.Graph(namespace=namespace)
    with pytest.warns(UntrackedWarning) as caught:
        graph.task(namespace["sample"])
    assert len(caught) == 1
    assert str(caught[0].message) == (
        "Task `sample` reads what its key does not cover: the global random generator (`np.random.rand(n)` line 2), "
        "the clock (`time.time()` line 3), a file that is not a `dagnb.file` input (`open('raw.csv')` line 3). "
        "dagnb cannot see these change, so a cached value is reused as if the task were deterministic. "
        "To fix it: take a seed as a parameter (`def sample(seed=0)`, then `np.random.default_rng(seed)` or "
        "`random.Random(seed)`); pass the date or time as a parameter; declare the file as a parameter "
        "(`path=dagnb.file('raw.csv')`); or mark the task volatile (`%%task --volatile`, `@task(volatile=True)`) "
        "to rerun it every time."
    )
    assert caught[0].lineno == 2  # the first untracked line, in the cell the function came from
    assert caught[0].filename == namespace["sample"].__code__.co_filename


def test_redefining_with_the_same_findings_says_nothing_and_new_findings_are_said(tmp_path: Path) -> None:
    namespace = define({}, "import time\n")
    graph = dagnb.Graph(namespace=namespace)
    with pytest.warns(UntrackedWarning):
        graph.task(define(namespace, "def t():\n    return time.time()\n")["t"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph.task(define(namespace, "def t():\n    # same reads, edited comment\n    return time.time()\n")["t"])
    with pytest.warns(UntrackedWarning, match="the environment"):
        graph.task(define(namespace, "import os\ndef t():\n    return time.time(), os.getenv('A')\n")["t"])


def test_torch_global_generator_and_its_seed() -> None:
    pytest.importorskip("torch", reason="torch is not installed (it is not in the test extra: see docs/reference.md)")
    namespace = define({}, "import torch\n")
    graph = dagnb.Graph(namespace=namespace)
    with pytest.warns(UntrackedWarning, match=r"`torch.rand\(3\)` line 2"):
        graph.task(define(namespace, "def t():\n    return torch.rand(3)\n")["t"])
    graph.task(define(namespace, "def u():\n    torch.manual_seed(0)\n    return torch.rand(3)\n")["u"])
    assert graph.say_untracked("u") == []


def test_an_analysis_that_cannot_read_the_source_says_nothing() -> None:
    namespace: dict = {}
    exec(compile("def t():\n    return open('x').read()\n", "<no-source>", "exec"), namespace)
    graph = dagnb.Graph(namespace=namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph.task(namespace["t"])
    assert graph.say_untracked("t") == []


def test_parsing_is_done_once_per_function() -> None:
    from dagnb.fingerprints.scopes import function_tree

    namespace = define({}, "def f():\n    return 1\n")
    code = namespace["f"].__code__
    assert function_tree(code) is function_tree(code)
    assert isinstance(function_tree(code), ast.FunctionDef)


def test_the_check_lists_a_note_that_does_not_fail_it() -> None:
    result = check_source([("code", "import time"), ("code", "%%task\ndef t():\n    return time.time()")], "nb.ipynb")
    assert result.ok
    lines = result.render_text().splitlines()
    assert lines[0].startswith("nb.ipynb: cell 2, line 3: note: Task `t` reads what its key does not cover: the clock")
    assert lines[-1] == "nb.ipynb: ok (1 task in 2 cells)"


def test_source_layout_is_cleaned_of_indentation_before_parsing() -> None:
    namespace = define({}, textwrap.dedent("""
        import random
        if True:
            def t():
                return random.random()
    """))
    graph = dagnb.Graph(namespace=namespace)
    with pytest.warns(UntrackedWarning, match=r"`random.random\(\)` line 5"):
        graph.task(namespace["t"])


def test_a_helper_edited_after_the_task_is_analysed_again_when_the_task_cell_runs(tmp_path: Path) -> None:
    namespace = define({}, "import time\ndef inner():\n    return 1\ndef outer():\n    return inner()\n")
    graph = dagnb.Graph(namespace=namespace)
    task = "def t():\n    return outer()\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph.task(define(namespace, task)["t"])
    define(namespace, "def inner():\n    return time.time()\n")  # a helper of a helper now reads the clock
    with pytest.warns(UntrackedWarning, match=r"the clock \(`time.time\(\)` in helper `inner`\)"):
        graph.task(define(namespace, task)["t"])

