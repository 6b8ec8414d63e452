"""A pytest plugin: nbval compares dagnb's own outputs by what does not depend on the cache.

``pytest --nbval`` runs a notebook and compares each cell's outputs with the
saved ones. dagnb's outputs describe what the cache did: a notebook saved from
a warm session says ``clean: cached`` where a cold CI cache says ``clean: ran
(new)``, a plan says ``load from cache`` where it says ``run``, hit counts
differ, and a status line updated in place after its cell ran
(``clean: stale``) is compared with the line a fresh run first shows (nbval
ignores ``update_display_data``). None of that is a difference in the
notebook's results.

Installed with dagnb (entry point ``pytest11``), the plugin has nbval compare
each output that carries ``dagnb`` output metadata by its kind and task only:
the cell must still show a status line of task ``clean``, a run report, a
plan, a view; the text in it may differ. Everything else (what the user's
code and tasks print and display, errors) is compared exactly as before, and
sanitize files still apply. A note dagnb says once per session, whose
presence depends on the frontend (a kernel that does not know its notebook:
:mod:`dagnb.notebook.kernel_notebook`), is left out of comparisons on both
sides. ``pytest -p no:dagnb`` turns the plugin off.

It imports nothing of nbval: it finds nbval's cell items by the
``compare_outputs`` method they have, and leaves every other item alone.
"""

from __future__ import annotations

from typing import Any

__all__ = ["comparable", "comparable_outputs", "pytest_collection_modifyitems"]


def _kind(meta: dict[str, Any]) -> str:
    """``status line of `clean```, ``run report``, ``view dag``: what a dagnb output is, never what it says."""
    kind = meta.get("output")
    if kind is None:  # saved by a dagnb that did not name its outputs
        kind = f"view {meta['view']}" if "view" in meta else ("status" if meta.get("task") else "report")
    if kind == "status":
        return f"status line of `{meta.get('task')}`"
    return {"report": "run report"}.get(kind, kind)


def comparable(output: Any) -> Any:
    """``output`` as nbval should compare it: a dagnb output becomes its kind; any other is returned as is."""
    meta = output.get("metadata") if hasattr(output, "get") else None
    dagnb = meta.get("dagnb") if isinstance(meta, dict) else None
    if not isinstance(dagnb, dict) or output.get("output_type") not in ("display_data", "execute_result"):
        return output
    same = type(output)(output)  # nbformat's NotebookNode, or a dict
    same["data"] = {"text/plain": f"[dagnb {_kind(dagnb)}]"}
    return same


def _note(output: Any) -> bool:
    """A note dagnb says once per session (``"output": "note"``), there or not depending on the frontend."""
    meta = output.get("metadata") if hasattr(output, "get") else None
    dagnb = meta.get("dagnb") if isinstance(meta, dict) else None
    return isinstance(dagnb, dict) and dagnb.get("output") == "note"


def comparable_outputs(outputs: list[Any]) -> list[Any]:
    return [comparable(output) for output in outputs if not _note(output)]


def _wrap(compare: Any) -> Any:
    def compare_outputs(test: list[Any], ref: list[Any], skip_compare: Any = None) -> Any:
        return compare(comparable_outputs(test), comparable_outputs(ref), skip_compare)

    compare_outputs.dagnb = True  # type: ignore[attr-defined]
    return compare_outputs


def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Make each nbval cell compare dagnb's outputs by kind (nbval's items have ``compare_outputs``)."""
    for item in items:
        compare = getattr(item, "compare_outputs", None)
        if callable(compare) and type(item).__module__.startswith("nbval") and not getattr(compare, "dagnb", False):
            item.compare_outputs = _wrap(compare)
