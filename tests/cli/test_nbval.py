"""nbval on dagnb notebooks, run the way CI runs it: ``pytest --nbval`` in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
SANITIZE = ROOT / "extension" / "nbval" / "sanitize.cfg"


def nbval(notebook: Path, *flags: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DAGNB_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=", "-q", "--nbval-current-env",
         *flags, str(notebook)],
        cwd=notebook.parent, capture_output=True, text=True, env=env, timeout=300,
    )


def notebook(path: Path, *cells: str) -> Path:
    nbformat.write(new_notebook(cells=[new_code_cell("%load_ext dagnb"), *(new_code_cell(c) for c in cells)]), path)
    return path


BROKEN = {
    "unresolved parameter": "%%task\ndef model(featurs):\n    return featurs",
    "task raises": "%%task\ndef boom():\n    return 1 / 0",
    "bad magic option": "%dag run --bogus",
}


@pytest.mark.parametrize("source", BROKEN.values(), ids=BROKEN.keys())
def test_nbval_lax_fails_a_cell_whose_magic_failed(tmp_path: Path, source: str) -> None:
    nb = notebook(tmp_path / "broken.ipynb", "features = [1]", source)
    result = nbval(nb, "--nbval-lax", cache=tmp_path / "cache")
    assert result.returncode == 1, result.stdout
    assert "1 failed, 2 passed" in result.stdout


def test_a_notebook_saved_by_dagnb_run_passes_strict_nbval_on_a_cold_cache(tmp_path: Path) -> None:
    nb = notebook(
        tmp_path / "ok.ipynb",
        "%%task\ndef raw():\n    print('reading')\n    return [3, 1, 2]",
        "%%task\ndef clean(raw):\n    return sorted(raw)",
        "%dag", "%dag run", "%dag trace", "%dag costs", "%dag show --static",
    )
    saved = tmp_path / "saved.ipynb"
    run = subprocess.run([sys.executable, "-m", "dagnb", "run", str(nb), "--output", str(saved)], cwd=tmp_path,
                         capture_output=True, text=True, env=dict(os.environ, DAGNB_CACHE_DIR=str(tmp_path / "c1")))
    assert run.returncode == 0, run.stderr
    result = nbval(saved, "--nbval", "--nbval-sanitize-with", str(SANITIZE), cache=tmp_path / "c2")
    assert result.returncode == 0, result.stdout
    assert "8 passed" in result.stdout


WARM = [
    "threshold = 3",
    "%%task\ndef raw():\n    print('reading')\n    return [3, 1, 2]",
    "%%task --no-run\ndef ordered(raw):\n    print('sorting')\n    return sorted(raw)",
    "%%task\ndef small(raw, threshold):\n    return [x for x in raw if x < threshold]",
    "%dag", "%dag run", "%dag plan", "%dag why small", "%dag trace", "%dag costs", "%dag show --static",
    "%dag history 3", "%dag cache info",
    "threshold = 4",  # `small`'s line turns stale in its cell
    "print(small, ordered)",
]


def saved_from_a_warm_session(tmp_path: Path) -> Path:
    """The notebook executed twice on one cache (the second time everything is cached), saved the second time."""
    nb = notebook(tmp_path / "warm.ipynb", *WARM)
    saved = tmp_path / "saved.ipynb"
    env = dict(os.environ, DAGNB_CACHE_DIR=str(tmp_path / "warm-cache"))
    for _ in range(2):
        run = subprocess.run([sys.executable, "-m", "dagnb", "run", str(nb), "--output", str(saved)], cwd=tmp_path,
                             capture_output=True, text=True, env=env)
        assert run.returncode == 0, run.stdout + run.stderr
    cells = nbformat.read(saved, as_version=4).cells
    texts = ["".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in c.outputs) for c in cells]
    assert texts[2] == "reading\nraw: cached", "saved warm: the task cell replays its print and says cached"
    assert texts[6].startswith("sorting\nrun: 0 ran, 3 cached"), "a task loaded by %dag run replays there too"
    assert texts[4] == "small: stale (input threshold changed)", "the line was updated after its cell ran"
    return saved


def test_a_notebook_saved_from_a_warm_session_passes_strict_nbval_on_a_cold_cache(tmp_path: Path) -> None:
    saved = saved_from_a_warm_session(tmp_path)
    result = nbval(saved, "--nbval", cache=tmp_path / "cold-cache")
    assert result.returncode == 0, result.stdout
    assert f"{len(WARM) + 1} passed" in result.stdout

    without = nbval(saved, "--nbval", "-p", "no:dagnb", cache=tmp_path / "cold-cache-2")
    failed = {int(n) for n in re.findall(r"_ saved\.ipynb::Cell (\d+) _", without.stdout)}
    # the note of a kernel that knows no notebook (nbval passes no path; `dagnb run` did); the status lines of
    # raw, ordered and small; the view, the run report, the trace, costs, the static view, the history and the
    # cache listing; the plan and `why` agree (everything is up to date by then)
    assert failed == {0, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13}, without.stdout
