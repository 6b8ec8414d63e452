"""Fingerprints of code: what changes a task's code fingerprint and what does not.

Functions are defined the way a notebook defines them: source executed into a
namespace dict ``ns`` (their ``__globals__``), one "cell" at a time.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from notebook_cells import define

from dagnb.fingerprints.code import code_fingerprint, source_digest

BASE = """
def clean(raw, threshold=0.5):
    kept = [x for x in raw if x > threshold]
    return sorted(kept)
"""

SAME_AS_BASE = {
    "comments": """
        # keep only the large ones
        def clean(raw, threshold=0.5):  # inline comment
            kept = [x for x in raw if x > threshold]  # filter
            return sorted(kept)
    """,
    "blank lines": """


        def clean(raw, threshold=0.5):

            kept = [x for x in raw if x > threshold]


            return sorted(kept)
    """,
    "reformatting": """
        def clean(
            raw,
            threshold = 0.5,
        ):
            kept = [ x
                     for x in raw
                     if x>threshold ]
            return sorted( kept )
    """,
    "docstring": '''
        def clean(raw, threshold=0.5):
            """Keep the values above ``threshold``, sorted."""
            kept = [x for x in raw if x > threshold]
            return sorted(kept)
    ''',
    "indented (as if nested)": textwrap.indent(BASE, "    "),
}

DIFFERENT_FROM_BASE = {
    "a constant": BASE.replace("0.5", "0.6"),
    "an operator": BASE.replace("x > threshold", "x >= threshold"),
    "a name": BASE.replace("sorted(kept)", "list(kept)"),
    "a string expression that is not a docstring": """
def clean(raw, threshold=0.5):
    kept = [x for x in raw if x > threshold]
    "not a docstring"
    return sorted(kept)
""",
    "statement order": """
def clean(raw, threshold=0.5):
    return sorted(kept)
    kept = [x for x in raw if x > threshold]
""",
}


NESTED = '''
def clean(raw, threshold=0.5):
    """The task's own docstring."""
    try:
        def inner(x):
            """Nested in a try."""
            return x > threshold
    except ValueError:
        class Inner:
            """Nested in a handler."""
    match raw:
        case []:
            def empty():
                """Nested in a case."""
                return []
    return sorted(x for x in raw if inner(x))
