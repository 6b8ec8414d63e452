"""``dagnb run``: execute a notebook headlessly and report task by task.

The notebook runs in a real kernel (nbclient) with dagnb loaded. What each
task did is read back from the ``dagnb`` metadata of the notebook's outputs
(format :data:`dagnb.report.METADATA_FORMAT`, written by the magics), never guessed from
text. A run fails (exit 1) when a cell raises, when a task failed, was
skipped or cancelled, or when any cell shows an ``error`` output, including
one a magic displayed while the cell itself reported success.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dagnb.ci.notebook_file import notebook_language, read_notebook
from dagnb.errors import DagnbError, close_matches
from dagnb.report import METADATA_FORMAT  # the version of the `dagnb` output metadata this reader understands
from dagnb.status import ENDED, ENDED_BADLY, word

__all__ = [
    "METADATA_FORMAT",
    "NotANotebook",
    "NotebookReport",
    "TaskLine",
    "load_notebook",
    "read_report",
    "run_notebook",
]


@dataclass
class TaskLine:
    """What one task did over the whole notebook."""

    status: str
    duration: float | None = None
    saved: float = 0.0
    reason: str = ""


@dataclass
class NotebookReport:
    """The outcome of executing one notebook."""

    notebook: str
    tasks: dict[str, TaskLine] = field(default_factory=dict)
    error: str | None = None
    error_cells: list[int] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for t in self.tasks.values() if t.status == status)

    @property
    def time_saved(self) -> float:
        return sum(t.saved for t in self.tasks.values())

    by_condition: set[str] = field(default_factory=set)  # skipped because a `--when` was false: not a failure

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and not self.error_cells
            and not any(
                line.status in ENDED_BADLY and name not in self.by_condition for name, line in self.tasks.items()
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "ok": self.ok,
            "counts": {word(s): self.count(s) for s in ENDED},
            "time_saved": round(self.time_saved, 6),
            "tasks": {name: asdict(line) for name, line in self.tasks.items()},
            "error": self.error,
            "error_cells": self.error_cells,
            "skipped_by_condition": sorted(self.by_condition),
        }

    def render_text(self) -> str:
        head = (
            f"{self.notebook}: {len(self.tasks)} tasks, {self.count('done')} ran, {self.count('cached')} cached"
            + "".join(f", {self.count(b)} {b}" for b in ENDED_BADLY if self.count(b))
        )
        lines = [head]
        width = max((len(t) for t in self.tasks), default=0)
        for name, line in self.tasks.items():
            shown = word(line.status)
            detail = f"{line.duration:.2f} s" if line.status == "done" and line.duration is not None else ""
            if line.status == "cached" and line.saved:
                detail = f"saved {line.saved:.2f} s"
            if line.status in ENDED_BADLY and line.reason:
                detail = line.reason
            lines.append(f"  {name.ljust(width)}  {shown:<9} {detail}".rstrip())
        if self.count("cached"):
            lines.append(f"time saved by the cache: {self.time_saved:.2f} s")
        return "\n".join(lines)


def read_report(nb: Any, notebook: str) -> NotebookReport:
    """Each task's outcome, from the ``dagnb`` output metadata of an executed notebook.

    A task that ran anywhere in the notebook counts as ``done``; otherwise
    its last reported status stands.
    """
    report = NotebookReport(notebook)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("dagnb")
            if meta and meta.get("format") == METADATA_FORMAT:  # a run's report (views carry other metadata)
                _merge(report.tasks, meta)
                report.by_condition.update(meta.get("by_condition", []))
    report.error_cells = _error_cells(nb)
    return report


_RANK = {"cached": 0, "done": 1}  # anything else (a failure) outranks both


def _merge(tasks: dict[str, TaskLine], meta: dict[str, Any]) -> None:
    """Fold one output's statuses in: a failure outranks a run, a run outranks a cache hit."""
    for task, status in meta["statuses"].items():
        new = TaskLine(
            status,
            meta.get("durations", {}).get(task),
            meta.get("saved", {}).get(task, 0.0),
            meta.get("reasons", {}).get(task, ""),
        )
        old = tasks.get(task)
        if old is None or _RANK.get(status, 2) > _RANK.get(old.status, 2):
            tasks[task] = new
        if old is not None and tasks[task] is not new:
            old.saved = max(old.saved, new.saved)  # a later cell sees the value in memory: nothing saved there


