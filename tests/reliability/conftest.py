"""Setup of the fault-injection suite.

The helpers of ``tests/unit`` (the :class:`Notebook` that counts executions
in a log file) are shared with the unit tests. Each test records what it
tried and what was lost in :data:`faultlib.TALLIES`; the table is printed
at the end of the session (it is the table of ``README.md`` here).
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent / "unit"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import faultlib


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if not faultlib.TALLIES:
        return
    terminalreporter.section("reliability: what each test tried and what was lost")
    for line in faultlib.tally_table():
        terminalreporter.write_line(line)
