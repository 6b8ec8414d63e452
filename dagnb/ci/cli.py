"""``dagnb`` on the command line: run, check, kernel install, cache.

* ``dagnb run NOTEBOOK`` executes a notebook headlessly in a real kernel and
  reports what each task did (:mod:`dagnb.ci.runner`).
* ``dagnb check NOTEBOOK ...`` validates notebooks without executing any of
  their code; ``--plan`` adds what a run would execute (:mod:`dagnb.ci.check`).
* ``dagnb kernel install`` installs a kernel that loads dagnb by itself.
* ``dagnb cache info|verify|prune|clear`` manages a cache directory.

Exit codes: 0 success, 1 a notebook failed or has problems (or a cache
failed its check), 2 bad usage. No command shows a traceback: a file that
is no notebook, a notebook for another language, an ``--output`` that
cannot be written, a damaged cache or an interrupt each get one message.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagnb.errors import DagnbError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dagnb", description="A Jupyter notebook as an incremental build system.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="execute a notebook headlessly, reusing cached task results")
    run.add_argument("notebook", type=Path)
    run.add_argument("--cache-dir", help="cache directory (default: $DAGNB_CACHE_DIR, else .dagnb beside the notebook)")
    run.add_argument("--output", type=Path, help="write the executed notebook here")
    run.add_argument(
        "--force", action="append", default=[], metavar="TASK", help="rerun TASK even if cached (repeatable)"
    )
    run.add_argument("--timeout", type=int, default=1800, help="seconds a cell may take (default 1800)")
    run.add_argument(
        "--backend", metavar="B", help="where tasks run: inline (default), threads, processes, dask, dask://HOST:PORT"
    )
    run.add_argument("--jobs", type=int, metavar="N", help="tasks to run at once (default 1)")
    run.add_argument("--json", action="store_true", help="print the report as JSON")

    check = sub.add_parser("check", help="validate notebooks without executing them")
    check.add_argument("notebooks", type=Path, nargs="+", metavar="NOTEBOOK")
    check.add_argument("--plan", action="store_true", help="also list what a run would execute and what is cached")
    check.add_argument(
        "--cache-dir",
        help="the cache --plan compares with (default: $DAGNB_CACHE_DIR, else .dagnb beside each notebook)",
    )

    kernel = sub.add_parser("kernel", help="install a Jupyter kernel that loads dagnb by itself")
    kernel_sub = kernel.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = kernel_sub.add_parser("install", help='install the kernel "Python 3 (dagnb)"')
    where = install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user (the default)")
    where.add_argument("--sys-prefix", action="store_true", help="into this Python environment")
    where.add_argument("--prefix", metavar="DIR", help="under DIR/share/jupyter/kernels")

    cache = sub.add_parser("cache", help="inspect, bound or clear a cache directory")
    cache.add_argument("action", choices=["info", "verify", "prune", "clear"])
    cache.add_argument("task", nargs="?", metavar="TASK", help="with clear: only this task's entries")
    cache.add_argument("--cache-dir", help="the cache (default: $DAGNB_CACHE_DIR, else ./.dagnb)")
    cache.add_argument("--max-size", metavar="SIZE", help="with prune: the size to bring the cache under (500MB, 2GB)")
    return parser


def _cache_dir(given: str | None, beside: Path | None = None) -> str:
    if given:
        return str(Path(given).resolve())
    if os.environ.get("DAGNB_CACHE_DIR"):
        return os.environ["DAGNB_CACHE_DIR"]
    return str((beside or Path.cwd()) / ".dagnb")


def _cmd_run(args: argparse.Namespace) -> int:
    from dagnb.ci.check import check_source
    from dagnb.ci.notebook_file import notebook_cells
    from dagnb.ci.runner import load_notebook, print_report, run_notebook, unknown_forced

    if not args.notebook.is_file():
        print(f"dagnb: no notebook at {args.notebook}", file=sys.stderr)
        return 2
    problem = _output_problem(args.output)
    if problem:
        print(f"dagnb run: {problem}", file=sys.stderr)
        return 2
    nb = load_notebook(
        args.notebook
    )  # refuses what is no notebook, or one for another language, before a kernel starts
    tasks = list(check_source(notebook_cells(nb), str(args.notebook)).tasks) if args.force else []
    problem = unknown_forced(args.force, tasks) if args.force else None
    if problem:
        print(f"dagnb run: {problem}", file=sys.stderr)
        return 2
    if args.cache_dir:
        os.environ["DAGNB_CACHE_DIR"] = str(Path(args.cache_dir).resolve())
    if args.backend:
        os.environ["DAGNB_BACKEND"] = args.backend
    if args.jobs:
        os.environ["DAGNB_JOBS"] = str(args.jobs)
    report = run_notebook(args.notebook, args.output, args.timeout, args.force)
    print_report(report, args.json)
    return 0 if report.ok else 1


def _output_problem(output: Path | None) -> str | None:
    """Why ``--output`` cannot be written (checked before the run, so its report is never lost)."""
    if output is None:
        return None
    if output.is_dir():
        return f"--output {output} is a folder; give the file to write, for example {output / 'executed.ipynb'}"
    if not output.parent.is_dir():
        return f"--output {output}: there is no folder {output.parent} to write it in"
    return None


def _cmd_check(args: argparse.Namespace) -> int:
    from dagnb.ci.check import check_notebook
    from dagnb.ci.static_plan import plan_notebook

    status = 0
    for path in args.notebooks:
        if not path.is_file():
            print(f"dagnb: no notebook at {path}", file=sys.stderr)
            status = 2
            continue
        result = check_notebook(path)
        print(result.render_text())
        if not result.ok:
            status = max(status, 1)
        elif args.plan:
            print(plan_notebook(result, _cache_dir(args.cache_dir, path.parent.resolve())).render_text())
    return status


def _cmd_kernel(args: argparse.Namespace) -> int:
    from dagnb.notebook.kernelspec import DISPLAY_NAME, install

    where = install(user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix)
    print(f'installed kernel "{DISPLAY_NAME}" in {where}')
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from dagnb.cache.disk import DiskStore

    directory = _cache_dir(args.cache_dir)
    if not (Path(directory) / "meta.sqlite").is_file():
        print(f"dagnb: there is no dagnb cache at {directory}", file=sys.stderr)
        return 2
    if args.action == "prune" and not args.max_size:
        print("dagnb: cache prune needs --max-size SIZE (for example --max-size 2GB)", file=sys.stderr)
        return 2
    store = DiskStore(directory)
    try:
        return _cache_action(store, args)
    except sqlite3.DatabaseError as exc:
        print(
            f"dagnb cache {args.action}: the cache metadata at {Path(directory) / 'meta.sqlite'} is damaged "
            f"(SQLite says: {exc}). Run `dagnb cache verify` to set it aside (nothing is deleted) and start the "
            f"cache afresh, or move the cache folder away.",
            file=sys.stderr,
        )
        return 1
    finally:
        store.close()


def _cache_action(store: Any, args: argparse.Namespace) -> int:
    from dagnb.cache.base import parse_size

    if args.action == "info":
        print(store.info())
    elif args.action == "verify":
        result = store.verify()
        print(result)
        return 0 if result.ok else 1
    elif args.action == "prune":
        print(store.prune(parse_size(args.max_size)))
    else:
        gone = store.clear(args.task)
        print(f"removed {gone} cache entries" + (f" of `{args.task}`" if args.task else ""))
    return 0


def _show_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    """A warning on the command line is one line of text (dagnb's are whole sentences), not a source location."""
    print(f"dagnb: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return int(globals()[f"_cmd_{args.command}"](args))
    except (DagnbError, ValueError) as exc:
        print(f"dagnb {args.command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file the command needed: said in one line, never a traceback
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"dagnb {args.command}: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dagnb {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
