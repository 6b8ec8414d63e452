"""The notebooks the user's-path benchmarks execute: two shapes, written three ways.

Shapes of N cells, cell ``i`` defining ``t{i}`` (1-based):

* **chain**: ``t1`` returns 1, ``t{i}`` reads ``t{i-1}`` and returns it plus 1;
  the last cell has N - 1 upstream tasks.
* **fan**: ``t1`` returns 1, every other ``t{i}`` reads ``t1`` and returns
  ``t1 + i``; every cell has at most one upstream task.

Variants, with the same function bodies:

* **dagnb**: ``%load_ext dagnb``, then one ``%%task`` cell per function.
* **plain**: ``pass``, then cells that define ``make_t{i}`` and bind
  ``t{i} = make_t{i}(...)``: what the notebook costs without any cache.
* **joblib**: ``joblib.Memory`` set up in the first cell, then the plain
  cells with ``@memory.cache`` on each function.

Every task returns its own small int, so each is its own cache entry and
value file (identical values would share one file and hide the per-value
cost of the disk cache).
"""

from __future__ import annotations

from pathlib import Path

SHAPES = ("chain", "fan")
VARIANTS = ("dagnb", "plain", "joblib")


def upstream(shape: str, i: int) -> str:
    """The parameter list of ``t{i}``: its upstream task, if any."""
    if i == 1:
        return ""
    return f"t{i - 1}" if shape == "chain" else "t1"


def body(shape: str, i: int) -> str:
    if i == 1:
        return "return 1"
    return f"return t{i - 1} + 1" if shape == "chain" else f"return t1 + {i}"


def cell(variant: str, shape: str, i: int, flags: str = "") -> str:
    """Cell ``i`` of the notebook; ``flags`` go on a ``%%task`` line (``" --no-run"``)."""
    up, text = upstream(shape, i), body(shape, i)
    if variant == "dagnb":
        return f"%%task{flags}\ndef t{i}({up}):\n    {text}\n"
    decorator = "@memory.cache\n" if variant == "joblib" else ""
    return f"{decorator}def make_t{i}({up}):\n    {text}\nt{i} = make_t{i}({up})\n"


def setup(variant: str, joblib_dir: Path) -> str:
    """The first cell: load dagnb, nothing, or make the ``joblib.Memory``."""
    return {
        "dagnb": "%load_ext dagnb",
        "plain": "pass",
        "joblib": f"import joblib\nmemory = joblib.Memory({str(joblib_dir)!r}, verbose=0)",
    }[variant]


def notebook(variant: str, shape: str, n: int, joblib_dir: Path) -> list[str]:
    """The setup cell and the ``n`` cells of one variant."""
    return [setup(variant, joblib_dir), *(cell(variant, shape, i) for i in range(1, n + 1))]


def dask_graph(shape: str, n: int) -> str:
    """A cell that builds ``dsk``, dask's dict graph over the functions of the defined tasks."""
    up = '"t" + str(i - 1)' if shape == "chain" else '"t1"'
    return (
        "import dagnb\n"
        "_funcs = {name: spec.func for name, spec in dagnb.current().tasks.specs.items()}\n"
        f"dsk = {{f't{{i}}': (_funcs[f't{{i}}'], *([{up}] if i > 1 else [])) for i in range(1, {n} + 1)}}\n"
    )


def own_statuses(metadata: list[list[dict[str, object]]]) -> dict[str, str]:
    """``{task: status}`` from the ``dagnb`` metadata of each ``%%task`` cell's status line."""
    found: dict[str, str] = {}
    for cell_meta in metadata:
        for meta in cell_meta:
            task, statuses = meta.get("task"), meta.get("statuses")
            if isinstance(task, str) and isinstance(statuses, dict):
                found[task] = str(statuses.get(task))
    return found
