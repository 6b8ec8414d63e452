"""``dagnb run`` and ``dagnb cache`` as a user runs them: a subprocess on real notebooks.

Executions are counted through a log file each task body appends to, never
through dagnb's own report. Each test has its own cache directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

pytestmark = pytest.mark.kernel


def dagnb(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dagnb", *args], cwd=cwd, capture_output=True, text=True,
                          env=os.environ.copy(), timeout=300)


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGNB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def task(name: str, params: str, body: str) -> str:
    """A task cell that appends its name to LOG (a notebook variable), then returns ``body``."""
    return f"%%task\ndef {name}({params}):\n    open(LOG, 'a').write('{name}\\n')\n    return {body}"


PIPELINE = {
    "raw": task("raw", "", "[3, 1, 2]"),
    "clean": task("clean", "raw", "sorted(raw)"),
    "total": task("total", "clean", "sum(clean)"),
    "report": task("report", "total", "f'total {total}'"),
    "side": task("side", "raw", "len(raw)"),
}


def write(path: Path, cells: dict[str, str], extra: tuple[str, ...] = ()) -> Path:
    """raw --> clean --> total --> report;  raw --> side."""
    nb = new_notebook()
    nb.cells = [new_markdown_cell("# pipeline"), new_code_cell(f"LOG = {str(path.parent / 'log.txt')!r}"),
                *(new_code_cell(c) for c in cells.values()), *(new_code_cell(c) for c in extra)]
    nbformat.write(nb, path)
    return path


def runs(tmp_path: Path) -> list[str]:
    log = tmp_path / "log.txt"
    ran = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return ran


def test_first_run_executes_everything_the_second_nothing(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    first = dagnb("run", str(nb), cwd=env)
    assert first.returncode == 0, first.stderr
    assert runs(env) == ["raw", "clean", "total", "report", "side"]
    assert first.stdout.splitlines()[0] == f"{nb}: 5 tasks, 5 ran, 0 cached"
    second = dagnb("run", str(nb), cwd=env)
    assert second.returncode == 0, second.stderr
    assert runs(env) == []
    lines = second.stdout.splitlines()
    assert lines[0] == f"{nb}: 5 tasks, 0 ran, 5 cached"
    assert [line.split()[:2] for line in lines[1:6]] == [[t, "cached"] for t in PIPELINE]
    assert lines[-1].startswith("time saved by the cache: ")


def test_an_edit_reruns_that_task_and_its_stale_descendants_only(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    assert dagnb("run", str(nb), cwd=env).returncode == 0
    runs(env)
    write(nb, {**PIPELINE, "clean": task("clean", "raw", "sorted(raw, reverse=True)")})
    result = dagnb("run", str(nb), "--json", cwd=env)
    assert result.returncode == 0, result.stderr
    assert runs(env) == ["clean", "total"], "report and side keep their keys: total's output did not change"
    report = json.loads(result.stdout)
    assert {t: v["status"] for t, v in report["tasks"].items()} == {
        "raw": "cached", "clean": "done", "total": "done", "report": "cached", "side": "cached",
    }
    assert report["tasks"]["clean"]["reason"] == "code changed"
    assert report["counts"] == {"ran": 2, "cached": 3, "failed": 0, "skipped": 0, "cancelled": 0, "timed-out": 0,
                                "interrupted": 0}
    assert report["ok"] is True and report["error"] is None


def test_force_reruns_a_cached_task_once(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    assert dagnb("run", str(nb), cwd=env).returncode == 0
    runs(env)
    result = dagnb("run", str(nb), "--force", "clean", "--force", "side", cwd=env)
    assert result.returncode == 0, result.stderr
    assert runs(env) == ["clean", "side"], "same outputs: their dependents stay cached"


def test_an_unknown_forced_task_is_refused_before_running(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    result = dagnb("run", str(nb), "--force", "clen", cwd=env)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "dagnb run: --force names `clen`, but the notebook defines no such task. Did you mean `clean` for `clen`? "
        "Its tasks: raw, clean, total, report, side."
    )
    assert runs(env) == []


def test_output_writes_the_executed_notebook(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    out = env / "out.ipynb"
    assert dagnb("run", str(nb), "--output", str(out), cwd=env).returncode == 0
    executed = nbformat.read(out, as_version=4)
    lines = [o["data"]["text/plain"] for c in executed.cells for o in c.get("outputs", []) if "data" in o]
    assert "raw: ran (new)" in lines and "report: ran (new)" in lines
    assert "%load_ext dagnb" not in [c.source for c in executed.cells], "the loader cell is not written back"


FAILURES: list[tuple[str, str, tuple[str, ...], str]] = [
    ("a task raises", "task", (task("bad", "raw", "1 / 0"),), "ZeroDivisionError"),
    ("an unresolved parameter", "usage", (task("bad", "nothing_like_it", "1"),), "UnresolvedParameter"),
    ("an error only displayed", "shown",
     ("try:\n    1 / 0\nexcept ZeroDivisionError:\n    get_ipython().showtraceback()",), "errors shown in cell 8"),
]


@pytest.mark.parametrize(("kind", "extra", "expected"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_a_failure_exits_1_and_says_why(env: Path, kind: str, extra: tuple[str, ...], expected: str) -> None:
    nb = write(env / "nb.ipynb", PIPELINE, extra)
    result = dagnb("run", str(nb), "--json", cwd=env)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert expected in (report["error"] or "") + f" errors shown in cell {report['error_cells'][0] if report['error_cells'] else ''}"
    assert f"{nb}: FAILED" in dagnb("run", str(nb), cwd=env).stderr
    if kind == "task":
        assert report["tasks"]["bad"]["status"] == "failed"


def test_an_expected_error_tagged_raises_exception_is_not_a_failure(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    notebook = nbformat.read(nb, as_version=4)
    cell = new_code_cell("raise ValueError('shown on purpose')")
    cell.metadata["tags"] = ["raises-exception"]
    notebook.cells.append(cell)
    nbformat.write(notebook, nb)
    result = dagnb("run", str(nb), cwd=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_notebook_is_a_usage_error(env: Path) -> None:
    result = dagnb("run", str(env / "nope.ipynb"), cwd=env)
    assert (result.returncode, result.stderr.strip()) == (2, f"dagnb: no notebook at {env / 'nope.ipynb'}")


# -------------------------------------------------------------------- cache


def _filled(env: Path) -> Path:
    nb = write(env / "nb.ipynb", PIPELINE)
    assert dagnb("run", str(nb), cwd=env).returncode == 0
    runs(env)
    return nb


def test_cache_info_lists_keys_per_task(env: Path) -> None:
    _filled(env)
    lines = dagnb("cache", "info", cwd=env).stdout.splitlines()
    assert lines[0].startswith(f"cache at {env / 'cache'}: 5 keys, 5 values, ")
    assert lines[1].startswith("metadata: ") and lines[1].endswith(
        "with a history of 5 runs (5 task rows; the latest 5,000 runs are kept)")  # a run per task cell, of its task
    assert lines[2] == "keys per task: clean (1), raw (1), report (1), side (1), total (1)"


def test_prune_to_zero_evicts_every_value_and_the_next_run_recomputes(env: Path) -> None:
    nb = _filled(env)
    pruned = dagnb("cache", "prune", "--max-size", "0", cwd=env)
    assert pruned.returncode == 0
    assert pruned.stdout.startswith("evicted 5 values (") and pruned.stdout.strip().endswith("the cache now holds 0 B")
    assert dagnb("run", str(nb), cwd=env).returncode == 0
    assert runs(env) == ["raw", "clean", "total", "report", "side"]


def test_prune_keeps_the_most_recently_used_values(env: Path) -> None:
    nb = _filled(env)
    dagnb("run", str(nb), cwd=env)  # every value used again, `raw` first
    runs(env)
    info = dagnb("cache", "info", cwd=env).stdout
    total = int(info.splitlines()[0].split(", ")[-1].split()[0])  # "cache at DIR: 5 keys, 5 values, NN B"
    assert dagnb("cache", "prune", "--max-size", str(total - 1), cwd=env).stdout.startswith("evicted 1 values")
    assert dagnb("run", str(nb), cwd=env).returncode == 0
    assert runs(env) == ["raw"], "the least recently used value was evicted, and only it recomputed"


def test_clear_one_task(env: Path) -> None:
    nb = _filled(env)
    assert dagnb("cache", "clear", "side", cwd=env).stdout.strip() == "removed 1 cache entries of `side`"
    assert dagnb("run", str(nb), cwd=env).returncode == 0
    assert runs(env) == ["side"]


CACHE_ERRORS = [
    (("cache", "info", "--cache-dir", "{tmp}/none"), "dagnb: there is no dagnb cache at {tmp}/none"),
    (("cache", "prune"), "dagnb: cache prune needs --max-size SIZE (for example --max-size 2GB)"),
    (("cache", "prune", "--max-size", "lots"),
     "dagnb cache: `lots` is not a size; write a number with an optional unit, like 500MB, 2GB or 1.5GiB"),
]


@pytest.mark.parametrize(("args", "message"), CACHE_ERRORS, ids=["no cache", "no size", "bad size"])
def test_cache_usage_errors(env: Path, args: tuple[str, ...], message: str) -> None:
    _filled(env)
    result = dagnb(*(a.format(tmp=env) for a in args), cwd=env)
    assert (result.returncode, result.stderr.strip()) == (2, message.format(tmp=env))


def test_kernel_install_into_a_prefix(env: Path) -> None:
    result = dagnb("kernel", "install", "--prefix", str(env / "prefix"), cwd=env)
    assert result.returncode == 0, result.stderr
    where = env / "prefix" / "share" / "jupyter" / "kernels" / "dagnb"
    assert result.stdout.strip() == f'installed kernel "Python 3 (dagnb)" in {where}'
    spec: dict[str, Any] = json.loads((where / "kernel.json").read_text())
    assert "--ext=dagnb" in spec["argv"]


# ------------------------------------------------- never a raw traceback


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stdout + result.stderr, result.stderr


NOT_NOTEBOOKS = {
    "JSON, not a notebook": ('{"cells": "none", "data": [1, 2]}',
                             "it is JSON, but without the `cells` and `nbformat` of a notebook"),
    "JSON list": ("[1, 2, 3]", "it is JSON, but without the `cells` and `nbformat` of a notebook"),
    "not JSON": ("cells: []", "Expecting value: line 1 column 1 (char 0)"),
}


@pytest.mark.parametrize("case", list(NOT_NOTEBOOKS))
def test_a_file_that_is_no_notebook_is_refused_in_one_line(env: Path, case: str) -> None:
    text, detail = NOT_NOTEBOOKS[case]
    path = env / "data.ipynb"
    path.write_text(text)
    result = dagnb("run", str(path), cwd=env)
    _no_traceback(result)
    assert (result.returncode, result.stderr.strip()) == (
        2, f"dagnb run: {path} is not a Jupyter notebook ({detail}). Give `dagnb run` an .ipynb file saved by Jupyter.")
    checked = dagnb("check", str(path), cwd=env)
    assert checked.returncode == 1 and f"The file cannot be read as a notebook ({detail})." in checked.stdout


def test_a_notebook_for_another_language_is_refused(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    notebook = nbformat.read(nb, as_version=4)
    notebook.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    nbformat.write(notebook, nb)
    result = dagnb("run", str(nb), cwd=env)
    _no_traceback(result)
    assert (result.returncode, result.stderr.strip()) == (2, (
        f"dagnb run: {nb} is a notebook for R (kernel `ir`); dagnb runs Python notebooks only, whose tasks are "
        f"Python functions. Open it with a Python kernel, or run it with Jupyter."))
    assert runs(env) == []
    checked = dagnb("check", str(nb), cwd=env)
    assert checked.returncode == 1
    assert checked.stdout.splitlines()[0] == (
        f"{nb}: The notebook is written for R; dagnb checks Python notebooks only, whose tasks are Python functions.")


def test_a_cell_past_the_timeout_is_reported_with_the_tasks_before_it(env: Path) -> None:
    nb = write(env / "nb.ipynb", PIPELINE, ("import time\ntime.sleep(60)",))
    out = env / "out.ipynb"
    result = dagnb("run", str(nb), "--timeout", "3", "--output", str(out), "--json", cwd=env)
    _no_traceback(result)
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["error"] == "cell 8: did not finish within --timeout 3 s (raise --timeout, or make the cell faster)"
    assert report["counts"]["ran"] == 5, "the tasks before the slow cell are reported"
    assert runs(env) == ["raw", "clean", "total", "report", "side"]
    assert nbformat.read(out, as_version=4).cells[2].outputs, "the executed notebook is written all the same"


@pytest.mark.parametrize("where", ["a folder", "in a missing folder"])
def test_an_output_that_cannot_be_written_is_refused_before_the_run(env: Path, where: str) -> None:
    nb = write(env / "nb.ipynb", PIPELINE)
    out = env if where == "a folder" else env / "missing" / "out.ipynb"
    result = dagnb("run", str(nb), "--output", str(out), cwd=env)
    _no_traceback(result)
    expected = (f"dagnb run: --output {out} is a folder; give the file to write, for example {out / 'executed.ipynb'}"
                if where == "a folder" else f"dagnb run: --output {out}: there is no folder {out.parent} to write it in")
    assert (result.returncode, result.stderr.strip()) == (2, expected)
    assert runs(env) == [], "nothing ran: the report of a run is never thrown away after it"


def test_a_damaged_metadata_file_is_set_aside_by_info_and_verify(env: Path) -> None:
    nb = _filled(env)
    cache = env / "cache"
    (cache / "meta.sqlite").write_bytes(b"this is not a database" * 100)
    for name in ("meta.sqlite-wal", "meta.sqlite-shm"):
        (cache / name).unlink(missing_ok=True)
    info = dagnb("cache", "info", cwd=env)
    _no_traceback(info)
    assert info.returncode == 0 and info.stdout.startswith(f"cache at {cache}: 0 keys, 0 values, 0 B")
    assert info.stderr.strip() == (
        f"dagnb: The cache metadata at {cache / 'meta.sqlite'} is damaged (SQLite says: file is not a database); "
        f"dagnb starts the cache afresh and recomputes. The old files are in {cache / 'damaged'}; delete them when "
        f"you like.")
    assert (cache / "damaged" / "meta.sqlite").read_bytes().startswith(b"this is not a database"), "kept"
    assert dagnb("run", str(nb), cwd=env).returncode == 0 and runs(env) == list(PIPELINE)

    damage_a_page(cache / "meta.sqlite")
    verify = dagnb("cache", "verify", cwd=env)
    _no_traceback(verify)
    assert verify.returncode == 1
    assert verify.stdout.strip() == (
        f"the cache metadata was damaged; SQLite says: database disk image is malformed. It was set aside into "
        f"{cache / 'damaged-2'} (nothing deleted), and the cache starts afresh: its tasks recompute on the next run")
    assert dagnb("cache", "verify", cwd=env).returncode == 0


def damage_a_page(path: Path) -> None:
    """Overwrite the page that holds the entries with noise (the file header stays valid)."""
    import sqlite3

    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
    size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    data[(page - 1) * size : page * size] = b"\x5a" * size
    path.write_bytes(bytes(data))
