"""Write notebooks/tour.ipynb (every view of dagnb) from the cells below, then
execute it once on a cold cache so its saved outputs are what `pytest --nbval`
expects.

Run after editing the cells: python notebooks/build_tour.py
"""

from __future__ import annotations

from _build import build, execute_and_save

CELLS = [
    ("md", """# A tour of dagnb's views

`%dag` shows the task graph as a live widget: a **Graph** of tasks colored by
status, the **Plan** of the next run, the **Costs** of each task and the
**Trace** of the latest run. It keeps updating while later cells run. Saved
without widget state (or on GitHub), each view falls back to a plain HTML
version with the same statuses and no timings."""),
    ("code", "%load_ext dagnb"),
    ("code", "import time\n\nsize = 2_000"),
    ("md", """Five tasks in a diamond, defined without running (`--no-run`). `numbers` reads the
notebook variable `size`, an input hashed by value. The sleeps stand in for real work."""),
    ("code", '''%%task --no-run
def numbers(size):
    return list(range(size))'''),
    ("code", '''%%task --no-run
def squares(numbers):
    time.sleep(0.2)
    return [x * x for x in numbers]'''),
    ("code", '''%%task --no-run
def cubes(numbers):
    time.sleep(0.5)
    return [x ** 3 for x in numbers]'''),
    ("code", '''%%task --no-run
def total(squares, cubes):
    return sum(squares) + sum(cubes)'''),
    ("code", '''%%task --no-run
def headline(total):
    return f"total: {total:,}"'''),
    ("md", "The live view. Every task is `pending`: it has never run."),
    ("code", "%dag"),
    ("md", "The plan says what the next run would do and why."),
    ("code", "%dag plan"),
    ("md", """Run everything. A progress bar shows while tasks run, and the view above
flips each task to `running`, then `done`."""),
    ("code", "%dag run"),
    ("md", """The trace: every run since the kernel started (here one: the cells above only
defined tasks), naming what ran, what was loaded from the cache and what was
already in memory. `--run N` (or the menu of the live view) shows one run's Gantt
chart, one lane per worker, with the critical path outlined
(`numbers -> cubes -> total -> headline`: speeding up `squares` would not shorten
the run)."""),
    ("code", "%dag trace --run 1"),
    ("md", "Costs per task: time, CPU, peak memory, output and cache bytes, cache hits and the time they saved. Sort by any column."),
    ("code", "%dag costs"),
    ("md", """Change an input. Nothing runs yet (`lazy` mode), but every task that reads
`size`, directly or through an upstream task, is now stale: the status line of
each of their cells above now says so, in place, and so does the live view at
the top, before this cell ends. `%dag why` says why."""),
    ("code", "size = 3_000"),
    ("code", "%dag why numbers"),
    ("code", "%dag show"),
    ("md", """`%dag show --static` draws every view as plain HTML, with the numbers, and
no widget: for exported reports."""),
    ("code", "%dag show --static"),
]


def main() -> None:
    execute_and_save(build(CELLS), "tour.ipynb")


if __name__ == "__main__":
    main()
