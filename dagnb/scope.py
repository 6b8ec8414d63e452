"""Whose heads, run history and hit counts a session reads and writes: its notebook's, or its folder's.

Notebooks in one folder share one cache (``.dagnb/`` beside them). Values are
shared by content: two notebooks with the same task and the same inputs have
the same key, and one stored value. What each notebook *did* is its own: the
key each task last had (its head, which ``%dag why`` and the plan's reasons
compare with), the run history (``%dag history``, ``--diff``, ``--as-of``) and
the hit counts of ``%dag costs`` are kept per :class:`Scope`.

The notebook glue finds the notebook's path (the frontends pass it to the
kernel: :mod:`dagnb.notebook.kernel_notebook`) and gives it to the graph; a
session that does not know it (plain IPython, a script, the Python API)
uses the scope of its working folder. The cache keeps its rows under the
name :meth:`Scope.name_in` gives (:mod:`dagnb.cache.heads`).

Invariants:

* A scope is named by its path relative to the folder that holds the cache
  folder (the project: moving the project with its cache keeps every scope),
  else by its absolute path.
* A folder's scope name ends with ``/`` and a notebook's never does, so a
  notebook and a folder never share a scope.
* This module imports nothing of dagnb (the cache room imports it, as it
  imports :mod:`dagnb.errors`) and nothing of IPython.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Scope", "notebook_path"]


@dataclass(frozen=True)
class Scope:
    """One notebook, or (when the notebook is not known) one working folder.

    Responsibilities: name itself in a given cache (the string its rows carry)
    and for the user.
    """

    path: Path  # absolute
    notebook: bool

    @classmethod
    def of_notebook(cls, path: str | os.PathLike[str]) -> Scope:
        return cls(_absolute(path), True)

    @classmethod
    def of_folder(cls, path: str | os.PathLike[str] | None = None) -> Scope:
        """The fallback: the working folder (``path``, else the current one)."""
        return cls(_absolute(path if path is not None else _working_folder()), False)

    def name_in(self, cache_root: Path) -> str:
        """The name this scope's rows carry in the cache at ``cache_root``."""
        try:
            text = self.path.relative_to(_absolute(cache_root).parent).as_posix()
        except ValueError:  # outside the project that holds the cache (a shared `DAGNB_CACHE_DIR`)
            text = self.path.as_posix()
        return text if self.notebook else text.rstrip("/") + "/"

    def describe(self) -> str:
        """``notebook `analysis.ipynb``` or ``folder `project```, for messages."""
        return f"{'notebook' if self.notebook else 'folder'} `{self.path.name or self.path}`"


def _working_folder() -> str:
    try:
        return os.getcwd()
    except OSError:  # the folder was deleted under the session: the path it had
        return os.environ.get("PWD") or os.path.sep


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.abspath(os.path.expanduser(os.fspath(path))))


def notebook_path(candidates: Iterable[str | None], cwd: str | os.PathLike[str] | None = None) -> Path | None:
    """The notebook a kernel runs, from what its frontend said (first usable candidate wins), else ``None``.

    A candidate is usable when it names an ``.ipynb`` file or an existing
    file. A relative one is read from the working folder; Jupyter Server may
    give it relative to its own root instead, so when that names nothing, the
    file of that name in the working folder (where the kernel of a notebook
    starts) is taken. A console's session name (no such file) is not a
    notebook: ``None``, the folder's scope.
    """
    here = _absolute(cwd if cwd is not None else _working_folder())
    for candidate in candidates:
        if not candidate or not isinstance(candidate, str):
            continue
        path = Path(os.path.expanduser(candidate))
        found = path if path.is_absolute() else here / path
        if not found.is_file() and not path.is_absolute() and (here / path.name).is_file():
            found = here / path.name
        if found.is_file() or found.suffix == ".ipynb":
            return _absolute(found)
    return None
