"""The warnings dagnb gives, and where it shows them.

Every category is a ``UserWarning``, so ``warnings.filterwarnings`` can
silence one kind without the others. A warning that concerns a task is
shown at the cell or line that defines it (:func:`warn_at`), not inside
dagnb. Each class is importable from :mod:`dagnb.errors` too.

Invariants:

* A warning never stops a run: dagnb warns where it carries on (a value kept
  in memory only, a recomputed entry, an original put back).
* A warning built from fields (:class:`ValueChangedWarning`,
  :class:`UntrackedWarning`) keeps them as attributes, for views to read.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from dagnb.messages import listed

__all__ = [
    "DagnbCacheWarning",
    "DagnbSaveWarning",
    "LocalModuleChangedWarning",
    "UnfingerprintableWarning",
    "UnpicklableOutputWarning",
    "UntrackedWarning",
    "ValueChangedWarning",
    "warn_at",
]


def warn_at(func: Any, message: str, category: type[Warning]) -> None:
    """A warning about a task (or a helper), shown at the cell or line that defines ``func``, not at dagnb's."""
    code = getattr(func, "__code__", None)
    if code is None:
        warnings.warn(message, category, stacklevel=3)
    else:
        warnings.warn_explicit(message, category, code.co_filename, code.co_firstlineno)


class DagnbCacheWarning(UserWarning):
    """A cache entry was unreadable or could not be written; dagnb recomputes."""


class DagnbSaveWarning(UserWarning):
    """A ``--save`` copy of a task's value could not be written."""


class UnfingerprintableWarning(UserWarning):
    """A value could not be fingerprinted; its producer's key stands in for it."""


class LocalModuleChangedWarning(UserWarning):
    """A file with user code (a module beside the notebook, a ``%run`` script) was edited after it was
    loaded; tasks keep using, and are keyed by, the code that was loaded."""


class ValueChangedWarning(UserWarning):
    """A task's value was changed in place after it was computed; dagnb put the original back."""

    def __init__(self, task: str, by: str, how: str, reader: str | None = None) -> None:
        self.task, self.by, self.how, self.reader = task, by, how, reader
        when = f"Before task `{reader}` read it" if reader else "As soon as that task finished"
        if by.startswith("task"):
            fix = f"Work on a copy in that task (`{task} = {task}.copy()`) or build a new value."
        else:
            fix = f"Change `{task}` in its own task, or work on a copy in the cell (`{task}.copy()`)."
        super().__init__(
            f"The value of task `{task}` was changed in place after it was computed, by {by}. {when}, dagnb "
            f"{how}, so no result is computed from the changed value. {fix}"
        )


class UnpicklableOutputWarning(UserWarning):
    """A task output could not be written to disk; it stays in memory only."""


class UntrackedWarning(UserWarning):
    """A task reads what its key does not cover (random numbers, the clock, the environment, plain files).

    Built from the task's name and its findings (:class:`dagnb.fingerprints.untracked.Untracked`:
    ``kind``, ``what``, ``code``, ``line``, ``helper``, ``path``); ``line_offset``
    turns a finding's line into the line the user sees (1 for a ``%%task``
    cell, whose magic line comes first).
    """

    def __init__(self, task: str, findings: Sequence[Any], line_offset: int = 0) -> None:
        self.task, self.findings = task, list(findings)
        groups: dict[str, list[str]] = {}
        for finding in self.findings:
            where = f"in helper `{finding.helper}`" if finding.helper else f"line {finding.line + line_offset}"
            groups.setdefault(finding.what, []).append(f"`{finding.code}` {where}")
        shown = [f"{what} ({listed(places)})" for what, places in groups.items()]
        kinds = {f.kind for f in self.findings}
        path = next((repr(f.path) for f in self.findings if f.path), '"data.csv"')
        fixes = [_UNTRACKED_FIX[kind].format(task=task, path=path) for kind in _UNTRACKED_FIX if kind in kinds]
        super().__init__(
            f"Task `{task}` reads what its key does not cover: {', '.join(shown)}. dagnb cannot see "
            f"{'these' if len(self.findings) > 1 else 'it'} change, so a cached value is reused as if the task "
            f"were deterministic. To fix it: {'; '.join(fixes)}; or mark the task volatile "
            f"(`%%task --volatile`, `@task(volatile=True)`) to rerun it every time."
        )


_UNTRACKED_FIX = {  # in the order the fixes are listed
    "random": "take a seed as a parameter (`def {task}(seed=0)`, then `np.random.default_rng(seed)` "
    "or `random.Random(seed)`)",
    "clock": "pass the date or time as a parameter",
    "environment": "pass the setting as a parameter",
    "file": "declare the file as a parameter (`path=dagnb.file({path})`)",
}