'''


def test_docstrings_nested_in_any_block_do_not_count_and_code_beside_them_does() -> None:
    bare = NESTED
    for doc in ('"""The task\'s own docstring."""', '"""Nested in a try."""', '"""Nested in a case."""'):
        bare = bare.replace(doc, "")
    bare = bare.replace('"""Nested in a handler."""', "pass")
    assert source_digest(bare) == source_digest(NESTED)
    assert source_digest(NESTED.replace("return []", "return [0]")) != source_digest(NESTED)
    assert source_digest(NESTED.replace('"""Nested in a case."""', '"""Nested in a case."""; 1')) != source_digest(
        NESTED
    )


@pytest.mark.parametrize("source", list(SAME_AS_BASE.values()), ids=list(SAME_AS_BASE))
def test_source_digest_ignores_layout(source: str) -> None:
    assert source_digest(textwrap.dedent(source)) == source_digest(BASE)


@pytest.mark.parametrize("source", list(DIFFERENT_FROM_BASE.values()), ids=list(DIFFERENT_FROM_BASE))
def test_source_digest_sees_real_changes(source: str) -> None:
    assert source_digest(source) != source_digest(BASE)


# ------------------------------------------------------------ code_fingerprint

TASK = """
def task(x):
    return h(x) + K
"""


def _notebook(*cells: str) -> dict[str, Any]:
    ns: dict[str, Any] = {}
    for cell in cells:
        define(ns, textwrap.dedent(cell))
    return ns


def _fp(ns: dict[str, Any], name: str = "task") -> Any:
    return code_fingerprint(ns[name], skip=frozenset({"x"}))


def test_code_fingerprint_is_stable_for_the_same_notebook() -> None:
    cells = ("def h(x):\n    return x * 2\n", "K = 3\n", TASK)
    assert _fp(_notebook(*cells)) == _fp(_notebook(*cells))


def test_parts_name_the_code_each_helper_and_each_global() -> None:
    ns = _notebook("def h(x):\n    return x * 2\n", "K = 3\n", TASK)
    parts = _fp(ns).parts
    assert {"code", "python", "helper h", "global K"} <= set(parts)
    assert parts["python"] == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert "global x" not in parts, "a parameter is an input, not a global"


Edit = Callable[[dict[str, Any]], None]

CHANGES: list[tuple[str, Edit, str]] = [
    ("helper code", lambda ns: define(ns, "def h(x):\n    return x * 3\n"), "helper h"),
    ("helper's helper", lambda ns: define(ns, "def g(x):\n    return x - 1\n"), "helper h"),
    ("global constant", lambda ns: ns.update(K=4), "global K"),
    ("helper class method", lambda ns: define(
        ns, "class Scaler:\n    def scale(self, x):\n        return x * 100\n"), "helper h"),
    ("global read by the helper", lambda ns: ns.update(OFFSET=1), "helper h"),
]


@pytest.mark.parametrize(("edit", "label"), [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_a_change_to_what_the_task_references_changes_its_fingerprint(edit: Edit, label: str) -> None:
    """Reference chain: task -> h -> g, h -> Scaler.scale, h -> OFFSET; task -> K."""
    ns = _notebook(
        "OFFSET = 0\n",
        "def g(x):\n    return x + 1\n",
        "class Scaler:\n    def scale(self, x):\n        return x * 10\n",
        "def h(x):\n    return Scaler().scale(g(x)) + OFFSET\n",
        "K = 3\n",
        TASK,
    )
    before = _fp(ns)
    edit(ns)
    after = _fp(ns)
    assert after.digest != before.digest
    changed = {p for p in before.parts.keys() | after.parts.keys() if before.parts.get(p) != after.parts.get(p)}
    assert changed == {label}


def test_an_unrelated_global_does_not_change_the_fingerprint() -> None:
    ns = _notebook("def h(x):\n    return x\n", "K = 3\n", "UNUSED = 1\n", TASK)
    before = _fp(ns)
    ns["UNUSED"] = 2
    define(ns, "def other(y):\n    return y + 1000\n")
    assert _fp(ns) == before


def test_a_module_reference_is_a_part_with_the_module_version() -> None:
    ns = _notebook("import numpy as np\n", "def task(x):\n    return np.mean(x)\n")
    parts = _fp(ns).parts
    assert parts["module np"] == f"numpy {np.__version__}"


def test_a_module_version_change_changes_the_fingerprint(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    fake = types.ModuleType("fakelib_for_dagnb")
    fake.__version__ = "1.0"  # type: ignore[attr-defined]
    fake.__file__ = "/opt/python/lib/site-packages/fakelib_for_dagnb/__init__.py"  # installed: a library
    monkeypatch.setitem(sys.modules, "fakelib_for_dagnb", fake)
    ns = _notebook("def task(x):\n    return fl.run(x)\n")
    ns["fl"] = fake
    before = _fp(ns)
    assert before.parts["module fl"] == "fakelib_for_dagnb 1.0"
    fake2 = types.ModuleType("fakelib_for_dagnb2")
    fake2.__version__ = "2.0"  # type: ignore[attr-defined]
    fake2.__file__ = "/opt/python/lib/site-packages/fakelib_for_dagnb2/__init__.py"
    monkeypatch.setitem(sys.modules, "fakelib_for_dagnb2", fake2)
    ns["fl"] = fake2
    assert _fp(ns).digest != before.digest


def test_closure_values_count() -> None:
    def make(scale: float) -> Callable[[float], float]:
        def task(x: float) -> float:
            return x * scale

        return task

    one, two, one_again = make(1.0), make(2.0), make(1.0)
    fp = lambda fn: code_fingerprint(fn, skip=frozenset({"x"}))  # noqa: E731
    assert "closure scale" in fp(one).parts
    assert fp(one).digest != fp(two).digest
    assert fp(one) == fp(one_again)


def test_the_python_version_is_a_part_of_the_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    import dagnb.fingerprints.code as codehash

    ns = _notebook("def task(x):\n    return x\n")
    before = _fp(ns)
    monkeypatch.setattr(codehash, "PYTHON", "2.7")
    after = _fp(ns)
    assert after.parts["python"] == "2.7"
    assert after.digest != before.digest


def test_a_recursive_helper_does_not_loop_forever() -> None:
    ns = _notebook(
        "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\n",
        "def task(x):\n    return fact(x)\n",
    )
    assert "helper fact" in _fp(ns).parts
