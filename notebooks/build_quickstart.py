"""Write notebooks/quickstart.ipynb from the cell sources below, then execute it
once on a cold cache so its saved outputs are what `pytest --nbval` expects.

Run after editing the cells: python notebooks/build_quickstart.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

CELLS = [
    ("md", """# dagnb quickstart

Each `%%task` cell holds one function. Its name is the task and the variable it
produces; its parameters are its inputs. Run the notebook twice, or edit a cell:
only what changed reruns, everything else comes from the cache (`.dagnb/` beside
this notebook)."""),
    ("code", "%load_ext dagnb"),
    ("code", "import csv\nimport statistics\n\nimport dagnb"),
    ("md", "`raw` reads a file. `dagnb.file` makes the file an input: editing the CSV makes `raw` stale."),
    ("code", '''%%task
def raw(path=dagnb.file("data/flowers.csv")):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    print(f"read {len(rows)} rows")
    return rows'''),
    ("md", "`clean` depends on `raw` because it names it as a parameter; `min_length` is a constant input."),
    ("code", '''%%task
def clean(raw, min_length=4.0):
    """Drop rows with a missing or implausible sepal length."""
    kept = []
    for row in raw:
        if row["sepal_length"] and float(row["sepal_length"]) >= min_length:
            kept.append({**row, "sepal_length": float(row["sepal_length"])})
    return kept'''),
    ("md", "A plain notebook variable used as a parameter is an *external input*, hashed by value."),
    ("code", "digits = 2"),
    ("code", '''%%task
def summary(clean, digits):
    by_species = {}
    for row in clean:
        by_species.setdefault(row["species"], []).append(row["sepal_length"])
    return {s: round(statistics.mean(v), digits) for s, v in sorted(by_species.items())}'''),
    ("code", '''%%task
def report(summary):
    return "\\n".join(f"{species:<12} {mean}" for species, mean in summary.items())'''),
    ("md", "Task values are ordinary variables:"),
    ("code", "print(report)"),
    ("md", "`%dag plan` says what the next `%dag run` would do and why; `%dag why TASK` names what changed."),
    ("code", "digits = 3\n%dag plan"),
    ("code", "%dag why summary"),
    ("code", "%dag run"),
    ("code", "print(report)"),
]


def build() -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in CELLS:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids keep diffs of the saved notebook small
    return nb


def main() -> None:
    nb = build()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["DAGNB_CACHE_DIR"] = cache
        NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(HERE)}}).execute()
    for cell in nb.cells:  # keep volatile timings out of the saved file
        cell.metadata.pop("execution", None)
    nbformat.write(nb, HERE / "quickstart.ipynb")


if __name__ == "__main__":
    main()
