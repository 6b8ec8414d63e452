"""Reading an ``.ipynb`` file, once, the same way for every ``dagnb`` verb.

``dagnb check`` (and its ``--plan``) and ``dagnb run`` read the same files:
what counts as a notebook, which language it is for, a cell's text and the
Python its IPython syntax stands for are decided here, so the verbs never
disagree about a file.

Invariants:
    * nothing in a notebook runs: IPython syntax is turned into Python by
      IPython's own input transformer, which executes nothing;
    * valid JSON is not enough: a notebook is an object with ``cells`` (a
      list) and ``nbformat``; anything else raises ``ValueError`` (a file
      that is not UTF-8 raises ``UnicodeDecodeError``, a ``ValueError`` too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["cell_text", "notebook_cells", "notebook_language", "read_notebook", "to_python"]


def read_notebook(path: str | Path) -> dict[str, Any]:
    """The notebook at ``path`` as JSON, checked to have the shape of one.

    Raises:
        ValueError: not JSON, or JSON without the ``cells`` and ``nbformat`` of a notebook.
        OSError: the file cannot be read.
    """
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list) or "nbformat" not in nb:
        raise ValueError("it is JSON, but without the `cells` and `nbformat` of a notebook")
    return nb


def notebook_language(nb: Any) -> str:
    """The language a notebook's kernelspec (else its language_info) names; ``""`` when it names none."""
    metadata = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    kernelspec, info = metadata.get("kernelspec"), metadata.get("language_info")
    language = (kernelspec.get("language") if isinstance(kernelspec, dict) else None) or (
        info.get("name") if isinstance(info, dict) else None
    )
    return language if isinstance(language, str) else ""


def cell_text(source: Any) -> str:
    """A cell's source as one string (a notebook file may store it as a list of lines)."""
    return "".join(source) if isinstance(source, list) else str(source)


def notebook_cells(nb: Any) -> list[tuple[str, str]]:
    """``(cell_type, source)`` of every cell, markdown included, in order (positions count from 1 over all)."""
    return [(c.get("cell_type"), cell_text(c.get("source", ""))) for c in nb.get("cells", [])]


def to_python(source: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``, ``x?``) as the Python it stands for; nothing runs."""
    from IPython.core.inputtransformer2 import TransformerManager  # the CLI only: the engine stays IPython-free

    return str(TransformerManager().transform_cell(source))  # type: ignore[no-untyped-call]
