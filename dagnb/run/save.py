"""``--save PATH``: also write a task's value to a named file, for other tools.

The format follows the extension: ``.npy`` (numpy), ``.parquet`` and
``.csv`` (pandas, or a list of rows for csv), ``.json``, ``.pkl`` /
``.pickle``. ``{name}`` in the path is the task's name (``%%task`` does not
let IPython expand it). The file is written after each real run, and after a
cache hit unless this session wrote that very value there and the file is
unchanged since, to a temporary name in the same directory and renamed into
place, so a reader never sees half a file. It is a copy for others: dagnb
never reads it back.

Invariants: a copy always equals the value. An iterator is never written
(that would use it up for the tasks that read it); ``.json`` is exact or
refused (no ``NaN``, no text standing in for an array, no keys turned into
strings), with :class:`~dagnb.errors.SaveRefused` naming the fix.
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

from dagnb.errors import SaveRefused, TaskDefinitionError

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
    text = json.dumps(_exact_json(value, "the value"), indent=2, allow_nan=False)
    handle.write(text.encode())


_JSON_ATOMS = (str, int, float, bool, type(None))


def _exact_json(value: Any, where: str) -> Any:
    """``value`` as JSON types, or :class:`_Inexact` saying what JSON cannot hold exactly."""
    if isinstance(value, _JSON_ATOMS):
        if isinstance(value, float) and value != value or value in (float("inf"), float("-inf")):
            raise _Inexact(f"{where} holds {value!r}, which JSON has no form for")
        return value
    if isinstance(value, (list, tuple)):
        return [_exact_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        bad = next((k for k in value if not isinstance(k, str)), None)
        if bad is not None:
            raise _Inexact(f"{where} has the key {bad!r}, which JSON would turn into a string")
        return {k: _exact_json(v, f"{where}[{k!r}]") for k, v in value.items()}
    return _exact_json(_library_json(value, where), where)


def _library_json(value: Any, where: str) -> Any:
    """numpy arrays and scalars as lists and numbers; pandas frames and series with a default index as rows."""
    module = type(value).__module__.split(".")[0]
    if module == "numpy" and hasattr(value, "tolist") and getattr(value.dtype, "kind", "O") in "biuf":
        return value.tolist()
    if module == "pandas" and hasattr(value, "index") and _default_index(value.index):
        if not hasattr(value, "columns"):
            return value.tolist()
        if all(isinstance(c, str) for c in value.columns):
            return value.to_dict(orient="records")
    raise _Inexact(f"{where} is a `{type(value).__module__}.{type(value).__qualname__}`, which has no exact JSON form")


def _default_index(index: Any) -> bool:
    return type(index).__name__ == "RangeIndex" and index.start == 0 and index.step == 1 and index.name is None


class _Inexact(ValueError):
    """What JSON cannot hold exactly (turned into :class:`SaveRefused` with the task and path)."""


def _pickle(value: Any, handle: Any) -> None:
    pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)


FORMATS: dict[str, Callable[[Any, Any], None]] = {
    ".npy": _npy,
    ".parquet": _parquet,
    ".csv": _csv,
    ".json": _json,
    ".pkl": _pickle,
    ".pickle": _pickle,
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


def _is_iterator(value: Any) -> bool:
    try:
        return iter(value) is value
    except TypeError:  # not iterable at all
        return False
    except Exception:  # a value whose __iter__ raises is no iterator we could consume
        return False


def saved_path(task: str, pattern: str) -> Path:
    return Path(pattern.format(name=task))


def save_value(task: str, pattern: str, value: Any) -> Path:
    """Write ``value`` atomically to the file ``pattern`` names; raise what the writer raises.

    Raises:
        SaveRefused: the value would be consumed (an iterator) or written inexactly (JSON).
    """
    path = saved_path(task, pattern)
    if _is_iterator(value):
        raise SaveRefused(
            task,
            str(path),
            "it is an iterator (a generator, a `map`, a file): writing it would "
            "use it up, and the tasks that read it would find it empty",
            "Return a list instead (`return list(...)`).",
        )
    if path.suffix.lower() == ".json":
        try:
            _exact_json(value, "the value")
        except _Inexact as exc:
            raise SaveRefused(
                task,
                str(path),
                f"JSON cannot hold it exactly: {exc}",
                "Save it as `.npy`, `.parquet` or `.pkl`, or make it plain (finite numbers, "
                "strings, lists, dicts with string keys).",
            ) from None
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
