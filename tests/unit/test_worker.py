"""The worker's side of a remote task, in this process: the traceback it sends names the notebook's
cells whatever file name the pickler gave the code it carried (cloudpickle 3.1.3 writes
``<dynamic-code>``, earlier versions kept the cell's name)."""

from __future__ import annotations

import linecache
import types
from typing import Any

import pytest

from dagnb.run.worker import run_remote, with_kernel_source

CELL = "<cell-worker-test>"
SOURCE = "def parse(row):\n    return int(row)\n\ndef task():\n    return parse('x')\n"


def _cell_namespace() -> dict[str, Any]:
    linecache.cache[CELL] = (len(SOURCE), None, SOURCE.splitlines(keepends=True), CELL)
    namespace: dict[str, Any] = {}
    exec(compile(SOURCE, CELL, "exec"), namespace)
    return namespace


def _as_pickled_by_value(func: types.FunctionType, file: str) -> types.FunctionType:
    """``func`` as a worker receives it when the pickler renames its code's file."""
    globals_ = dict(func.__globals__)
    for name, value in list(globals_.items()):
        if isinstance(value, types.FunctionType):
            globals_[name] = types.FunctionType(value.__code__.replace(co_filename=file), globals_, name)
    return globals_[func.__name__]


@pytest.mark.parametrize("file", ["<dynamic-code>", CELL, "/elsewhere/on/the/worker.py"])
def test_the_traceback_names_the_cells_of_the_task_and_its_helper(file: str) -> None:
    namespace = _cell_namespace()
    outcome = run_remote(_as_pickled_by_value(namespace["task"], file), {})
    text = with_kernel_source(outcome, namespace["task"]).error.remote_traceback  # type: ignore[union-attr]
    assert f'File "{CELL}", line 5, in task\n    return parse(\'x\')\n' in text
    assert f'File "{CELL}", line 2, in parse\n    return int(row)\n' in text
    assert file == CELL or file not in text
    assert text.rstrip().endswith("ValueError: invalid literal for int() with base 10: 'x'")


def test_a_frame_of_code_the_kernel_does_not_have_keeps_the_workers_name() -> None:
    namespace = _cell_namespace()
    outcome = run_remote(_as_pickled_by_value(namespace["task"], "<dynamic-code>"), {})
    text = with_kernel_source(outcome, len).error.remote_traceback  # type: ignore[union-attr]
    assert 'File "<dynamic-code>", line 5, in task\n' in text


def test_a_notebook_value_whose_attributes_raise_does_not_stop_the_mapping() -> None:
    class Proxy:
        def __getattr__(self, name: str) -> Any:
            raise RuntimeError("lazy proxy")

    namespace = _cell_namespace()
    namespace["proxy"] = Proxy()
    outcome = run_remote(_as_pickled_by_value(namespace["task"], "<dynamic-code>"), {})
    text = with_kernel_source(outcome, namespace["task"]).error.remote_traceback  # type: ignore[union-attr]
    assert f'File "{CELL}", line 2, in parse\n' in text


WORKER_SCRIPT = """
import json, pickle, sys
import dagnb.run.worker  # what loky and dask import first, unpickling `run_remote` or the actor
from dagnb.run.worker import run_pickled

def task(n):
    print("in the worker")
    return [n, n + 1]

outcome = pickle.loads(run_pickled(pickle.dumps((task, {"n": 1}, []))))
print(json.dumps({"value": outcome.value, "captured": outcome.captured, "remote": outcome.remote,
                  "fingerprinted": outcome.fingerprint is not None, "modules": sorted(sys.modules)}))
"""

NOT_IN_A_WORKER = ("networkx", "sqlite3", "IPython", "dagnb.api", "dagnb.plan", "dagnb.graph", "dagnb.cache",
                   "dagnb.run.executor", "dagnb.run.taskrunner")


def test_a_worker_runs_a_task_body_without_the_planner_the_task_graph_or_the_cache() -> None:
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", WORKER_SCRIPT], capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    assert result["value"] == [1, 2] and result["remote"] and result["fingerprinted"]
    assert result["captured"] == [{"output_type": "stream", "name": "stdout", "text": "in the worker\n"}]
    assert [m for m in NOT_IN_A_WORKER if m in result["modules"]] == []
