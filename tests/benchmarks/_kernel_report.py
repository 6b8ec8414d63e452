"""Rows and scaling-curve tables from what ``bench_kernel`` measured.

A measurement that failed leaves its (shape, N) out of :class:`Curves`;
the rows and tables here skip what is missing (``bench_kernel`` reports the
failure as a row of its own).
"""

from __future__ import annotations

from _common import Row, Table, median, ms, ratio
from _notebooks import SHAPES
from bench_kernel import (
    GOAL_CACHED_OVER_PLAIN_MS,
    GOAL_DEFINITION_GROWTH,
    GOAL_DEFINITION_MS,
    GOAL_HISTORY_MS,
    GOAL_RUN_ALL_OVER_PLAIN,
    Curves,
    Plan,
    all_plain,
    definition_at,
    per_cell,
    plain_at,
    window,
)


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def _loads(curves: Curves, kind: str, n: int) -> str:
    """The 1-minute load average before → after each shape's measurement at ``n``."""
    shown = [curves.loads.get((kind, shape, n)) for shape in SHAPES]
    return " / ".join(f"{a:.1f}→{b:.1f}" if a is not None else "—" for a, b in (x or (None, None) for x in shown))


def _wall(curves: Curves, shape: str, n: int, variant: str) -> float:
    return median([r.wall for r in curves.run_all[(shape, n)][variant]])


def _over_plain(curves: Curves, shape: str, n: int) -> tuple[float, float, float]:
    """(task cell, plain cell, difference): kernel seconds per cell, late in the notebook."""
    runs = curves.run_all[(shape, n)]
    task, plain = per_cell(runs["dagnb"], n), per_cell(runs["plain"], n)
    return task, plain, task - plain


# ------------------------------------------------------------------ the rows


def run_all_rows(shape: str, n: int, curves: Curves) -> list[Row]:
    if (shape, n) not in curves.run_all:
        return []
    d, p, j = (_wall(curves, shape, n, v) for v in ("dagnb", "plain", "joblib"))
    runs = len(curves.run_all[(shape, n)]["dagnb"])
    label = f"Restart & Run All, {n:,}-cell {shape}, every task a cache hit ({runs} runs)"
    chain = shape == "chain"
    return [
        Row(f"{label}: dagnb vs the same functions as plain cells", secs(d), f"plain cells: {secs(p)}", ratio(p, d),
            f"<= {GOAL_RUN_ALL_OVER_PLAIN}x plain (ratio >= {1 / GOAL_RUN_ALL_OVER_PLAIN:.2f})",
            d <= GOAL_RUN_ALL_OVER_PLAIN * p),
        Row(f"{label}: dagnb vs `joblib.Memory` cells", secs(d), f"joblib.Memory: {secs(j)}", ratio(j, d),
            "faster than joblib.Memory" if chain else "—", d < j if chain else None),
    ]


def first_cell_row(n: int, curves: Curves) -> list[Row]:
    """The first ``%%task`` cell of a restarted kernel (a hit), which pays dagnb's imports."""
    if ("chain", n) not in curves.run_all:
        return []
    runs = curves.run_all[("chain", n)]
    first, second = (median([r.cells[i] for r in runs["dagnb"]]) for i in (1, 2))
    return [Row("the first `%%task` cell of a restarted kernel, a cache hit (the chain's cell 1; info)", ms(first),
                f"the second: {ms(second)}; a plain cell 1: {ms(median([r.cells[1] for r in runs['plain']]))}",
                None, "—", None)]


def cached_cell_rows(plan: Plan, curves: Curves) -> list[Row]:
    out = []
    for shape in SHAPES:
        sizes = [n for n in plan.run_all if (shape, n) in curves.run_all]
        if not sizes:
            continue
        over = {n: _over_plain(curves, shape, n) for n in sizes}
        shown = " / ".join(ms(over[n][2]) for n in sizes)
        plain = " / ".join(ms(over[n][1]) for n in sizes)
        out.append(Row(
            f"cached `%%task` cell over a plain cell, {shape}, kernel time of the last cells, "
            f"N = {' / '.join(f'{n:,}' for n in sizes)}",
            shown, f"plain cell: {plain}", None, f"< {GOAL_CACHED_OVER_PLAIN_MS:.0f} ms at every N",
            all(o[2] * 1e3 < GOAL_CACHED_OVER_PLAIN_MS for o in over.values())))
    return out


