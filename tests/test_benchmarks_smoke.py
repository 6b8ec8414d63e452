"""Smoke test of the benchmark suite: ``run.py --quick`` runs to the end.

Only that it works is checked, never how fast anything is: timings belong
to ``tests/benchmarks/results.md``, not to assertions.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parent / "benchmarks" / "run.py"
HEADER = "| metric | dagnb | peer | ratio (peer/dagnb time) | goal | met? |"

pytest.importorskip("dask")
pytest.importorskip("pandas")


@pytest.mark.slow
def test_quick_benchmark_run_prints_the_table(tmp_path: Path) -> None:
    output = tmp_path / "results.md"
    done = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--output", str(output)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert HEADER in done.stdout
    assert HEADER in output.read_text(encoding="utf-8")
