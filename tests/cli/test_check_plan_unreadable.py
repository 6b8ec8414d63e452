"""``dagnb check --plan`` over metadata that fails part-way through: one message, no traceback, no write.

The plan reads the cache read-only and without a lock, so a page it reaches
late can be damaged, or rewritten by a kernel's checkpoint meanwhile. The
first pages (the format) read fine, the task rows do not: SQLite raises in
the middle of the plan, and the user must get one sentence that says what
to do, with the cache's files left as they were.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

import dagnb
from dagnb.graph import spec_from_function

TASKS = 40  # enough rows that the entries sit on pages past the first


def _fill(cache: Path) -> None:
    graph = dagnb.Graph(cache_dir=str(cache))
    namespace: dict[str, object] = {}
    exec("".join(f"def t{i}():\n    return {i}\n" for i in range(TASKS)), namespace)  # noqa: S102
    for i in range(TASKS):
        graph.add(spec_from_function(namespace[f"t{i}"]))
    graph.run()
    graph.close()


def _damage_the_entries(path: Path) -> None:
    """Overwrite the root pages of the ``entries`` table and its indexes; the format row stays readable."""
    db = sqlite3.connect(path)
    try:
        page = db.execute("PRAGMA page_size").fetchone()[0]
        roots = [r for (r,) in db.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = 'entries'")]
    finally:
        db.close()
    with path.open("r+b") as f:
        for root in roots:
            f.seek((root - 1) * page)
            f.write(b"\xff" * page)


def test_metadata_unreadable_mid_plan_is_one_message(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    _fill(cache)
    meta = cache / "meta.sqlite"
    _damage_the_entries(meta)
    before = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()}
    nb = new_notebook(cells=[new_code_cell("%%task\ndef t3():\n    return 3\n")])
    nbformat.write(nb, tmp_path / "nb.ipynb")

    done = subprocess.run(
        [sys.executable, "-m", "dagnb", "check", "--plan", "nb.ipynb", "--cache-dir", str(cache)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )

    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr == (
        f"dagnb check: the cache metadata at {meta} could not be read to the end (SQLite says: database disk "
        f"image is malformed). If a kernel was writing to this cache, run the check again; if it says so "
        f"again, the metadata is damaged: `dagnb cache verify --cache-dir {cache}` sets it aside (nothing is "
        f"deleted).\n"
    )
    assert {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()} == before
