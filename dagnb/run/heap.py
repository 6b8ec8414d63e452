"""The garbage collector during a run: what was alive before it is left out of its passes.

A full pass of Python's cyclic garbage collector visits every object the
process holds (a kernel with pandas loaded holds about 150,000: some 50 ms
on the CI machine), and a run of many quick tasks allocates enough to set
one off: a fifth of a 1,000-task first run in a plain IPython shell went
there. So a run of :data:`FROM_TASKS` tasks or more first collects the
young generations (about a millisecond), then freezes what is alive
(``gc.freeze``): the collector's passes during the run visit only the
objects the run made. The frozen objects are handed back to the collector
when the run ends, however it ends (``gc.unfreeze``).

Invariants:

* What the run makes is collected as usual. Of what was unreachable when
  it started, the young generations are collected first; the oldest one,
  which only a full pass examines, waits for the first full pass after
  the run.
* Only where the collector is enabled and nothing is frozen already: an
  application that froze objects itself (a server before it forks) keeps
  them frozen, and of two runs at once only the first freezes.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["FROM_TASKS", "run_heap"]

#: Runs of at least this many tasks freeze the objects alive when they start; fewer rarely set off a full pass.
FROM_TASKS = 100


@contextlib.contextmanager
def run_heap(tasks: int) -> Iterator[None]:
    """Leave the objects alive now out of the collector's passes until the block ends (a run of ``tasks``)."""
    if tasks < FROM_TASKS or not gc.isenabled() or gc.get_freeze_count():
        yield
        return
    gc.collect(1)  # young garbage goes now, not frozen with the rest
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
