"""What a CI job with a persisted dagnb cache recomputes: the tour notebook through `dagnb run`.

Three runs of ``notebooks/tour.ipynb`` (tasks sleep 0.2 s and 0.5 s to stand
in for work) on one cache directory, as a CI job that persists
``DAGNB_CACHE_DIR`` between jobs would see them: a cold cache, the same
commit again, and a commit that edits one task (``squares``). Wall time is
the whole ``dagnb run`` command (kernel start included); the task columns
come from its ``--json`` report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import Row, Sizes, user_environment

ROOT = Path(__file__).resolve().parents[2]


def _run(notebook: Path, cache: Path) -> tuple[float, dict[str, object]]:
    env = user_environment(DAGNB_CACHE_DIR=str(cache))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "dagnb", "run", str(notebook), "--json"], cwd=notebook.parent,
                          capture_output=True, text=True, env=env, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)


def _edit_squares(notebook: Path) -> None:
    text = notebook.read_text()
    edited = text.replace("return [x * x for x in numbers]", "return [2 * x * x for x in numbers]")
    assert edited != text, "the tour notebook no longer has the `squares` body this benchmark edits"
    notebook.write_text(edited)


def _describe(wall: float, report: dict[str, object]) -> str:
    counts = report["counts"]
    assert isinstance(counts, dict)
    tasks = report["tasks"]
    assert isinstance(tasks, dict)
    task_time = sum(t["duration"] or 0.0 for t in tasks.values() if t["status"] == "done")
    return f"{wall:.2f} s wall; {counts['ran']} ran ({task_time:.2f} s of task time), {counts['cached']} cached"


def rows(sizes: Sizes) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-ci-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "notebooks", work / "notebooks")
        notebook, cache = work / "notebooks" / "tour.ipynb", work / "cache"
        cold = _run(notebook, cache)
        again = _run(notebook, cache)
        _edit_squares(notebook)
        edited = _run(notebook, cache)
    label = "`dagnb run notebooks/tour.ipynb` with a persisted cache (CI):"
    return [
        Row(f"{label} cold cache", _describe(*cold), "—", None, "—", None),
        Row(f"{label} same commit again", _describe(*again), "—", None, "—", None),
        Row(f"{label} one task (`squares`) edited", _describe(*edited), "—", None, "—", None),
    ]
