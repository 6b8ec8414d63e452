"""The sentences dagnb's errors and warnings are built from.

Pure functions from names to text, shared by :mod:`dagnb.errors` and
:mod:`dagnb.warning_kinds`, which build each one-paragraph message from an
error's fields.

Invariants:

* Nothing here raises or warns, reads a file or imports IPython: a message
  builder runs while an error is being raised, where a second error would
  hide the first.
* Names are quoted in backticks and listed in the order given (callers sort),
  long lists counted rather than spelled out, so a message stays one
  paragraph.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from dagnb.status import RAISED, STOPPED, WITH_VALUE, word

__all__ = ["all_of", "close_matches", "interrupt_summary", "listed", "suggest", "untracked_message"]


def close_matches(word: str, names: Iterable[str], n: int = 3) -> list[str]:
    """Return up to ``n`` names close to ``word``, best first."""
    return difflib.get_close_matches(word, sorted(set(names)), n=n, cutoff=0.6)


def suggest(candidates: Sequence[str]) -> str:
    """`` Did you mean `a`, `b`?``, or nothing when there is no candidate."""
    if not candidates:
        return ""
    quoted = ", ".join(f"`{c}`" for c in candidates)
    return f" Did you mean {quoted}?"


def all_of(names: Sequence[str]) -> str:
    """```a`, `b` and `c```: every one of ``names``, quoted."""
    quoted = [f"`{n}`" for n in names]
    return ", ".join(quoted[:-1]) + f" and {quoted[-1]}" if len(quoted) > 1 else "".join(quoted)


_KEPT = {**{s: word(s) for s in WITH_VALUE}, "interrupted": "interrupted: its value is partial, in memory only"}
_MOST_NAMED = 8  # a summary names this many tasks of a kind, then counts the rest


def named(items: list[str]) -> str:
    """```a` (ran), `b` (cached) and 3 more``."""
    shown = items[:_MOST_NAMED]
    more = f" and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    if len(shown) > 1 and not more:
        return ", ".join(shown[:-1]) + f" and {shown[-1]}"
    return ", ".join(shown) + more


def interrupt_summary(statuses: dict[str, str], reasons: dict[str, str], resume: str) -> str:
    """One paragraph after Ctrl-C: what finished and is kept, what did not, how to resume.

    ``statuses`` and ``reasons`` are a run report's (upstream first). A task
    the run stopped before is ``cancelled`` (or ``skipped``: its upstream was
    cancelled); the executor gives the one that was running the reason
    ``it was running``.
    """
    kept = [f"`{t}` ({_KEPT[s]})" for t, s in statuses.items() if s in _KEPT]
    failed = [f"`{t}` ({s})" for t, s in statuses.items() if s in RAISED]
    stopped = [t for t, s in statuses.items() if s in STOPPED and "condition" not in reasons.get(t, "")]
    running = [f"`{t}` (it was running)" for t in stopped if reasons.get(t) == "it was running"]
    waiting = [f"`{t}`" for t in stopped if reasons.get(t) != "it was running"]
    parts = [f"Finished and kept: {named(kept)}." if kept else "No task finished."]
    if failed:
        parts.append(f"Failed: {named(failed)}.")
    if running or waiting:
        not_started = f"{named(waiting)} (not started)" if waiting else ""
        parts.append(f"Cancelled: {named(running + ([not_started] if not_started else []))}.")
        again = len(stopped) + sum(1 for s in statuses.values() if s == "interrupted")
        parts.append(
            f"{resume} to resume: only the {again} unfinished task{'s' if again != 1 else ''} run, the others are kept."
        )
    return " ".join(parts)


def untracked_message(task: str, what: str, type_name: str, reason: str) -> str:
    """Why a task always reruns: something its key should cover has no fingerprint."""
    short = type_name.rsplit(".", 1)[-1]
    return (
        f"Task `{task}` reads {what}, a `{type_name}` that dagnb cannot fingerprint ({reason}). "
        f"So `{task}` reruns every time, like a `--volatile` task, rather than risk a stale result. "
        f"Pass something dagnb can fingerprint instead (the settings it is made from), or teach dagnb "
        f"the type with `dagnb.register_fingerprint({short}, fn)`."
    )


def listed(places: list[str], most: int = 3) -> str:
    """The first ``most`` of ``places``, then how many more."""
    if len(places) <= most:
        return ", ".join(places)
    return ", ".join(places[:most]) + f" and {len(places) - most} more"
