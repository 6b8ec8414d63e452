"""The core never imports IPython, widgets, numpy or pandas (modelled on dask's
``test_default_imports``): checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import dagnb, dagnb.graph, dagnb.fingerprints.values, dagnb.cache.store, dagnb.plan, dagnb.run.executor, dagnb.api, dagnb.session
    import dagnb.notebook.status_lines, dagnb.overview, dagnb.trace

    graph = dagnb.Graph()

    @graph.task
    def a():
        return [1, 2, {"x": 3}]

    @graph.task
    def b(a, k=2):
        return len(a) * k

    report = graph.run()
    again = graph.run()
    print(json.dumps({
        "b": graph["b"],
        "executed": report.executed,
        "cached_again": again.cached,
        "modules": sorted(sys.modules),
    }))
    """
)

FORBIDDEN = ("IPython", "ipywidgets", "ipykernel", "numpy", "pandas")


def test_core_imports_and_runs_without_heavy_modules() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["b"] == 6
    assert result["executed"] == ["a", "b"]
    assert result["cached_again"] == ["a", "b"]
    loaded = {name.split(".")[0] for name in result["modules"]}
    assert [m for m in FORBIDDEN if m in loaded] == []
