"""Write one small notebook per capability (map, async, conditions, history,
hooks, save), each executed once on a cold cache so its saved outputs are
what `pytest --nbval` expects.

Run after editing the cells: python notebooks/build_capabilities.py
"""

from __future__ import annotations

from _build import build, execute_and_save

NOTEBOOKS = {
    "map.ipynb": [
        ("md", """# Map tasks: one call per element, each cached on its own

`%%task --map pages` calls the function once per element of `pages` and gives back
a list (a tuple, or a dict with the same keys, for those inputs). Change one element
and only that call reruns."""),
        ("code", "%load_ext dagnb"),
        ("code", "pages = [f\"page-{i}\" for i in range(100)]"),
        ("code", '''%%task --map pages
def word_count(pages):
    return len(pages.split("-")) * 10'''),
        ("code", '''%%task
def words(word_count):
    return sum(word_count)'''),
        ("code", "words"),
        ("md", "Change one element: one call reruns, 99 come from the cache."),
        ("code", "pages[7] = \"page-7-revised\"\n%dag plan"),
        ("code", "%dag run"),
        ("code", "words"),
    ],
    "async.ipynb": [
        ("md", """# Async tasks

An `async def` task runs on the kernel's own event loop, the one IPython's top-level
`await` uses: a cell that runs async tasks is awaited there, and the async tasks of a
run wait at the same time (here, three 0.3 s waits take about 0.3 s). What they print
is recorded and shown again when they are cached, and their results are cached like
any other. Ctrl-C stops the run and keeps what finished."""),
        ("code", "%load_ext dagnb"),
        ("code", "import asyncio"),
        ("code", '''%%task --no-run
async def first_reply():
    print("asking the first server")
    await asyncio.sleep(0.3)
    return {"status": 200, "items": 3}'''),
        ("code", '''%%task --no-run
async def second_reply():
    await asyncio.sleep(0.3)
    return {"status": 200, "items": 4}'''),
        ("code", '''%%task --no-run
async def third_reply():
    await asyncio.sleep(0.3)
    return {"status": 200, "items": 5}'''),
        ("code", '''%%task --no-run
def all_items(first_reply, second_reply, third_reply):
    return first_reply["items"] + second_reply["items"] + third_reply["items"]'''),
        ("code", "%dag run"),
        ("code", "all_items"),
        ("code", "%dag trace"),
    ],
    "conditions.ipynb": [
        ("md", """# Conditional tasks

`%%task --when "EXPR"` runs a task only when the expression over its inputs is true.
Otherwise it is `skipped (condition)`, and so are its dependents, except those whose
parameter for it has a default: they receive the default."""),
        ("code", "%load_ext dagnb"),
        ("code", "threshold = 10"),
        ("code", '''%%task
def readings():
    return [3, 7, 4]'''),
        ("code", '''%%task --when "max(readings) > threshold"
def alert(readings, threshold):
    return f"reading {max(readings)} is above {threshold}"'''),
        ("code", '''%%task
def report(readings, alert="no alert"):
    return f"{len(readings)} readings; {alert}"'''),
        ("code", "report"),
        ("md", "Lower the threshold: the condition is now true, `alert` runs and `report` receives it."),
        ("code", "threshold = 5\n%dag run"),
        ("code", "report"),
    ],
    "history.ipynb": [
        ("md", """# Run history

Every run is kept in the cache's metadata: `%dag history` lists them,
`%dag history --diff A B` says which tasks changed, and `%dag run --as-of RUN`
brings back the values a past run had, from the cache, without running anything.
This notebook uses a cache of its own, so its run numbers start at 1."""),
        ("code", "%load_ext dagnb"),
        ("code", "# NBVAL_IGNORE_OUTPUT\nimport tempfile\n\ncache_dir = tempfile.mkdtemp()\n%dag cache --dir $cache_dir"),
        ("code", "rate = 0.1"),
        ("code", '''%%task
def prices():
    return [100, 250, 40]'''),
        ("code", '''%%task
def taxed(prices, rate):
    return [round(p * (1 + rate), 2) for p in prices]'''),
        ("code", "rate = 0.2\n%dag run"),
        ("code", "taxed"),
        ("code", "%dag history"),
        ("code", "%dag history --diff 2 3"),
        ("code", "%dag run --as-of 2"),
        ("code", "taxed"),
    ],
    "hooks.ipynb": [
        ("md", """# Hooks

`dagnb.on(event, fn)` and `dagnb.subscribe(obj)` call your code on the events the
views use: here, a log of finished tasks, one JSON line each."""),
        ("code", "%load_ext dagnb"),
        ("code", '''import json
import tempfile
from pathlib import Path

import dagnb

log = Path(tempfile.mkdtemp()) / "tasks.jsonl"

class TaskLog:
    def task_finished(self, *, task, status, **_):
        with open(log, "a") as handle:
            handle.write(json.dumps({"task": task, "status": status}) + "\\n")

subscription = dagnb.subscribe(TaskLog())'''),
        ("code", '''%%task
def orders():
    return [12, 30, 7]'''),
        ("code", '''%%task
def revenue(orders):
    return sum(orders)'''),
        ("code", "print(log.read_text())"),
        ("code", "subscription.remove()"),
    ],
    "save.ipynb": [
        ("md", """# Saving values for other tools

`%%task --save PATH` also writes the value to a file after each run, atomically, in
the format the extension names (`.npy`, `.parquet`, `.csv`, `.json`, `.pkl`); `{name}`
is the task's name. `dagnb check` lists these files."""),
        ("code", "%load_ext dagnb"),
        ("code", '''%%task --save "out/{name}.json"
def inventory():
    return {"apples": 12, "pears": 5}'''),
        ("code", '''%%task --save "out/{name}.csv"
def restock(inventory):
    return [{"item": item, "order": max(0, 10 - count)} for item, count in sorted(inventory.items())]'''),
        ("code", "print(open(\"out/restock.csv\").read())"),
    ],
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        execute_and_save(build(cells), name)


if __name__ == "__main__":
    main()
