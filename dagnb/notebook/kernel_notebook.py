"""IPython glue: which notebook this kernel runs, told to the graph so its heads and history are its own.

Frontends pass the notebook's path to its kernel in different ways:

* ``$DAGNB_NOTEBOOK``: set by hand (or by a runner) to name the notebook; it
  wins over the others;
* VS Code sets ``__vsc_ipynb_file__`` in the namespace, shortly after the
  kernel starts (so the path is looked for again before the first cell);
* Jupyter Server (JupyterLab, Notebook 7) starts the kernel with
  ``$JPY_SESSION_NAME``, which ipykernel copies to ``__session__``;
* ``dagnb run`` sets ``$JPY_SESSION_NAME`` as Jupyter Server does. Plain
  nbclient, nbval and ``jupyter execute`` set nothing.

Which candidate names a notebook is decided by :func:`dagnb.scope.notebook_path`
(engine, IPython-free). Without a path (plain IPython, a script, those
runners), the session keeps the working folder's heads and history, and says
so once, as an output dagnb's nbval plugin leaves out of comparisons.
"""

from __future__ import annotations

import os
from typing import Any

from IPython.display import publish_display_data

from dagnb.cache.store import MemoryStore
from dagnb.scope import notebook_path

__all__ = ["KernelNotebook", "fallback_note"]


def fallback_note(folder: str) -> str:
    """What a session that does not know its notebook says, once (``folder``: how its scope is described)."""
    return (
        f"dagnb does not know which notebook this kernel runs (plain IPython, a script, or a runner that does not "
        f"pass the notebook's path), so it keeps task heads, run history and explanations for the {folder}, "
        f"shared by every session there that does not know its notebook either. Cached values are shared by "
        f"content all the same. Set `DAGNB_NOTEBOOK` to the notebook's path to keep them apart."
    )


class KernelNotebook:
    """Finds the kernel's notebook and gives it to the graph: at once if known, else before the first cell.

    Responsibilities: collect what the frontend passed, settle the graph's
    scope once, and say the fallback once.
    """

    def __init__(self, graph: Any, shell: Any) -> None:
        self.graph, self.shell = graph, shell
        self.settled = False
        found = self._found()
        if found is not None:  # known at start (Jupyter Server, dagnb run): nothing to wait for
            self.graph.use_notebook(found)
            self.settled = True

    def _found(self) -> Any:
        ns = getattr(self.shell, "user_ns", {})
        candidates = [os.environ.get("DAGNB_NOTEBOOK"), ns.get("__vsc_ipynb_file__"), ns.get("__session__")]
        return notebook_path([*candidates, os.environ.get("JPY_SESSION_NAME")])

    def settle(self) -> None:
        """Before (or after) a cell the user ran: use the notebook now known, else the folder, said once."""
        if self.settled:
            return
        self.settled = True
        found = self._found()
        scope = self.graph.use_notebook(found)
        if found is None and not isinstance(self.graph.store, MemoryStore):  # a memory cache has no one to share
            publish_display_data(
                {"text/plain": fallback_note(scope.describe())}, metadata={"dagnb": {"output": "note"}}
            )
