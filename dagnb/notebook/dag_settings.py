"""IPython glue: ``%dag cache``, ``%dag config`` and ``%dag mode``.

The cache's upkeep (clear, prune, verify, info) is the store's and the
graph's; here the options are read and the answers shown (as outputs of kind
``cache``, whose text depends on the cache). The settings live where they
act: ``check_mutation`` and ``verify_inputs`` on the graph, ``follow`` on
the page's follower, ``mode`` on the graph.
"""

from __future__ import annotations

import argparse

from dagnb.errors import CommandError
from dagnb.notebook.outputs import show_text
from dagnb.notebook.running import CellGlue

__all__ = ["SettingsCommands"]


class SettingsCommands(CellGlue):
    """The disk cache, the session's settings and its mode."""

    def _cmd_cache(self, args: argparse.Namespace) -> None:
        if args.dir:
            print(f"cache directory: {self.graph.use_cache_dir(args.dir).location}")
        if args.action == "clear":
            gone = self.graph.clear_cache(args.task)
            show_text(f"removed {gone} cache entries" + (f" of `{args.task}`" if args.task else ""), "cache")
        elif args.action == "prune":
            show_text(str(self.graph.prune(_size(args.max_size))), "cache")
        elif args.action == "verify":
            show_text(str(self.graph.store.verify()), "cache")
        elif not args.dir:
            show_text(str(self.graph.store.info()), "cache")

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


def _size(text: str | None) -> int:
    from dagnb.cache.base import parse_size

    if not text:
        raise CommandError("`%dag cache prune` needs `--max-size SIZE`, for example `--max-size 2GB`.")
    try:
        return parse_size(text)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
