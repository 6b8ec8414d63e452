"""Which task each notebook cell defines: renaming a task's function in its cell renames the task.

A ``%%task`` cell is one task. When the function in a cell gets a new name,
the task of the old name is gone from the notebook's text: keeping it would
leave a task no cell shows, still planned and run. So a cell's new
definition replaces the task the same cell defined before. A cell is known
by the id the frontend gives it; without one (an old frontend, plain
IPython) nothing is replaced.

No IPython here: the magics pass the cell id they were given.
"""

from __future__ import annotations

from collections.abc import Container

__all__ = ["CellTasks"]


class CellTasks:
    """The task each cell defined last.

    Responsibilities:
        * remember, per cell id, the name of the task it defines;
        * on a new definition, name the task the cell defined before, if it
          was another one and is still defined (the task to drop);
        * forget a dropped task, so that a cell defining its name later is
          not taken for the cell that defined it.
    """

    def __init__(self) -> None:
        self._by_cell: dict[str, str] = {}

    def defines(self, cell_id: str | None, name: str, defined: Container[str]) -> str | None:
        """Cell ``cell_id`` now defines ``name``: the task it replaces (renamed away), else None."""
        if cell_id is None:
            return None
        old = self._by_cell.get(cell_id)
        self._by_cell[cell_id] = name
        if old is None or old == name or old not in defined:
            return None
        return old

    def forget(self, name: str) -> None:
        """Task ``name`` is dropped: no cell defines it any more."""
        self._by_cell = {cell: task for cell, task in self._by_cell.items() if task != name}