def history_rows(n: int, curves: Curves) -> list[Row]:
    if n not in curves.history_rows:
        return []
    count, nbytes, first, last = curves.history_rows[n]
    out = [Row(f"run history after one Run All of a {n:,}-cell chain: rows (metadata size)",
               f"{count:,} rows ({nbytes / 1e6:.1f} MB)", "—", None, f"<= {n:,} rows", count <= n)]
    if curves.history_ms:
        runs = len(curves.history_ms["diff"])
        for key, command in (("diff", f"`%dag history --diff {first} {last}`"),
                             ("as_of", f"`%dag run --as-of {last}` ({n:,} values restored)")):
            took = median(curves.history_ms[key])
            out.append(Row(f"{command} after that Run All, kernel time ({runs} runs)", ms(took), "—", None,
                           f"< {GOAL_HISTORY_MS:.0f} ms", took * 1e3 < GOAL_HISTORY_MS))
    return out


def first_run_rows(shape: str, n: int, curves: Curves) -> list[Row]:
    if (shape, n) not in curves.first:
        return []
    times = curves.first[(shape, n)]
    d, k = median(times["dagnb"]), median(times["dask"])
    return [Row(
        f"{n:,} tasks, `%dag run`, first run into an empty disk cache, {shape}, vs dask `get_sync` on the same "
        f"functions in the same kernel ({len(times['dagnb'])} runs)",
        f"{us(d / n)}/task ({secs(d)})", f"{us(k / n)}/task ({ms(k)})", ratio(k, d),
        "at most get_sync per task (>= 1x)", d <= k)]


def definition_rows(plan: Plan, curves: Curves) -> list[Row]:
    out = []
    for shape in SHAPES:
        ks = [k for k in plan.definitions if any(len(s) >= k for s in curves.definitions.get(shape, []))]
        if len(ks) < 2:
            continue
        took = {k: definition_at(curves, shape, k) for k in ks}
        plain = {k: plain_at(curves, shape, k) for k in ks}
        over = {k: t - plain[k] for k, t in took.items()}
        first, last = ks[0], ks[-1]
        met = over[last] <= GOAL_DEFINITION_GROWTH * over[first] and over[last] * 1e3 < GOAL_DEFINITION_MS
        out.append(Row(
            f"defining the k-th task (`%%task --no-run`), {shape}, kernel time, "
            f"k = {' / '.join(f'{k:,}' for k in ks)}",
            " / ".join(ms(took[k]) for k in ks) + f" (over a plain cell: {' / '.join(ms(over[k]) for k in ks)})",
            f"plain `def` cell at the same point: {' / '.join(ms(plain[k]) for k in ks)}", None,
            f"flat: the {last:,}th within {GOAL_DEFINITION_GROWTH}x the {first:,}th, under "
            f"{GOAL_DEFINITION_MS:.0f} ms (both over a plain cell)", met))
    return out


def headline_rows(plan: Plan, curves: Curves) -> list[Row]:
    n = plan.headline
    out = [r for shape in SHAPES for r in run_all_rows(shape, n, curves)]
    out += cached_cell_rows(plan, curves)
    out += first_cell_row(n, curves)
    out += [r for shape in SHAPES for r in first_run_rows(shape, n, curves)]
    out += definition_rows(plan, curves)
    out += history_rows(n, curves)
    return out


# ---------------------------------------------------------------- the curves


def _run_all_table(plan: Plan, curves: Curves) -> Table:
    lines = []
    for n in plan.run_all:
        line = [f"{n:,}"]
        for shape in SHAPES:
            if (shape, n) not in curves.run_all:
                line += ["failed", "", "", ""]
                continue
            d, p, j = (_wall(curves, shape, n, v) for v in ("dagnb", "plain", "joblib"))
            line += [secs(d), secs(p), secs(j), f"{d / p:.1f}x"]
        line.append(" / ".join(str(len(curves.run_all[(s, n)]["dagnb"])) if (s, n) in curves.run_all else "—"
                               for s in SHAPES))
        line.append(_loads(curves, "run_all", n))
        lines.append(tuple(line))
    return Table(
        "Restart & Run All, every task a cache hit (wall time of all cells at the client; kernel start not counted)",
        ("N", "chain: dagnb", "plain", "joblib.Memory", "dagnb / plain", "fan: dagnb", "plain", "joblib.Memory",
         "dagnb / plain", "runs (chain / fan)", "load (chain / fan)"),
        lines, "Medians of runs that rotate dagnb, plain and joblib.Memory; each run is a new kernel. "
        "Load: the 1-minute load average before → after each measurement (2 cores; above 2 means waiting).")


