"""Setup of the fault-injection suite.

The helpers of ``tests/unit`` (the :class:`Notebook` that counts executions
in a log file) are shared with the unit tests. Each test records what it
tried and what was lost in :data:`faultlib.TALLIES`; the table is printed
at the end of the session (it is the table of ``README.md`` here).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted at a fresh folder (unmounted afterwards); skipped where it cannot be mounted."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode}); the patched ENOSPC tests run")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
