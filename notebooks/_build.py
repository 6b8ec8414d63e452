"""Shared by the notebook builders: cells in, executed notebook out.

Each example notebook is written from a list of cell sources and executed
once on a cold cache, so its saved outputs are what `pytest --nbval`
expects from a fresh checkout.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in cells:
        nb.cells.append(new_markdown_cell(source) if kind == "md" else new_code_cell(source))
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids keep diffs of the saved notebook small
    return nb


def execute_and_save(nb: nbformat.NotebookNode, name: str) -> None:
    """Execute ``nb`` beside this file on a cold cache and write it as ``name``."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ["DAGNB_CACHE_DIR"] = cache
        os.environ["DAGNB_NOTEBOOK"] = str(HERE / name)  # the kernel knows its notebook, as in Jupyter: no fallback note
        NotebookClient(nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(HERE)}}).execute()
    for cell in nb.cells:  # keep volatile timings out of the saved file
        cell.metadata.pop("execution", None)
    nbformat.write(nb, HERE / name)
