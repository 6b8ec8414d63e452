"""IPython glue: ``%%task`` and ``%dag``. No logic lives here.

Each handler parses its arguments, calls the core, binds values into the
user namespace and displays the result. A :class:`DagnbError` is shown as
one paragraph (``UnresolvedParameter: Task `model` has ...``), no traceback,
but as a real error output, so nbclient, ``jupyter execute`` and nbval
(``--nbval-lax`` included) fail the cell; IPython's ``UsageError`` would
only print to stderr. A task that raises becomes ``TaskFailed``, shown as
the user's own traceback with dagnb's frames removed.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import contextlib
import inspect
import os
import re
import shlex
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from html import escape
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.display import publish_display_data

from dagnb import session
from dagnb.cache.store import open_store
from dagnb.errors import CommandError, DagnbError, RunInterrupted, TaskFailed
from dagnb.graph import parse_task_cell, spec_from_function
from dagnb.notebook.follow import Follower
from dagnb.notebook.kernel_notebook import KernelNotebook
from dagnb.options import TaskLine, parse_task_line, task_line_parser
from dagnb.plan import MAY_RUN
from dagnb.report import RunReport, cell_line, output_kind, run_metadata
from dagnb.run.aio import complete_now
from dagnb.run.capture import OutputLog, capture_streams, current_log, replay_streams
from dagnb.status import WAITING

__all__ = ["DagMagics", "awaiting", "load", "unload"]

# dagnb's own frames are trimmed from a task's traceback: any file under the package folder.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cell_error(exc: DagnbError) -> DagnbError:
    """``exc``, shown by IPython as its one-paragraph message instead of a traceback."""
    line = f"{type(exc).__name__}: {exc}"
    exc._render_traceback_ = lambda: [line]  # type: ignore[attr-defined]
    return exc


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`CommandError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _cell_error(CommandError(f"{self.prog}: {message}. `{self.prog} --help` lists the options."))

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise _cell_error(CommandError(message or f"{self.prog}: invalid arguments"))


def _dag_parser() -> _Parser:
    parser = _Parser(prog="%dag", add_help=False, description="Inspect and run the task graph.")
    parser.add_argument("-h", "--help", action="store_true", help="show this help")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")
    commands = {
        "show": "the live view: graph, plan, costs and trace (default)",
        "run": "bring targets (default: all) up to date, running only stale tasks",
        "plan": "dry run: what would run, what is cached, and why",
        "why": "which part of a task's key changed",
        "drop": "remove a task and its value",
        "cache": "inspect or clear the disk cache, or move it",
        "mode": "lazy (list stale downstream tasks) or auto (rerun them at once)",
        "config": "settings: --check-mutation fails tasks that change their inputs in place; --no-verify-inputs; "
        "--no-follow",
        "history": "recent runs of this cache; --diff A B: which tasks changed between two runs",
        "trace": "the runs since the kernel started on one timeline (--run N: one run's Gantt chart)",
        "costs": "per-task time, CPU, memory, bytes, cache hits and time saved",
    }
    subs = {name: sub.add_parser(name, help=text, description=text, add_help=False) for name, text in commands.items()}
    for p in subs.values():
        p.add_argument("-h", "--help", action="store_true", help="show this help")
    for name in ("run", "plan"):
        subs[name].add_argument("targets", nargs="*", metavar="TASK")
        subs[name].add_argument(
            "--force", action="append", default=[], metavar="TASK", help="rerun TASK even if cached"
        )
    subs["run"].add_argument(
        "--keep-going", action="store_true", help="run every branch that does not depend on a failure"
    )
    subs["run"].add_argument("--jobs", type=int, default=None, metavar="N", help="tasks to run at once")
    subs["run"].add_argument(
        "--backend", default=None, metavar="B", help="inline (default), threads, processes, dask, or dask://HOST:PORT"
    )
    subs["show"].add_argument("--static", action="store_true", help="render HTML only, no widget")
    subs["trace"].add_argument(
        "--run", type=int, default=None, metavar="N", help="show run N alone (the view's menu lists the runs)"
    )
    subs["run"].add_argument("--as-of", type=int, metavar="RUN", help="restore the values run RUN had, from the cache")
    subs["history"].add_argument("limit", nargs="?", type=int, default=10, metavar="N", help="how many runs (10)")
    subs["history"].add_argument("--diff", nargs=2, type=int, metavar=("A", "B"), help="compare run A with run B")
    subs["why"].add_argument("task", metavar="TASK")
    subs["drop"].add_argument("task", metavar="TASK")
    subs["cache"].add_argument("action", nargs="?", default="info", choices=["info", "verify", "clear", "prune"])
    subs["cache"].add_argument("task", nargs="?", metavar="TASK", help="with clear: only this task's entries")
    subs["cache"].add_argument("--dir", metavar="PATH", help="use the cache at PATH from now on")
    subs["cache"].add_argument(
        "--max-size", metavar="SIZE", help="with prune: the size to bring the cache under (500MB, 2GB)"
    )
    subs["mode"].add_argument("mode", nargs="?", choices=["lazy", "auto"])
    subs["config"].add_argument(
        "--check-mutation",
        dest="check_mutation",
        action="store_true",
        default=None,
        help="after each task, check that it left its inputs unchanged (slower)",
    )
    subs["config"].add_argument(
        "--no-check-mutation", dest="check_mutation", action="store_false", help="stop checking"
    )
    subs["config"].add_argument(
        "--verify-inputs",
        dest="verify_inputs",
        action="store_true",
        default=None,
        help="before a task reads a value, check it was not changed in place (the default)",
    )
    subs["config"].add_argument(
        "--no-verify-inputs",
        dest="verify_inputs",
        action="store_false",
        help="trust values not to change in place (for very large object graphs)",
    )
    subs["config"].add_argument(
        "--follow",
        dest="follow",
        action="store_true",
        default=None,
        help="after each cell, re-plan once and update status lines and views (the default)",
    )
    subs["config"].add_argument(
        "--no-follow",
        dest="follow",
        action="store_false",
        help="update them only when tasks run (for notebook variables too large to fingerprint after every cell)",
    )
    parser.subcommands = subs  # type: ignore[attr-defined]
    return parser


@contextlib.contextmanager
def _usage_errors() -> Iterator[None]:
    try:
        yield
    except DagnbError as exc:
        if isinstance(exc, TaskFailed) or hasattr(exc, "_render_traceback_"):
            raise
        raise _cell_error(exc).with_traceback(None) from None


@magics_class
class DagMagics(Magics):
    """``%%task`` and ``%dag``: parse, call the core, bind, display."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.graph = session.current(namespace=shell.user_ns)
        self.graph.namespace = shell.user_ns
        self.graph.capture = self._capture
        self.graph.replay = _replay
        self.cell_id: str | None = None
        self.follower = Follower(self.graph, shell)
        self.notebook = KernelNotebook(self.graph, shell)  # whose heads and history: this notebook's
        self._dag_parser = _dag_parser()

    def pre_run_cell(self, info: Any) -> None:
        self.notebook.settle()
        self.cell_id = getattr(info, "cell_id", None)
        source = getattr(info, "raw_cell", "") or ""
        first = next((line.strip() for line in source.splitlines() if line.strip()), "")
        self.graph.origin = self._cell_label(first[:60])
        self.follower.before_cell(source)

    def _cell_label(self, what: str) -> str:
        """``[7] %dag run``: the cell that runs now, by its execution count, as the trace names its runs."""
        return f"[{getattr(self.shell, 'execution_count', '?')}] {what}".rstrip()

    # ------------------------------------------------------------- %%task

    @no_var_expand  # `--save "out/{name}.csv"`: `{name}` is the task, never a notebook variable `name`
    @cell_magic
    def task(self, line: str, cell: str) -> None:
        """Define a task from the one function in this cell and bring it up to date."""
        with _usage_errors():
            args = parse_task_line(line)
        if args.help:
            print(task_line_parser().format_help())
            return
        with _usage_errors(), _task_failures(self.shell):
            name, notes = self._define(cell, args)
            if args.no_run:
                status, why = self._status_now(name)
                stale = name if status in WAITING else "none"
                text = f"{name}: defined (not run){notes} · stale: {stale}"
                self.follower.show_line(name, status, text, {"dagnb": {"task": name}}, why)
                return None
        return self._running(lambda run: self._bring_up_to_date(name, notes, run), own=name)

    def _define(self, cell: str, args: TaskLine) -> tuple[str, str]:
        node = parse_task_cell(cell, line_offset=1)  # the `%%task` line is line 1 of the cell
        name, cell_id = node.name, self.cell_id
        self.follower.forget(name)  # this cell shows its line anew
        self.graph.origin = self._cell_label(f"%%task {name}")
        func = self._compile(cell, node)
        spec = spec_from_function(func, source=cell, cell_id=cell_id, options=args.options)
        renamed = self.graph.define(spec)  # the last good definition stays if this one does not check
        self.graph.say_untracked(name, node, line_offset=1)  # the `%%task` line is line 1 of the cell
        if renamed is None:
            return name, ""
        self.follower.forget(renamed)
        return name, f" · replaces `{renamed}`"

    def _compile(self, cell: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> Any:
        # IPython's compiler registers the source so tracebacks can show it.
        filename = self.shell.compile.cache(cell, self.shell.execution_count)
        code = compile(cell, filename, "exec")
        scratch: dict[str, Any] = {}
        exec(code, self.shell.user_ns, scratch)
        for key, value in scratch.items():  # imports in the cell become notebook globals
            if key != node.name:
                self.shell.user_ns[key] = value
        return scratch[node.name]

    async def _bring_up_to_date(self, name: str, notes: str, run: _Run) -> None:
        """Run the cell's task (and, in auto mode, its downstream tasks); show one line."""
        report = await run([name], skip_fresh=True)  # upstream values known up to date are not asked again
        downstream = self.graph.tasks.downstream(name)
        if self.graph.mode == "auto" and downstream:
            report = report.merge(await run(downstream, skip_fresh=True))
        stale = self.graph.stale(downstream)
        report.stale = stale
        self._replay_loaded(report, but=name)
        result = self.graph.results.get(name)  # none when skipped by its condition
        if report.statuses[name] == "cached" and result is not None:
            _replay(result.outputs)
        text = cell_line(report, name, downstream, notes)
        self.follower.show_line(name, report.statuses[name], text, run_metadata(report, name))

    def _replay_loaded(self, report: RunReport, but: str | None = None) -> None:
        """What the tasks this run loaded from the disk cache printed when they ran, shown again here.

        A cold cache runs them in this cell, where they print: a warm one shows
        the same, so a saved notebook reads the same whatever the cache held
        (values already in memory stay quiet either way).
        """
        for task in report.loaded:
            result = self.graph.results.get(task)
            if task != but and result is not None:
                _replay(result.outputs)

    def _status_now(self, name: str) -> tuple[str, str]:
        """The status task ``name`` shows now (``pending``, ``stale``, ``done`` ...) and why it would run."""
        plan = self.graph.plan([name], skip_fresh=True)
        decision = plan[name]
        status = plan.statuses(self.graph.statuses, self.graph.ran_before, only=name)[name]
        return status, decision.reason if decision.action in MAY_RUN else ""

    def _running(
        self, body: Callable[[_Run], Awaitable[Any]], own: str | None = None, resume: str = "Run this cell again"
    ) -> Any:
        """``body(run)``: at once, or as a coroutine when the cell awaits it (see :func:`awaiting`).

        ``resume`` is what an interrupted run's summary tells the user to do.
        """
        if _awaited.get():
            return self._guarded(body, self.graph.arun, own, resume)
        return complete_now(self._guarded(body, self._run_now, own, resume))

    async def _guarded(self, body: Callable[[_Run], Awaitable[Any]], run: _Run, own: str | None, resume: str) -> Any:
        try:
            with _usage_errors(), _task_failures(self.shell), self._progress(own):
                return await body(run)
        except RunInterrupted as stop:  # Ctrl-C: one paragraph (what is kept, what is not), no traceback
            stop.resume = resume
            raise stop.with_traceback(None) from None
        except asyncio.CancelledError:  # Ctrl-C in an awaited cell: `awaiting` says the same paragraph
            _interrupted.set(resume)
            raise

    async def _run_now(self, *args: Any, **kwargs: Any) -> RunReport:
        return self.graph.run(*args, **kwargs)

    @contextlib.contextmanager
    def _capture(self) -> Iterator[OutputLog]:
        """Tee streams and displays into a log; turn new matplotlib figures into displays."""
        figures = _figure_numbers()
        with capture_streams() as log, _recording_displays(self.shell.display_pub):
            yield log
            _show_new_figures(figures)

    # --------------------------------------------------------------- %dag

    @line_magic
    def dag(self, line: str) -> Any:
        """Run, plan and explain the task graph; ``%dag --help`` lists the commands."""
        args = self._dag_parser.parse_args(shlex.split(line))
        command = args.command or "show"
        if args.help:
            parser = self._dag_parser.subcommands[command] if args.command else self._dag_parser  # type: ignore[attr-defined]
            print(parser.format_help())
            return None
        with _usage_errors(), _task_failures(self.shell):
            return getattr(self, f"_cmd_{command}")(args)

    def _cmd_show(self, args: argparse.Namespace) -> Any:
        if getattr(args, "static", False):  # bare `%dag` has no subcommand options
            from dagnb.widgets.static import StaticView

            return StaticView(self.graph.overview())
        from dagnb.widgets.views import DagView

        return DagView(self.graph, live=self._live())

    def _cmd_trace(self, args: argparse.Namespace) -> Any:
        from dagnb.widgets.views import TraceView

        if args.run is not None and self.graph.timeline.run(args.run) is None:
            raise CommandError(_no_such_run(args.run, self.graph.timeline))
        return TraceView(self.graph, live=self._live(), run=args.run)

    def _cmd_costs(self, args: argparse.Namespace) -> Any:
        from dagnb.widgets.views import CostsView

        return CostsView(self.graph, live=self._live())

    def _live(self) -> bool:
        """Widgets need a kernel (a frontend at the other end of comms)."""
        return getattr(self.shell, "kernel", None) is not None

    @contextlib.contextmanager
    def _progress(self, own: str | None = None) -> Iterator[None]:
        if not self._live():
            yield
            return
        from dagnb.widgets.views import RunProgress

        progress = RunProgress(self.graph, own)
        try:
            yield
        finally:
            progress.close()

    def _cmd_history(self, args: argparse.Namespace) -> Any:
        return _kind(self.graph.diff(*args.diff) if args.diff else self.graph.history(args.limit), "history")

    def _cmd_run(self, args: argparse.Namespace) -> RunReport | None:
        if args.as_of is not None:
            restored = self.graph.restore(args.as_of)
            width = max((len(t) for t in restored), default=0)
            lines = "\n".join(f"  {t.ljust(width)}  {w}" for t, w in restored.items())
            _show_text(f"values of run {args.as_of}:\n{lines}", "history")
            return None
        options = {"force": args.force, "keep_going": args.keep_going, "backend": args.backend, "jobs": args.jobs}

        async def body(run: _Run) -> _WithMetadata:
            report = await run(args.targets or None, **options)
            self._replay_loaded(report)
            return _WithMetadata(report, run_metadata(report, None))

        command = " ".join(["%dag run", *args.targets, *(f"--force {t}" for t in args.force)])
        return self._running(body, resume=f"Run `{command}` again")  # type: ignore[no-any-return]

    def _cmd_plan(self, args: argparse.Namespace) -> Any:
        return _kind(self.graph.plan(args.targets or None, force=args.force), "plan")

    def _cmd_why(self, args: argparse.Namespace) -> Any:
        return _kind(self.graph.why(args.task), "why")

    def _cmd_drop(self, args: argparse.Namespace) -> None:
        self.graph.drop(args.task)
        self.follower.forget(args.task)
        print(f"dropped task `{args.task}`; its cache entries are kept (`%dag cache clear {args.task}` removes them)")

    def _cmd_cache(self, args: argparse.Namespace) -> None:
        if args.dir:
            self.graph.store.close()
            self.graph.store = open_store(args.dir, self.graph.scope)
            print(f"cache directory: {self.graph.store.location}")
        if args.action == "clear":
            if args.task:
                self.graph.tasks.get(args.task)
            gone = self.graph.store.clear(args.task)
            _show_text(f"removed {gone} cache entries" + (f" of `{args.task}`" if args.task else ""), "cache")
        elif args.action == "prune":
            _show_text(str(self.graph.prune(_size(args.max_size))), "cache")
        elif args.action == "verify":
            _show_text(str(self.graph.store.verify()), "cache")
        elif not args.dir:
            _show_text(str(self.graph.store.info()), "cache")

    def _cmd_config(self, args: argparse.Namespace) -> None:
        owners = {"check_mutation": self.graph, "verify_inputs": self.graph, "follow": self.follower}
        given = [name for name in owners if getattr(args, name) is not None]
        for name in given:
            setattr(owners[name], "enabled" if name == "follow" else name, getattr(args, name))
        for name in given or owners:
            on = getattr(owners[name], "enabled" if name == "follow" else name)
            print(f"{name.replace('_', ' ')}: {'on' if on else 'off'}")

    def _cmd_mode(self, args: argparse.Namespace) -> None:
        if args.mode:
            self.graph.mode = args.mode
        print(f"mode: {self.graph.mode}")


def _no_such_run(run: int, timeline: Any) -> str:
    kept = [t.run_id for t in timeline.runs]
    known = f"runs {kept[0]} to {kept[-1]}" if len(kept) > 1 else (f"run {kept[0]}" if kept else "no run yet")
    return (
        f"There is no run {run} in this session's trace: it has {known} (since the kernel started). "
        f"`%dag trace` shows them all."
    )


def _size(text: str | None) -> int:
    from dagnb.cache.base import parse_size

    if not text:
        raise CommandError("`%dag cache prune` needs `--max-size SIZE`, for example `--max-size 2GB`.")
    try:
        return parse_size(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class _WithMetadata:
    """A result of ``%dag`` (a report, a plan, an explanation ...), displayed with dagnb's output metadata.

    The metadata says which kind of output it is (``dagnb.output``): what
    ``dagnb run`` reads, and how dagnb's pytest plugin has nbval compare an
    output whose text depends on the cache. Attributes are the result's.
    """

    def __init__(self, shown: Any, metadata: dict[str, Any]) -> None:
        self.shown, self.metadata = shown, metadata

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.shown, attr)

    def __repr__(self) -> str:
        return repr(self.shown)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> tuple[dict[str, str], dict[str, Any]]:
        return self.shown._repr_mimebundle_(), self.metadata


def _kind(shown: Any, output: str) -> _WithMetadata:
    return _WithMetadata(shown, output_kind(output))


def _show_text(text: str, output: str) -> None:
    """Text that depends on the cache (its size, its history), shown as an output dagnb's nbval plugin knows."""
    publish_display_data({"text/plain": text}, metadata=output_kind(output))


def _show_report(report: RunReport) -> None:
    """A failed run's report, shown before its error (``dagnb run`` reads its metadata)."""
    text = report.render_text()
    data = {"text/plain": text, "text/html": f"<code class='dagnb-report'>{escape(text)}</code>"}
    publish_display_data(data, metadata=run_metadata(report, None))


def _replay(outputs: list[dict[str, Any]]) -> None:
    replay_streams(outputs, lambda out: publish_display_data(out["data"], metadata=out.get("metadata") or {}))


_recording: dict[int, list[Any]] = {}
_recording_lock = threading.Lock()


@contextlib.contextmanager
def _recording_displays(pub: Any) -> Iterator[None]:
    """While any task runs, copy what ``pub`` publishes into the running task's log."""
    with _recording_lock:
        if id(pub) not in _recording:
            original = pub.publish

            def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
                log = current_log()
                if log is not None and not kwargs.get("update"):
                    log.display(data, metadata)
                return original(data, metadata, *args, **kwargs)

            pub.publish = publish
            _recording[id(pub)] = [0]
        _recording[id(pub)][0] += 1
    try:
        yield
    finally:
        with _recording_lock:
            _recording[id(pub)][0] -= 1
            if _recording[id(pub)][0] == 0:
                del _recording[id(pub)]
                del pub.publish


def _figure_numbers() -> set[int]:
    plt = sys.modules.get("matplotlib.pyplot")
    return set(plt.get_fignums()) if plt is not None else set()


def _show_new_figures(before: set[int]) -> None:
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    from IPython.display import display

    for number in sorted(set(plt.get_fignums()) - before):
        figure = plt.figure(number)
        display(figure)
        plt.close(figure)


@contextlib.contextmanager
def _task_failures(shell: Any) -> Iterator[None]:
    """Show what the run did (so ``dagnb run`` can read it), then the failing task's own
    traceback with dagnb's frames removed, as ``TaskFailed``."""
    try:
        yield
    except TaskFailed as failure:
        if hasattr(failure, "_render_traceback_"):  # shown by an inner guard (`%dag run` has two)
            raise
        report = getattr(failure, "report", None)
        if report is not None:
            _show_report(report)
        error = failure.error
        remote = getattr(error, "remote_traceback", None)  # raised in a worker process
        if remote is not None:
            lines = [remote.rstrip(), f"TaskFailed: {failure}"]
        else:
            tb = _user_frames(error.__traceback__)
            lines = [
                *shell.InteractiveTB.structured_traceback(type(error), error, tb, tb_offset=0),
                f"TaskFailed: {failure}",
            ]
        failure._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
        raise failure.with_traceback(None) from None


def _user_frames(tb: Any) -> Any:
    while tb is not None and _is_dagnb_file(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


def _is_dagnb_file(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep)


def _after_cell(*_: Any) -> None:
    """After each cell: status lines and views show the plan of this moment (see :mod:`dagnb.notebook.follow`)."""
    if _magics is not None:
        _magics.notebook.settle()  # the cell of `%load_ext dagnb` says the fallback, if it applies
        _magics.follower.after_cell()


_Run = Callable[..., Awaitable[RunReport]]  # Graph.arun, or Graph.run made awaitable
_awaited: ContextVar[bool] = ContextVar("dagnb_awaited", default=False)
_interrupted: ContextVar[str | None] = ContextVar("dagnb_interrupted", default=None)  # how to resume a cancelled run


async def awaiting(call: Callable[[], Any]) -> Any:
    """What a rewritten cell awaits: the magic ``call``, whose run is then awaited on the kernel's loop.

    Ctrl-C (which ipykernel turns into cancelling the cell) stops the run as
    it does a blocking one: RunInterrupted (a KeyboardInterrupt) with its one-paragraph summary, every
    finished result kept.
    """
    token = _awaited.set(True)
    try:
        result = call()
    finally:
        _awaited.reset(token)
    if not inspect.isawaitable(result):
        return result
    resumed = _interrupted.set(None)
    try:
        return await result
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and hasattr(task, "uncancel"):  # Python 3.11+: the cancel is handled here
            task.uncancel()
        report = _magics.graph.last_run if _magics is not None else None
        raise RunInterrupted(report, _interrupted.get() or "Run this cell again") from None
    finally:
        _interrupted.reset(resumed)


_RUNS = re.compile(r"get_ipython\(\)\.run_(line_magic\('dag', 'run\b|cell_magic\('task', )")
_ASYNC_TASK = re.compile(r"\basync def\b")


def await_runs(lines: list[str]) -> list[str]:
    """An IPython input transformer: cells that run tasks await them when any task is async.

    ``%dag run`` and ``%%task`` (as top-level lines of the transformed cell)
    become ``await awaiting(lambda: <the magic call>)``: IPython then runs the
    cell on its event loop (the kernel's), and async tasks run there, next to
    each other. Only with ``%autoawait`` on asyncio; otherwise nothing changes
    and async tasks run on dagnb's own loop thread.
    """
    runs = [i for i, line in enumerate(lines) if _RUNS.match(line)]
    if not runs or _magics is None or not _awaits_on_asyncio(_magics.shell):
        return lines
    graph = _magics.graph
    if not graph.tasks.any_async() and not any(_ASYNC_TASK.search(lines[i]) for i in runs):
        return lines
    lines = list(lines)
    for i in runs:
        call = lines[i].rstrip("\n")
        lines[i] = f"await __import__('dagnb.notebook.magics', fromlist=['awaiting']).awaiting(lambda: {call})\n"
    return lines


def _awaits_on_asyncio(shell: Any) -> bool:
    from IPython.core.async_helpers import _asyncio_runner

    return bool(getattr(shell, "autoawait", False)) and getattr(shell, "loop_runner", None) is _asyncio_runner


_HELP_ALONE = re.compile(r"%%task\b[^\n]*?(?<!\S)(-h|--help)(?!\S)")


def help_alone(lines: list[str]) -> list[str]:
    """An IPython input transformer: ``%%task --help`` alone in a cell shows the help.

    IPython refuses a cell magic with an empty body before calling it ("cell
    body is empty"), while every option error says to run ``%%task --help``;
    a blank body line lets the call through.
    """
    if len(lines) == 1 and _HELP_ALONE.match(lines[0]):
        return [lines[0].rstrip("\n") + "\n", "\n"]
    return lines


_magics: DagMagics | None = None


def load(ipython: Any) -> None:
    """Register the magics on ``ipython`` (idempotent)."""
    global _magics
    if _magics is not None and _magics.shell is ipython:
        return
    _magics = DagMagics(ipython)
    ipython.register_magics(_magics)
    ipython.events.register("pre_run_cell", _magics.pre_run_cell)
    ipython.events.register("post_run_cell", _after_cell)
    if await_runs not in ipython.input_transformers_post:
        ipython.input_transformers_post.append(await_runs)
    if help_alone not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(help_alone)


def unload(ipython: Any) -> None:
    """Unregister the magics; the session's graph and values stay."""
    global _magics
    if _magics is None:
        return
    ipython.events.unregister("pre_run_cell", _magics.pre_run_cell)
    ipython.events.unregister("post_run_cell", _after_cell)
    if await_runs in ipython.input_transformers_post:
        ipython.input_transformers_post.remove(await_runs)
    if help_alone in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(help_alone)
    ipython.magics_manager.magics["cell"].pop("task", None)
    ipython.magics_manager.magics["line"].pop("dag", None)
    _magics = None
