"""``dagnb`` on the command line.

``dagnb run NOTEBOOK`` executes a notebook headlessly in a real kernel
(nbclient) with dagnb loaded, and prints which tasks ran and which came from
the cache. It exits 1 when a cell or a task fails, including an error a magic
only displayed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "run_notebook", "task_statuses"]


def task_statuses(nb: Any) -> tuple[dict[str, str], dict[str, float]]:
    """Each task's status in an executed notebook, read from dagnb's output metadata.

    A task that ran anywhere in the notebook counts as ``done``; otherwise its
    last reported status stands.
    """
    statuses: dict[str, str] = {}
    durations: dict[str, float] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("dagnb")
            if not meta:
                continue
            for task, status in meta.get("statuses", {}).items():
                if statuses.get(task) != "done":
                    statuses[task] = status
                if status == "done":
                    durations[task] = meta.get("durations", {}).get(task, 0.0)
    return statuses, durations


def _silent_errors(nb: Any) -> list[int]:
    return [
        i for i, cell in enumerate(nb.cells)
        if any(out.get("output_type") == "error" for out in cell.get("outputs", []))
    ]


def run_notebook(path: Path, output: Path | None = None, timeout: int = 1800) -> int:
    """Execute ``path``; print the per-task report; return the exit code."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    added = not any("load_ext dagnb" in cell.source for cell in nb.cells if cell.cell_type == "code")
    if added:
        nb.cells.insert(0, nbformat.v4.new_code_cell("%load_ext dagnb"))
    client = NotebookClient(nb, kernel_name="python3", timeout=timeout,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    failure = None
    try:
        client.execute()
    except CellExecutionError as exc:
        failure = str(exc).strip().splitlines()[-1]
    if added:
        del nb.cells[0]
    if output is not None:
        nbformat.write(nb, output)
    statuses, durations = task_statuses(nb)
    _print_report(path, statuses, durations)
    bad = [t for t, s in statuses.items() if s in ("failed", "skipped", "cancelled")]
    if failure or bad or _silent_errors(nb):
        print(f"{path}: FAILED" + (f" — {failure}" if failure else ""), file=sys.stderr)
        return 1
    return 0


def _print_report(path: Path, statuses: dict[str, str], durations: dict[str, float]) -> None:
    ran = [t for t, s in statuses.items() if s == "done"]
    cached = [t for t, s in statuses.items() if s == "cached"]
    print(f"{path}: {len(statuses)} tasks, {len(ran)} ran, {len(cached)} cached")
    width = max((len(t) for t in statuses), default=0)
    for task, status in statuses.items():
        word = {"done": "ran", "cached": "cached"}.get(status, status)
        timing = f"  {durations[task]:.2f} s" if task in durations else ""
        print(f"  {task.ljust(width)}  {word}{timing}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dagnb", description="A Jupyter notebook as an incremental build system.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="execute a notebook headlessly, reusing cached task results")
    run.add_argument("notebook", type=Path)
    run.add_argument("--cache-dir", help="cache directory (default: $DAGNB_CACHE_DIR or .dagnb beside the notebook)")
    run.add_argument("--output", type=Path, help="write the executed notebook here")
    run.add_argument("--timeout", type=int, default=1800, help="seconds a cell may take (default 1800)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.notebook.is_file():
        print(f"dagnb: no notebook at {args.notebook}", file=sys.stderr)
        return 2
    if args.cache_dir:
        os.environ["DAGNB_CACHE_DIR"] = str(Path(args.cache_dir).resolve())
    return run_notebook(args.notebook, args.output, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