def _cached_cell_table(plan: Plan, curves: Curves) -> Table:
    lines = []
    for n in plan.run_all:
        line = [f"{n:,}", f"{n - window(n) + 1:,}–{n:,}"]
        for shape in SHAPES:
            if (shape, n) not in curves.run_all:
                line += ["failed", "", ""]
                continue
            task, plain, over = _over_plain(curves, shape, n)
            line += [ms(task), ms(plain), ms(over)]
        lines.append(tuple(line))
    return Table(
        "A cached `%%task` cell, per cell (kernel time: execute_input to execute_reply, mean of the cells shown)",
        ("N", "cells", "chain: `%%task` cell", "plain cell", "over plain", "fan: `%%task` cell", "plain cell",
         "over plain"),
        lines, "From the Restart & Run All runs above (medians over runs).")


def _history_table(plan: Plan, curves: Curves) -> Table:
    lines = [(f"{n:,}", f"{rows:,}", f"{nbytes / 1e6:.2f} MB")
             for n, (rows, nbytes, _, _) in sorted(curves.history_rows.items())]
    return Table("Run history after one Run All of an N-cell chain (the run that filled the cache)",
                 ("N", "history rows (task records)", "metadata (SQLite) size"), lines)


def _definition_table(plan: Plan, curves: Curves) -> Table:
    ks = sorted({k for k in (*plan.first, *plan.definitions) if k >= 5})
    lines = []
    for k in ks:
        line = [f"{k:,}"]
        for shape in SHAPES:
            if not any(len(s) >= k for s in curves.definitions.get(shape, [])):
                line += ["—", "—", "—"]
                continue
            took, plain = definition_at(curves, shape, k), plain_at(curves, shape, k)
            line += [ms(took), ms(plain), ms(took - plain)]
        lines.append(tuple(line))
    return Table(
        "Defining the k-th task with `%%task --no-run` (kernel time, median of cells k-4..k)",
        ("k", "chain", "plain cell", "over plain", "fan", "plain cell", "over plain"), lines,
        "A plain `def` cell runs after every tenth definition; each definition is compared with the plain cells "
        f"after definitions k-49..k of the same sessions (all of them: median {ms(median(all_plain(curves)))}), "
        "because IPython's own time per cell grows along a session.")


def _first_run_table(plan: Plan, curves: Curves) -> Table:
    lines = []
    for n in plan.first:
        line = [f"{n:,}"]
        for shape in SHAPES:
            if (shape, n) not in curves.first:
                line += ["failed", "", ""]
                continue
            times = curves.first[(shape, n)]
            d, k = median(times["dagnb"]), median(times["dask"])
            line += [us(d / n), us(k / n), f"{k / d:.2f}x"]
        line.append(" / ".join(str(len(curves.first[(s, n)]["dagnb"])) if (s, n) in curves.first else "—"
                               for s in SHAPES))
        line.append(_loads(curves, "first", n))
        lines.append(tuple(line))
    return Table(
        "First run: `%dag run` of N tasks into an empty disk cache, per task (kernel time of the cell)",
        ("N", "chain: dagnb", "get_sync", "ratio (get_sync / dagnb)", "fan: dagnb", "get_sync",
         "ratio (get_sync / dagnb)", "runs (chain / fan)", "load (chain / fan)"),
        lines, "dask's `get_sync` runs the same function objects on the same graph in the same kernel. At "
        "small N the cell also pays what the kernel's first run imports (joblib, ipywidgets).")


def curve_tables(plan: Plan, curves: Curves) -> list[Table]:
    return [_run_all_table(plan, curves), _cached_cell_table(plan, curves), _history_table(plan, curves),
            _definition_table(plan, curves), _first_run_table(plan, curves)]
