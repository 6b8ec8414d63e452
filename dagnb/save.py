"""``--save PATH``: also write a task's value to a named file, for other tools.

The format follows the extension: ``.npy`` (numpy), ``.parquet`` and
``.csv`` (pandas, or a list of rows for csv), ``.json``, ``.pkl`` /
``.pickle``. ``{name}`` in the path is the task's name. The file is written
after each real run (and after a cache hit when the file is missing), to a
temporary name in the same directory and renamed into place, so a reader
never sees half a file. It is a copy for others: dagnb never reads it back.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import TaskDefinitionError

__all__ = ["FORMATS", "check_save_path", "save_value", "saved_path"]


def _npy(value: Any, handle: Any) -> None:
    import numpy as np

    np.save(handle, value, allow_pickle=False)


def _parquet(value: Any, handle: Any) -> None:
    value.to_parquet(handle)


def _csv(value: Any, handle: Any) -> None:
    if hasattr(value, "to_csv"):
        value.to_csv(handle, index=False)
        return
    import io

    text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
    rows = list(value)
    if rows and isinstance(rows[0], dict):
        writer = csv.DictWriter(text, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        csv.writer(text).writerows(rows)
    text.flush()
    text.detach()


def _json(value: Any, handle: Any) -> None:
    handle.write(json.dumps(value, indent=2, default=str).encode())


def _pickle(value: Any, handle: Any) -> None:
    pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)


FORMATS: dict[str, Callable[[Any, Any], None]] = {
    ".npy": _npy, ".parquet": _parquet, ".csv": _csv, ".json": _json, ".pkl": _pickle, ".pickle": _pickle,
}


def check_save_path(task: str, pattern: str) -> None:
    """Refuse a path whose extension names no known format (at definition, not after a long run)."""
    suffix = Path(pattern).suffix.lower()
    if suffix not in FORMATS:
        raise TaskDefinitionError(
            f"`--save {pattern}` has the extension `{suffix or 'none'}`, which names no format dagnb writes.",
            f"Use one of {', '.join(FORMATS)}.",
            task,
        )
    try:
        pattern.format(name=task)
    except (KeyError, IndexError, ValueError) as exc:
        raise TaskDefinitionError(
            f"`--save {pattern}` has a placeholder other than `{{name}}` ({exc}).", "Use `{name}` or none.", task
        ) from None


def saved_path(task: str, pattern: str) -> Path:
    return Path(pattern.format(name=task))


def save_value(task: str, pattern: str, value: Any) -> Path:
    """Write ``value`` atomically to the file ``pattern`` names; raise what the writer raises."""
    path = saved_path(task, pattern)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            FORMATS[path.suffix.lower()](value, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
