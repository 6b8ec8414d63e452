"""The glue's modules by their names before the rooms: code written against them still imports.

``dagnb.magics`` and ``dagnb.check`` forward to the modules that hold their
names now (:mod:`dagnb._moved`); the names they offered are still there, and
are the same objects, whichever module of the room now defines them.
"""

from __future__ import annotations

import importlib

import pytest

OFFERED = {
    "dagnb.magics": ("DagMagics", "awaiting", "load", "unload", "await_runs", "help_alone"),
    "dagnb.notebook.magics": ("DagMagics", "awaiting", "load", "unload", "await_runs", "help_alone"),
    "dagnb.check": ("CheckResult", "Problem", "StaticTask", "check_notebook", "check_source", "notebook_language"),
    "dagnb.ci.check": ("CheckResult", "Problem", "StaticTask", "check_notebook", "check_source", "notebook_language"),
}


@pytest.mark.parametrize("module", sorted(OFFERED))
def test_the_names_a_module_offered_are_still_offered(module: str) -> None:
    found = importlib.import_module(module)
    assert [name for name in OFFERED[module] if not hasattr(found, name)] == []


def test_an_old_name_gives_the_same_objects() -> None:
    old, new = importlib.import_module("dagnb.magics"), importlib.import_module("dagnb.notebook.magics")
    assert [name for name in OFFERED["dagnb.magics"] if getattr(old, name) is not getattr(new, name)] == []


def test_the_magics_class_still_declares_both_magics() -> None:
    from dagnb.magics import DagMagics

    assert DagMagics.magics == {"line": {"dag": "dag"}, "cell": {"task": "task"}}


def test_a_rewritten_cell_finds_awaiting_where_it_names_it() -> None:
    """The input transformer embeds a module path in the cell it rewrites; that path must hold ``awaiting``."""
    import inspect

    from dagnb.notebook import magics

    named = inspect.getsource(magics.await_runs).split("__import__('")[1].split("'")[0]
    assert importlib.import_module(named).awaiting is magics.awaiting
