"""Two notebooks in one folder, one cache: each explains and lists only its own runs; identical tasks share values.

Real kernels: ``dagnb run`` (nbclient, told the path as Jupyter Server tells
it), a kernel started as JupyterLab starts one (``JPY_SESSION_NAME``), one
told its path as VS Code tells it (``__vsc_ipynb_file__``, set silently
after start), and a kernel that knows no notebook (the fallback, said once).
Executions are counted in a log file the task bodies append to.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from .live_kernel import LiveKernel, kernel_for

pytestmark = pytest.mark.kernel

RAW = "%%task\ndef raw():\n    open(LOG, 'a').write('raw\\n')\n    return [1, 2, 3]"
MODEL = {
    "a": "%%task\ndef model(raw, threshold):\n    open(LOG, 'a').write('a.model\\n')\n    return [x for x in raw if x > threshold]",
    "b": "%%task\ndef model(raw, threshold):\n    open(LOG, 'a').write('b.model\\n')\n    return sum(raw) * threshold",
}


def cells(folder: Path, name: str, threshold: int = 1) -> list[str]:
    return ["%load_ext dagnb", f"LOG = {str(folder / 'log.txt')!r}\nthreshold = {threshold}", RAW, MODEL[name]]


def executions(folder: Path) -> list[str]:
    log = folder / "log.txt"
    ran = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return ran


def environment(folder: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_SESSION_NAME", "DAGNB_NOTEBOOK")}
    return dict(env, DAGNB_CACHE_DIR=str(folder / ".dagnb"), **extra)  # the default: `.dagnb` beside the notebooks


def run_cli(folder: Path, name: str) -> str:
    nb = new_notebook()
    nb.cells = [new_code_cell(c) for c in cells(folder, name)]
    nbformat.write(nb, folder / f"{name}.ipynb")
    done = subprocess.run([sys.executable, "-m", "dagnb", "run", f"{name}.ipynb"], cwd=folder, capture_output=True,
                          text=True, env=environment(folder), timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def run_ids(history: str) -> list[int]:
    return [int(n) for n in re.findall(r"^  run (\d+) ", history, re.M)]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """a.ipynb then b.ipynb run by `dagnb run` in one folder: raw is shared, each has its own model."""
    assert "raw" in run_cli(tmp_path, "a") and executions(tmp_path) == ["raw", "a.model"]
    out = run_cli(tmp_path, "b")
    assert executions(tmp_path) == ["b.model"], "b loads raw (same code, same inputs) from a's run"
    assert re.search(r"^  raw +cached", out, re.M), out
    return tmp_path


def test_a_jupyterlab_kernel_explains_and_lists_only_its_notebook(folder: Path) -> None:
    env = environment(folder, JPY_SESSION_NAME=str(folder / "a.ipynb"))  # as Jupyter Server starts it
    for kernel in kernel_for(folder, env):
        restarted = [c.replace("%%task", "%%task --no-run", 1) for c in cells(folder, "a", threshold=2)]
        for cell in restarted:  # defined, not run: `why` compares with a's last run
            assert "dagnb does not know" not in kernel.text(cell)
        assert kernel.text("%dag why model").strip() == "model is stale: input threshold changed."
        history = kernel.text("%dag history")
        assert history.splitlines()[0] == "history of the notebook `a.ipynb` (newest first):"
        assert run_ids(history) == [2, 1], "b's runs (3, 4) are not a's"
        kernel.ok("%dag run")
        assert executions(folder) == ["a.model"]
        assert kernel.text("%dag history --diff 2 5").splitlines()[1].split()[:1] == ["model"]
        assert "There is no run 3 in the history of the notebook `a.ipynb`." in "".join(
            m.text for m in kernel.run("%dag history --diff 3 5").errors)


def test_a_vs_code_kernel_finds_its_notebook_after_start(folder: Path) -> None:
    for kernel in kernel_for(folder, environment(folder)):
        kernel.client.execute(f"__vsc_ipynb_file__ = {str(folder / 'b.ipynb')!r}", silent=True)  # as VS Code does
        kernel.client.get_shell_msg(timeout=60)
        for cell in cells(folder, "b"):
            assert "dagnb does not know" not in kernel.text(cell)
        assert executions(folder) == [], "both tasks load from b's cache"
        assert kernel.text("%dag why model").strip() == "model is up to date: its key is unchanged."
        history = kernel.text("%dag history")
        assert history.splitlines()[0] == "history of the notebook `b.ipynb` (newest first):"
        assert run_ids(history) == [6, 5, 4, 3]


@pytest.fixture()
def fallback(tmp_path: Path) -> Iterator[LiveKernel]:
    yield from kernel_for(tmp_path, environment(tmp_path))  # no notebook path: like nbval, jupyter execute


def test_a_kernel_that_knows_no_notebook_uses_its_folder_and_says_so_once(fallback: LiveKernel,
                                                                           tmp_path: Path) -> None:
    said = fallback.ok("%load_ext dagnb")
    (note,) = said.displays
    assert note.text == (
        f"dagnb does not know which notebook this kernel runs (plain IPython, a script, or a runner that does not "
        f"pass the notebook's path), so it keeps task heads, run history and explanations for the folder "
        f"`{tmp_path.name}`, shared by every session there that does not know its notebook either. Cached values are "
        f"shared by content all the same. Set `DAGNB_NOTEBOOK` to the notebook's path to keep them apart.")
    assert note.metadata == {"dagnb": {"output": "note"}}
    for cell in cells(tmp_path, "a")[1:]:
        assert "dagnb does not know" not in fallback.text(cell), "said once"
    assert executions(tmp_path) == ["raw", "a.model"]
    assert fallback.text("%dag history").splitlines()[0] == f"history of the folder `{tmp_path.name}` (newest first):"
