"""IPython glue: ``%dag run``, ``%dag plan``, ``%dag why`` and ``%dag drop``.

What would run and why is the engine's (``Graph.plan``, ``Graph.why``); a
run's report and plan are shown with dagnb's output metadata
(:mod:`.outputs`). ``%dag run --as-of`` restores instead of running
(:mod:`.dag_history`).
"""

from __future__ import annotations

import argparse
from typing import Any

from dagnb.notebook.dag_history import HistoryCommands
from dagnb.notebook.outputs import WithMetadata, kind
from dagnb.notebook.running import Run
from dagnb.report import RunReport, run_metadata

__all__ = ["RunCommands"]


class RunCommands(HistoryCommands):
    """Run, plan, explain and drop tasks (``--as-of``: restore, as history does)."""

    def _cmd_run(self, args: argparse.Namespace) -> RunReport | None:
        if args.as_of is not None:
            self._restore(args.as_of)
            return None
        options = {"force": args.force, "keep_going": args.keep_going, "backend": args.backend, "jobs": args.jobs}

        async def body(run: Run) -> WithMetadata:
            report = await run(args.targets or None, **options)
            self._replay_loaded(report)
            return WithMetadata(report, run_metadata(report, None))

        command = " ".join(["%dag run", *args.targets, *(f"--force {t}" for t in args.force)])
        return self._running(body, resume=f"Run `{command}` again")  # type: ignore[no-any-return]

    def _cmd_plan(self, args: argparse.Namespace) -> Any:
        return kind(self.graph.plan(args.targets or None, force=args.force), "plan")

    def _cmd_why(self, args: argparse.Namespace) -> Any:
        return kind(self.graph.why(args.task), "why")

    def _cmd_drop(self, args: argparse.Namespace) -> None:
        self.graph.drop(args.task)
        self.follower.forget(args.task)
        print(f"dropped task `{args.task}`; its cache entries are kept (`%dag cache clear {args.task}` removes them)")
