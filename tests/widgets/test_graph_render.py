"""The graph view's pure renderers: layout, SVG and the text fallback."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from dagnb.overview import Overview, levels
from dagnb.widgets import graph as graph_view
from dagnb.widgets.graph import GAP_Y, MAX_ROWS, NODE_H, NODE_W, PAD, layout, render_svg

from .support import Session, diamond, graph_statuses

# load --> clean --> fit --> report
#            \________________^
PIPELINE = ["load", "clean", "fit", "report"]
PIPELINE_UP = {"load": [], "clean": ["load"], "fit": ["clean"], "report": ["clean", "fit"]}


def _edges(upstream: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(u, t) for t, ups in upstream.items() for u in ups]


# -------------------------------------------------------------------- layout


def test_every_task_sits_right_of_all_its_upstream_tasks() -> None:
    place = layout(PIPELINE, PIPELINE_UP)
    for u, t in _edges(PIPELINE_UP):
        assert place.positions[u][0] < place.positions[t][0], f"{u} is not left of {t}"


def test_tasks_of_one_level_share_a_column() -> None:
    #  r1 --> x
    #  r2 --> y --> z
    tasks = ["r1", "r2", "x", "y", "z"]
    upstream = {"r1": [], "r2": [], "x": ["r1"], "y": ["r2"], "z": ["y"]}
    place = layout(tasks, upstream)
    assert levels(tasks, upstream) == {"r1": 0, "r2": 0, "x": 1, "y": 1, "z": 2}
    xs = {t: place.positions[t][0] for t in tasks}
    assert xs["r1"] == xs["r2"] == PAD
    assert xs["x"] == xs["y"] == PAD + NODE_W + graph_view.GAP_X
    assert xs["z"] == PAD + 2 * (NODE_W + graph_view.GAP_X)
    assert place.width == PAD * 2 + 3 * NODE_W + 2 * graph_view.GAP_X


def test_a_lone_task_is_centered_against_a_taller_column() -> None:
    # root feeds two children: the root's box sits halfway between theirs
    place = layout(["root", "c1", "c2"], {"root": [], "c1": ["root"], "c2": ["root"]})
    y = {t: p[1] for t, p in place.positions.items()}
    assert y["c2"] - y["c1"] == NODE_H + GAP_Y
    assert y["root"] == (y["c1"] + y["c2"]) // 2


def test_children_sit_near_their_upstream_rows_to_avoid_crossings() -> None:
    # r0 above r1; a child of r1 is listed first but is drawn below the child of r0
    tasks = ["r0", "r1", "of_r1", "of_r0"]
    upstream = {"r0": [], "r1": [], "of_r1": ["r1"], "of_r0": ["r0"]}
    place = layout(tasks, upstream)
    assert place.positions["r0"][1] < place.positions["r1"][1]
    assert place.positions["of_r0"][1] < place.positions["of_r1"][1]


def test_a_level_with_more_than_max_rows_tasks_wraps_into_more_columns() -> None:
    n = 2 * MAX_ROWS + 5
    kids = [f"k{i}" for i in range(n)]
    tasks = ["root", *kids, "sink"]
    upstream = {"root": [], **{k: ["root"] for k in kids}, "sink": [kids[0]]}
    place = layout(tasks, upstream)
    columns: dict[int, list[str]] = {}
    for k in kids:
        columns.setdefault(place.positions[k][0], []).append(k)
    assert sorted(len(c) for c in columns.values()) == [5, MAX_ROWS, MAX_ROWS]
    assert min(columns) > place.positions["root"][0]
    assert place.positions["sink"][0] > max(columns), "the next level comes after all wrapped columns"
    # the drawing is as tall as one full column, not as the whole level
    assert place.height == PAD * 2 + MAX_ROWS * (NODE_H + GAP_Y) - GAP_Y
    assert len(set(place.positions.values())) == len(tasks), "no two boxes overlap"


def test_an_empty_graph_has_an_empty_layout() -> None:
    place = layout([], {})
    assert place.positions == {}
    assert (place.width, place.height) == (PAD * 2, PAD * 2)


# ----------------------------------------------------------------------- svg


def test_svg_has_one_box_per_task_with_its_status_and_one_path_per_edge() -> None:
    statuses = {"load": "done", "clean": "cached", "fit": "running"}  # report: none known
    svg = render_svg(PIPELINE, PIPELINE_UP, statuses)
    assert graph_statuses(svg) == {"load": "done", "clean": "cached", "fit": "running", "report": "pending"}
    assert svg.count('<g class="dagnb-task') == 4
    assert svg.count("<path ") == len(_edges(PIPELINE_UP)) == 4
    assert "<script" not in svg and " id=" not in svg


def test_user_text_in_tooltips_is_escaped() -> None:
    reason = 'input x changed: <b>"1" & \'2\'</b>'
    svg = render_svg(["t"], {"t": []}, {"t": "stale"}, {"t": reason})
    title = re.search(r"<title>(.*?)</title>", svg).group(1)
    assert title == "t: stale (input x changed: &lt;b&gt;&quot;1&quot; &amp; &#x27;2&#x27;&lt;/b&gt;)"
    assert "<b>" not in svg


def test_a_long_task_name_is_shortened_in_its_box_but_kept_in_data_and_title() -> None:
    name = "compute_the_monthly_revenue_forecast"
    svg = render_svg([name], {name: []}, {name: "done"})
    assert f'data-task="{name}"' in svg
    assert f"<title>{name}: done</title>" in svg
    label = re.search(r"<text [^>]*>([^<]*)</text>", svg).group(1)
    assert label == "compute_the_monthly…"


def _size(svg: str) -> tuple[int, int, str]:
    m = re.search(r'<svg [^>]*width="(\d+)" height="(\d+)" data-zoom="[^"]+" viewBox="([^"]+)"', svg)
    assert m is not None, svg[:300]
    return int(m.group(1)), int(m.group(2)), m.group(3)


@pytest.mark.parametrize("zoom", [0.5, 2.0])
def test_zoom_scales_the_drawn_size_but_not_the_view_box(zoom: float) -> None:
    w1, h1, box1 = _size(render_svg(PIPELINE, PIPELINE_UP, {}, zoom=1.0))
    wz, hz, boxz = _size(render_svg(PIPELINE, PIPELINE_UP, {}, zoom=zoom))
    assert (wz, hz) == (round(w1 * zoom), round(h1 * zoom))
    assert boxz == box1 == f"0 0 {w1} {h1}"


def test_by_default_the_drawing_fits_the_width_it_is_given_and_never_grows() -> None:
    svg = render_svg(PIPELINE, PIPELINE_UP, {})
    w, h, _ = _size(render_svg(PIPELINE, PIPELINE_UP, {}, zoom=1.0))
    assert re.search(rf'<svg [^>]*width="{w}" height="{h}" style="max-width:100%;height:auto" data-zoom="fit"', svg)


CHAIN = [f"t{i}" for i in range(6)]
CHAIN_UP = {t: ([CHAIN[i - 1]] if i else []) for i, t in enumerate(CHAIN)}


def _boxes(place: graph_view.Layout) -> list[tuple[int, int, int, int]]:
    return [(x, y, x + NODE_W, y + NODE_H) for x, y in place.positions.values()]


def test_a_long_chain_turns_into_a_second_band_within_the_wrap_width() -> None:
    place = layout(CHAIN, CHAIN_UP, graph_view.WRAP_WIDTH)
    assert place.width <= graph_view.WRAP_WIDTH
    assert place.bands == {"t0": 0, "t1": 0, "t2": 0, "t3": 0, "t4": 1, "t5": 1}
    first, second = place.positions["t0"], place.positions["t4"]
    assert second[0] == first[0], "the second band starts at the left, like a new line of text"
    assert second[1] > place.positions["t3"][1] + NODE_H, "below the first band"
    for (x1, y1, x2, y2), (a1, b1, a2, b2) in itertools.combinations(_boxes(place), 2):
        assert x2 <= a1 or a2 <= x1 or y2 <= b1 or b2 <= y1, "no two boxes overlap"
    assert all(0 <= x and x2 <= place.width and 0 <= y and y2 <= place.height for x, y, x2, y2 in _boxes(place))


def test_an_edge_to_the_next_band_runs_through_the_gaps_between_boxes() -> None:
    place = layout(CHAIN, CHAIN_UP, graph_view.WRAP_WIDTH)
    svg = render_svg(CHAIN, CHAIN_UP, {})
    turn = re.search(r'<path d="M(\d+) (\d+)H(\d+)V(\d+)H(\d+)V(\d+)H(\d+)"/>', svg)
    assert turn is not None and svg.count("<path ") == 5
    x1, y1, out, down, into, y2, x2 = map(int, turn.groups())
    t3, t4 = place.positions["t3"], place.positions["t4"]
    assert (x1, y1) == (t3[0] + NODE_W, t3[1] + NODE_H // 2) and (x2, y2) == (t4[0], t4[1] + NODE_H // 2)
    assert t3[1] + NODE_H < down < t4[1], "across the gap between the bands"
    assert out > t3[0] + NODE_W and 0 < into < t4[0], "down and up beside the boxes, not through them"


def test_without_a_width_a_chain_stays_on_one_line() -> None:
    place = layout(CHAIN, CHAIN_UP)
    assert place.bands is None and len({y for _, y in place.positions.values()}) == 1


# --------------------------------------------------------------------- tiles

LONG = [f"t{i}" for i in range(300)]
LONG_UP = {t: ([LONG[i - 1]] if i else []) for i, t in enumerate(LONG)}
_VIEW_BOX = re.compile(r'viewBox="0 (\d+) (\d+) (\d+)"')
_BOX = re.compile(r'data-task="([^"]*)"[^>]*transform="translate\((\d+),(\d+)\)"')


def _tiles(tasks: list[str], upstream: dict[str, list[str]], statuses: dict[str, str] | None = None) -> list[str]:
    drawn = graph_view.render_tiles(tasks, upstream, statuses or {})
    assert all(svg is not None for svg in drawn)
    return [svg for svg in drawn if svg is not None]


def test_a_small_graph_is_one_tile_drawn_as_the_whole_svg() -> None:
    assert _tiles(CHAIN, CHAIN_UP, {"t0": "done"}) == [render_svg(CHAIN, CHAIN_UP, {"t0": "done"})]


def test_tiles_stack_into_the_whole_drawing() -> None:
    whole = render_svg(LONG, LONG_UP, {})
    tiles = _tiles(LONG, LONG_UP)
    assert len(tiles) > 5
    assert all(len(graph_statuses(t)) <= graph_view.TILE_TASKS for t in tiles)
    boxes = [box for t in tiles for box in _BOX.findall(t)]
    assert sorted(boxes) == sorted(_BOX.findall(whole)), "every box once, where the whole drawing puts it"
    assert sum(t.count("<path ") for t in tiles) == whole.count("<path ") == len(LONG) - 1
    _, full_w, full_h = map(int, _VIEW_BOX.search(whole).groups())
    top = 0
    for tile in tiles:  # one slice after the other, no gap, all as wide as the drawing
        y, w, h = map(int, _VIEW_BOX.search(tile).groups())
        assert (y, w) == (top, full_w) and f'width="{w}" height="{h}"' in tile
        assert 'overflow="visible"' in tile, "edges from the band above reach into the tile"
        top = y + h
    assert top == full_h


def test_appending_a_task_or_changing_a_status_changes_one_tile() -> None:
    before = _tiles(LONG, LONG_UP)
    after = _tiles([*LONG, "new"], {**LONG_UP, "new": [LONG[-1]]})
    assert len([1 for a, b in zip(before, after) if a != b]) + len(after) - len(before) == 1
    ran = _tiles(LONG, LONG_UP, {"t150": "running"})
    changed = [i for i, (a, b) in enumerate(zip(before, ran)) if a != b]
    assert len(changed) == 1 and graph_statuses(ran[changed[0]])["t150"] == "running"


def test_a_band_larger_than_a_tile_is_one_tile() -> None:
    wide = ["root", *(f"leaf{i}" for i in range(200))]
    up = {"root": [], **{f"leaf{i}": ["root"] for i in range(200)}}
    tiles = _tiles(wide, up)
    assert sorted(t for tile in tiles for t in graph_statuses(tile)) == sorted(wide)
    assert max(len(graph_statuses(t)) for t in tiles) > graph_view.TILE_TASKS


# ---------------------------------------------------------------------- text


def test_render_text_of_a_small_dag() -> None:
    """::

        load --> clean --> fit --> report
                   \\_______________^
    """
    view = Overview(PIPELINE, PIPELINE_UP, {"load": "done", "clean": "done", "fit": "failed", "report": "skipped"})
    assert graph_view.render_text(view) == (
        "dag: 4 tasks: 2 done, 1 failed, 1 skipped\n"
        "  load    done\n"
        "  clean   done       <- load\n"
        "  fit     failed     <- clean\n"
        "  report  skipped    <- clean, fit"
    )


def test_render_text_says_why_tasks_are_stale_and_why_the_graph_cannot_be_planned(tmp_path: Path) -> None:
    session = diamond(tmp_path, cache=False)
    session.graph.run()
    session.task("def b(a):\n    note('b')\n    return a * 11\n")
    assert graph_view.render_text(session.graph.overview()) == (
        "dag: 4 tasks: 2 stale, 2 done\n"
        "  a  done\n"
        "  b  stale      <- a  (code changed)\n"
        "  c  done       <- a\n"
        "  d  stale      <- b, c  (upstream b reruns first)"
    )
    session.task("def e(d, missing):\n    return d\n")
    text = graph_view.render_text(session.graph.overview())
    assert text.splitlines()[-1] == (
        "  cannot plan: Task `e` has a parameter `missing` that is neither a task, a default, "
        "nor a notebook variable. Define it in a cell above, give it a default, or add a `%%task def missing(...)`."
    )
    assert session.runs() == ["a", "b", "c", "d"], "rendering never runs a task"


def test_render_html_escapes_the_planning_problem(tmp_path: Path) -> None:
    session = Session(tmp_path, cache=False)
    session.task("def e(missing):\n    return 1\n")
    html = graph_view.render_html(session.graph.overview())
    assert "<p class=\"dagnb-problem\">Task `e` has a parameter `missing`" in html
    assert graph_statuses(html) == {"e": "pending"}


def test_an_empty_session_invites_a_first_task(tmp_path: Path) -> None:
    view = Session(tmp_path, cache=False).graph.overview()
    assert graph_view.render_text(view) == "dag: no tasks yet: define one with %%task"
    assert "<svg" not in graph_view.render_html(view)


def test_a_map_task_shows_how_many_of_its_items_ran() -> None:
    svg = graph_view.render_svg(["files", "size"], {"files": [], "size": ["files"]}, {"size": "done"},
                                items={"size": (1, 1000)})
    node = re.search(r'<g class="dagnb-task s-done" data-task="size".*?</g>', svg)
    assert node is not None
    assert "<title>size: done; 1 of 1000 elements ran</title>" in node.group(0)
    assert ">size 1/1000</text>" in node.group(0)
