"""Helpers shared by the unit tests (imported as a module; nothing here imports IPython)."""

from __future__ import annotations

import itertools
import linecache
from pathlib import Path
from typing import Any

_cells = itertools.count(1)


def define(namespace: dict[str, Any], source: str) -> dict[str, Any]:
    """Execute ``source`` in ``namespace`` the way a notebook cell runs.

    The source is registered in :mod:`linecache` under a fresh ``<cell-N>``
    name (as IPython does), so ``inspect.getsource`` works on what it defines.
    """
    filename = f"<cell-{next(_cells)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace.setdefault("__name__", "__main__")
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def runs(log: Path) -> list[str]:
    """The task names appended to ``log``, one per execution, in order."""
    return log.read_text().split() if log.exists() else []


NOTE = """
def note(name):
    with open(LOG, "a") as handle:
        handle.write(name + "\\n")
"""


class Notebook:
    """A notebook-like session over :class:`dagnb.Graph`, with no IPython.

    Cells are executed into ``ns`` (the graph's namespace). Every task body
    calls ``note("name")``, which appends to a log *file*: executions are
    counted there, not in a Python list that task code would reference (a
    referenced global is hashed, so a mutable counter would make tasks stale).
    """

    def __init__(self, tmp_path: Path, cache: bool = True, name: str = "cache") -> None:
        import dagnb

        self.log = tmp_path / "log.txt"
        self.ns: dict[str, Any] = {"LOG": str(self.log)}
        define(self.ns, NOTE)
        self.graph = dagnb.Graph(cache_dir=str(tmp_path / name) if cache else None, namespace=self.ns)

    def cell(self, source: str) -> None:
        """An ordinary cell."""
        define(self.ns, source)

    def task(self, source: str, volatile: bool = False, **options: Any) -> str:
        """A ``%%task`` cell: define the function and (re)register it; return its name.

        ``options`` go to ``Graph.task`` (``retries``, ``timeout``).
        """
        import ast
        import textwrap

        source = textwrap.dedent(source)
        (node,) = [n for n in ast.parse(source).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        define(self.ns, source)
        self.graph.task(self.ns[node.name], volatile=volatile, **options)
        return node.name

    def run(self, *targets: str, **options: Any) -> tuple[Any, list[str]]:
        """Run; return the report and the tasks that executed, in order."""
        before = len(runs(self.log))
        report = self.graph.run(list(targets) or None, **options)
        return report, runs(self.log)[before:]


DIAMOND = [
    "def a():\n    note('a')\n    return 2\n",
    "def b(a):\n    note('b')\n    return a * 10\n",
    "def c(a):\n    note('c')\n    return a + 1\n",
    "def d(b, c):\n    note('d')\n    return b + c\n",
]


def diamond(tmp_path: Path, cache: bool = True) -> Notebook:
    """The diamond most executor tests share::

        a --> b --> d
         \\         ^
          `-> c ---'
    """
    nb = Notebook(tmp_path, cache=cache)
    for source in DIAMOND:
        nb.task(source)
    return nb
