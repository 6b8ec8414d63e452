"""Key parts are typed, and render exactly the labels dagnb has always recorded (keys and digests unchanged)."""

from __future__ import annotations

import pytest

from dagnb.graph import Input, spec_from_function
from dagnb.keyparts import Fed, Part, parse_fed, parse_part, rendered
from dagnb.plan import compute_key

PARTS = [
    (Part("code"), "code"),
    (Part("python"), "python"),
    (Part("wrapped"), "wrapped"),
    (Part("helper", "h"), "helper h"),
    (Part("module", "np"), "module np"),
    (Part("global", "K"), "global K"),
    (Part("global", "cfg.limit"), "global cfg.limit"),
    (Part("closure", "n"), "closure n"),
]


@pytest.mark.parametrize(("part", "label"), PARTS)
def test_a_part_renders_the_recorded_label_and_reads_back(part, label):
    assert part.render() == label
    assert parse_part(label) == part


@pytest.mark.parametrize("kind", ["upstream", "constant", "external"])
def test_an_input_renders_kind_and_fingerprint_and_reads_back(kind):
    fed = Fed(kind, "0f" * 16)
    assert fed.render() == f"{kind} {'0f' * 16}"
    assert parse_fed(fed.render()) == fed


def test_a_label_of_a_kind_this_version_does_not_know_reads_back_without_raising():
    assert parse_part("future thing") == Part("future", "thing")
    assert parse_fed("remote 12ab") == Fed("remote", "12ab")
    assert parse_part("") == Part("")


def test_rendered_is_the_recorded_mapping():
    assert rendered([(Part("helper", "h"), "d1"), (Part("code"), "d2")]) == {"helper h": "d1", "code": "d2"}


K = 3


def helper(x):
    return x * K


def task(a, b=2):
    return helper(a) + b


def test_a_key_records_its_parts_and_inputs_in_the_rendered_form():
    spec = spec_from_function(task)
    info = compute_key(spec, [Input("a", "upstream"), Input("b", "constant", 2)], {"a": "ab" * 16})
    assert {parse_part(label).kind for label in info.parts} == {"code", "python", "helper"}
    assert "helper helper" in info.parts
    assert parse_fed(info.inputs["a"]) == Fed("upstream", "ab" * 16)
    assert parse_fed(info.inputs["b"]).kind == "constant"
