"""Write notebooks/quickstart.ipynb from the cell sources below, then execute it
once on a cold cache so its saved outputs are what `pytest --nbval` expects.

Run after editing the cells: python notebooks/build_quickstart.py
"""

from __future__ import annotations

from _build import build, execute_and_save

CELLS = [
    ("md", """# dagnb quickstart

Each `%%task` cell holds one function. Its name is the task and the variable it
produces; its parameters are its inputs. Run the notebook twice, or edit a cell:
only what changed reruns, everything else comes from the cache (`.dagnb/` beside
this notebook). `summary` takes about a second; on a second run (or after
*Restart & Run All*) it comes back from the cache at once."""),
    ("code", "%load_ext dagnb"),
    ("code", "import csv\nimport random\nimport statistics\n\nimport dagnb"),
    ("md", "`raw` reads a file. `dagnb.file` makes the file an input: editing the CSV makes `raw` stale."),
    ("code", '''%%task
def raw(path=dagnb.file("data/flowers.csv")):
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    print(f"read {len(rows)} rows")
    return rows'''),
    ("md", "`clean` depends on `raw` because it names it as a parameter; `min_length` is a constant input."),
    ("code", '''%%task
def clean(raw, min_length=4.0):
    """Drop rows with a missing or implausible sepal length."""
    kept = []
    for row in raw:
        if row["sepal_length"] and float(row["sepal_length"]) >= min_length:
            kept.append({**row, "sepal_length": float(row["sepal_length"])})
    return kept'''),
    ("md", """`summary` is the slow task: a bootstrap of each species' mean sepal length
(150,000 resamples). Its random numbers come from a generator seeded by a
parameter, so its key determines its result and the cache may reuse it."""),
    ("code", '''%%task
def summary(clean, resamples=150_000, seed=0):
    """Mean sepal length per species, with a 95% bootstrap interval."""
    rng = random.Random(seed)
    by_species = {}
    for row in clean:
        by_species.setdefault(row["species"], []).append(row["sepal_length"])
    result = {}
    for species, lengths in sorted(by_species.items()):
        means = sorted(statistics.fmean(rng.choices(lengths, k=len(lengths))) for _ in range(resamples))
        result[species] = (statistics.fmean(lengths), means[resamples // 40], means[-(resamples // 40) - 1])
    return result'''),
    ("md", "A plain notebook variable used as a parameter is an *external input*, hashed by value."),
    ("code", "digits = 2"),
    ("code", '''%%task
def report(summary, digits):
    return "\\n".join(
        f"{species:<12} {mean:.{digits}f}  (95% interval {low:.{digits}f} to {high:.{digits}f})"
        for species, (mean, low, high) in summary.items()
    )'''),
    ("md", "Task values are ordinary variables:"),
    ("code", "print(report)"),
    ("md", """`%dag plan` says what the next `%dag run` would do and why; `%dag why TASK` names
what changed. Only `report` reads `digits`: the slow `summary` is not run again."""),
    ("code", "digits = 3\n%dag plan"),
    ("code", "%dag why report"),
    ("code", "%dag run"),
    ("code", "print(report)"),
]


def main() -> None:
    execute_and_save(build(CELLS), "quickstart.ipynb")


if __name__ == "__main__":
    main()
