"""The example notebooks stay valid for `dagnb check` (nbval executes them separately)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagnb.ci.check import check_notebook

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_example_notebook_passes_the_static_check(path: Path) -> None:
    result = check_notebook(path)
    assert result.ok, result.render_text()
    assert result.tasks, "an example notebook without tasks shows nothing"