def _error_cells(nb: Any) -> list[int]:
    """1-based positions of cells showing an error that no tag says to expect."""
    expected = {"raises-exception", "nbval-raises-exception"}
    return [
        i
        for i, cell in enumerate(nb.cells, 1)
        if not expected & set(cell.get("metadata", {}).get("tags", []))
        and any(out.get("output_type") == "error" for out in cell.get("outputs", []))
    ]


class NotANotebook(DagnbError):
    """A file ``dagnb run`` cannot execute: not a notebook, or one for another language."""


def load_notebook(path: Path) -> Any:
    """The notebook at ``path``, read with nbformat.

    Raises:
        NotANotebook: the file is not a Jupyter notebook (valid JSON is not
            enough), or it is written for another language's kernel.
    """
    import nbformat

    try:
        nb = nbformat.reads(json.dumps(read_notebook(path)), as_version=4)  # nbformat's upgrade to version 4
    except Exception as exc:  # JSON, schema, key and version errors alike
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NotANotebook(
            f"{path} is not a Jupyter notebook ({detail}). Give `dagnb run` an .ipynb file saved by Jupyter."
        ) from None
    language = notebook_language(nb)
    if language and language.lower() != "python":
        kernel = nb.metadata.get("kernelspec", {}).get("name")
        named = f" (kernel `{kernel}`)" if kernel else ""
        raise NotANotebook(
            f"{path} is a notebook for {language}{named}; dagnb runs Python notebooks only, whose "
            f"tasks are Python functions. Open it with a Python kernel, or run it with Jupyter."
        )
    return nb


def run_notebook(
    path: Path, output: Path | None = None, timeout: int = 1800, force: Sequence[str] = ()
) -> NotebookReport:
    """Execute ``path`` in a new kernel and report what each task did.

    The kernel's own log (stderr) goes to a temporary file, shown only when
    the kernel dies, so a report is not buried under its startup warnings.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as log:
        report = _execute(path, output, timeout, force, log)
        if report.error and "died" in report.error.lower():
            log.seek(0)
            print(log.read()[-4000:], file=sys.stderr)
    return report


def _execute(path: Path, output: Path | None, timeout: int, force: Sequence[str], log: Any) -> NotebookReport:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = load_notebook(path)
    added = not any("load_ext dagnb" in cell.source for cell in nb.cells if cell.cell_type == "code")
    if added:
        nb.cells.insert(0, nbformat.v4.new_code_cell("%load_ext dagnb"))
    env = dict(os.environ, JPY_SESSION_NAME=str(path.resolve()))  # as Jupyter Server does: the kernel's notebook
    if force:
        env["DAGNB_FORCE"] = ",".join(force)
    started_at: list[int] = []
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent.resolve())}},
        on_cell_start=lambda cell, cell_index, **_: started_at.append(cell_index + 1 - added),
    )
    error = None
    where = lambda: f"cell {started_at[-1]}: " if started_at else ""  # noqa: E731 - read after the run
    try:
        client.execute(stderr=log, env=env)
    except CellExecutionError as exc:
        error = f"{where()}{exc.ename}: {exc.evalue}"
    except CellTimeoutError:
        error = f"{where()}did not finish within --timeout {timeout} s (raise --timeout, or make the cell faster)"
    except RuntimeError as exc:  # nbclient's DeadKernelError and startup failures
        error = f"{type(exc).__name__}: {exc}"
    if added:
        del nb.cells[0]
    report = read_report(nb, str(path))
    report.error = error
    if output is not None:
        try:
            nbformat.write(nb, output)
        except OSError as exc:  # the report of the run is still printed
            report.error = (f"{error}; " if error else "") + (
                f"the executed notebook could not be written to {output} ({exc.strerror or exc})"
            )
    return report


def unknown_forced(force: Sequence[str], tasks: Sequence[str]) -> str | None:
    """The message for ``--force`` names no task of the notebook has, if any."""
    missing = [t for t in force if t not in tasks]
    if not missing:
        return None
    hints = "".join(
        f" Did you mean `{close_matches(name, tasks)[0]}` for `{name}`?"
        for name in missing
        if close_matches(name, tasks)
    )
    names = ", ".join(f"`{m}`" for m in missing)
    return f"--force names {names}, but the notebook defines no such task.{hints} Its tasks: {', '.join(tasks)}."


def print_report(report: NotebookReport, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
        return
    print(report.render_text())
    if not report.ok:
        reasons = [report.error] if report.error else []
        if report.error_cells:
            reasons.append("errors shown in cell " + ", ".join(map(str, report.error_cells)))
        print(f"{report.notebook}: FAILED" + (f" ({'; '.join(reasons)})" if reasons else ""), file=sys.stderr)
