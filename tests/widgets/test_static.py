"""``%dag show --static``: every view in one HTML fragment whose numbers validators can mask."""

from __future__ import annotations

import re
from pathlib import Path

from dagnb.widgets.static import StaticView

from .support import NUM_SPAN, Session, diamond, durations, nbval_sanitize, sanitize_patterns

BYTES = re.compile(r"\d+(\.\d+)? (B|KiB|MiB|GiB|TiB)\b")
GANTT = re.compile(r'<svg class="dagnb-gantt".*?</svg>', re.DOTALL)

# The diamond again, but b and c sleep for a time read from a file: the notebook
# is the same, only how long b and c take differs (as it does between machines).
SLEEPY = [
    "import time\n",
    "def a():\n    note('a')\n    return 2\n",
    "def b(a):\n    note('b')\n    time.sleep(float(open(DELAYS).read().split()[0]))\n    return a * 10\n",
    "def c(a):\n    note('c')\n    time.sleep(float(open(DELAYS).read().split()[1]))\n    return a + 1\n",
    "def d(b, c):\n    note('d')\n    return b + c\n",
]


def _sleepy(root: Path, delay_b: float, delay_c: float) -> Session:
    session = Session(root)
    (root / "delays").write_text(f"{delay_b} {delay_c}")
    session.ns["DELAYS"] = str(root / "delays")
    session.cell(SLEEPY[0])
    session.tasks(SLEEPY[1:])
    session.graph.run()
    return session


def _static(session: Session) -> StaticView:
    return StaticView(session.graph.overview())


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r"<h4>(\w+)</h4>", html)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_sanitize_config_masks_dagnb_numbers() -> None:
    rules = dict(sanitize_patterns())
    assert any("dagnb-num" in regex for regex in rules), "extension/nbval/sanitize.cfg has no dagnb-num rule"
    masked = nbval_sanitize('<td><span class="dagnb-num">1.52 s</span></td>')
    assert "1.52" not in masked and 'class="dagnb-num"' in masked


def test_static_html_has_all_four_views(tmp_path: Path) -> None:
    session = diamond(tmp_path)
    session.graph.run()
    html = _static(session).render_html()
    assert list(_sections(html)) == ["Graph", "Plan", "Costs", "Trace"]
    assert html.startswith('<div class="dagnb-static-full">')
    assert html.count('<g class="dagnb-task') == 4
    assert html.count('<g class="dagnb-span') == 4


def test_every_measured_number_is_masked_or_inside_the_gantt(tmp_path: Path) -> None:
    session = diamond(tmp_path)
    session.graph.run()
    html = _static(session).render_html()
    assert len(NUM_SPAN.findall(html)) >= 4 * 7, "the costs table carries its numbers"
    outside_gantt = GANTT.sub("", html)
    assert durations(outside_gantt) == []
    assert BYTES.findall(NUM_SPAN.sub("", outside_gantt)) == []
    assert durations(nbval_sanitize(html)) == []


def test_graph_plan_and_text_are_identical_across_sessions(tmp_path: Path) -> None:
    first, second = diamond(tmp_path / "one"), diamond(tmp_path / "two")
    first.graph.run()
    second.graph.run()
    one, two = _static(first), _static(second)
    s1, s2 = _sections(nbval_sanitize(one.render_html())), _sections(nbval_sanitize(two.render_html()))
    assert s1["Graph"] == s2["Graph"]
    assert s1["Plan"] == s2["Plan"]
    assert one.render_text() == two.render_text()
    assert durations(one.render_text()) == []


def test_masked_costs_rows_agree_across_sessions_up_to_order(tmp_path: Path) -> None:
    first, second = _sleepy(tmp_path / "one", 0.03, 0.0), _sleepy(tmp_path / "two", 0.0, 0.03)
    rows = [sorted(re.findall(r"<tr><td><code>.*?</tr>", _sections(nbval_sanitize(_static(s).render_html()))["Costs"]))
            for s in (first, second)]
    assert len(rows[0]) == 4
    assert rows[0] == rows[1]


def test_two_sessions_of_the_same_notebook_render_identically_after_masking(tmp_path: Path) -> None:
    first, second = _sleepy(tmp_path / "one", 0.03, 0.0), _sleepy(tmp_path / "two", 0.0, 0.03)
    assert first.runs() == second.runs() == ["a", "b", "c", "d"]
    assert nbval_sanitize(_static(first).render_html()) == nbval_sanitize(_static(second).render_html())


def test_static_view_is_a_plain_bundle_without_a_widget(tmp_path: Path) -> None:
    session = diamond(tmp_path, cache=False)
    bundle, metadata = _static(session)._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"} and metadata == {"dagnb": {"view": "static"}}
    assert bundle["text/plain"].splitlines()[0] == "dag: 4 tasks: 4 pending"
    assert "trace: no run yet (%dag run records one)" in bundle["text/plain"]
    assert repr(_static(session)) == bundle["text/plain"]
    assert session.runs() == [], "rendering never runs a task"
