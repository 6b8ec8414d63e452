"""Values of the PyData libraries in a real kernel: fingerprinted, stored, reloaded after a restart.

One notebook has, per library, a task returning that library's value and a
task reading it (both append to a log file, so executions are counted from
outside dagnb), and a last cell printing what the readers computed and what
the reloaded values hold. It is executed three times, each in a new kernel
with another ``PYTHONHASHSEED``:

1. cold cache: every task runs;
2. restart: nothing runs, every value (a matplotlib ``Figure`` included) is
   loaded from the cache, the figure's picture is replayed, and the last cell
   prints the same;
3. restart with each producer's code edited so that it returns an equal
   value: the producers run again, and their readers stay cached, which
   needs the producers' fingerprints, computed in another process, to be
   equal (early cutoff across processes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from .test_notebook_flow import env, execute, log_lines, make_notebook, statuses, stdout_of, task_cell  # noqa: F401

pytestmark = pytest.mark.kernel

# name, imports, what the producer returns, the reader's body over the value (bound to the producer's name)
LIBRARIES = [
    ("arrow_strings", "import pandas as pd",
     'pd.DataFrame({"w": pd.Series(["a", "bb", None], dtype="string[pyarrow]"), "n": [1, 2, 3]})',
     "return int(arrow_strings.n.sum()) + int(arrow_strings.w.str.len().sum())"),
    ("arrow_table", "import pyarrow as pa", 'pa.table({"a": [1, 2, 3], "s": ["x", "y", None]})',
     'return arrow_table.num_rows + sum(arrow_table.column("a").to_pylist())'),
    ("polars_frame", "import polars as pl", 'pl.DataFrame({"a": [1, 2, 3], "s": ["x", "y", "z"]})',
     'return int(polars_frame["a"].sum())'),
    ("polars_plan", "import polars as pl", 'pl.DataFrame({"a": [1, 2, 3]}).lazy().filter(pl.col("a") > 1)',
     'return int(polars_plan.collect()["a"].sum())'),
    ("xarray_set", "import numpy as np\nimport xarray as xr",
     'xr.Dataset({"v": ("x", np.arange(4.0))}, coords={"x": list("abcd")}, attrs={"units": "m"})',
     "return float(xarray_set.v.sum())"),
    ("dask_array", "import dask.array as da", "da.arange(10, chunks=5) * 2",
     "return int(dask_array.sum().compute())"),
    ("dask_frame", "import pandas as pd\nimport dask.dataframe as dd",
     'dd.from_pandas(pd.DataFrame({"a": range(6)}), npartitions=2)', "return int(dask_frame.a.sum().compute())"),
    ("ridge", "import numpy as np\nfrom sklearn.linear_model import Ridge",
     "Ridge(alpha=0.0).fit(np.arange(6.0).reshape(-1, 1), 2 * np.arange(6.0) + 1)",
     "return round(float(ridge.predict([[10.0]])[0]), 6)"),
    ("chart", "import matplotlib.pyplot as plt", "plt.subplots()[1].plot([1, 4, 9])[0].figure",
     "return chart.axes[0].lines[0].get_ydata().tolist()"),
    ("tensor", "import torch", "torch.arange(6.0).reshape(2, 3)", "return float(tensor.sum())"),
]
READ = {"arrow_strings": 9, "arrow_table": 9, "polars_frame": 6, "polars_plan": 5, "xarray_set": 6.0, "dask_array": 90,
        "dask_frame": 15, "ridge": 21.0, "chart": [1, 4, 9], "tensor": 15.0}  # what each reader returns
MODULES = {"arrow_strings": "pyarrow", "arrow_table": "pyarrow", "polars_frame": "polars", "polars_plan": "polars",
           "xarray_set": "xarray", "dask_array": "dask", "dask_frame": "dask", "ridge": "sklearn",
           "chart": "matplotlib", "tensor": "torch"}
PRESENT = [lib for lib in LIBRARIES if importlib.util.find_spec(MODULES[lib[0]]) is not None]


def notebook(log: Path, edited: bool = False) -> object:
    cells = [lib[1] for lib in PRESENT]
    for name, _, value, reader in PRESENT:
        body = ("_edited = True\n" if edited else "") + f"return {value}"
        cells.append(task_cell(name, "", body, log))
        cells.append(task_cell(f"read_{name}", name, reader, log))
    shown = ", ".join(f"{name}=read_{name}" for name, *_ in PRESENT)
    cells.append(f"print(dict({shown}))\nprint(type(chart).__name__, chart.axes[0].lines[0].get_ydata().tolist())"
                 if any(lib[0] == "chart" for lib in PRESENT) else f"print(dict({shown}))")
    return make_notebook(*cells)


def test_library_values_are_cached_reloaded_and_cut_off_early_across_restarts(
    env: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    if "torch" not in {MODULES[lib[0]] for lib in PRESENT}:
        print("torch is not installed: its value is not part of this run")
    log = env / "log.txt"
    names = [lib[0] for lib in PRESENT]
    readers = [f"read_{n}" for n in names]

    first = execute(notebook(log), env)
    assert sorted(log_lines(env)) == sorted(names + readers)
    printed = stdout_of(first.cells[-1])
    expected = {name: READ[name] for name in names}
    assert printed == f"{expected}\n" + ("Figure [1, 4, 9]\n" if "chart" in names else ""), printed

    monkeypatch.setenv("PYTHONHASHSEED", "2")
    second = execute(notebook(log), env)
    assert sorted(log_lines(env)) == sorted(names + readers), "a restarted kernel ran tasks again"
    assert statuses(second) == dict.fromkeys(names + readers, "cached")
    assert stdout_of(second.cells[-1]) == printed
    chart_cell = next((c for c in second.cells if "def chart(" in c.source), None)
    if chart_cell is not None:  # the figure's picture is replayed once, not drawn again by the inline backend
        assert sum("image/png" in o.get("data", {}) for o in chart_cell.outputs) == 1

    monkeypatch.setenv("PYTHONHASHSEED", "3")
    before = len(log_lines(env))
    third = execute(notebook(log, edited=True), env)
    assert sorted(log_lines(env)[before:]) == sorted(names), "an equal value made its reader run again"
    assert statuses(third) == {**dict.fromkeys(names, "done"), **dict.fromkeys(readers, "cached")}
    assert stdout_of(third.cells[-1]) == printed
