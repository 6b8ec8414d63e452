"""Code edited on disk but not reloaded: said once, because tasks keep using (and keying by) the loaded code.

Invariants:

* The key follows the code that runs, never the file: this module only
  warns (:class:`~dagnb.errors.LocalModuleChangedWarning`), once per version
  of a file, and changes no digest.
* Only a file modified since this process started can have been edited
  after its import; an older file that compiles differently was changed by
  an import hook (pytest rewrites assertions), not by the user.
* A file that cannot be read or compiled says nothing.

Imports :mod:`.own_code` and :mod:`dagnb.errors` only.
"""

from __future__ import annotations

import functools
import os
import time
import types
from typing import Any

from dagnb.errors import LocalModuleChangedWarning, warn_at
from dagnb.fingerprints.own_code import _FUTURE_FLAGS, _bytecode_digest, _code_of, _in_memory_source

_CHECKED: set[tuple[str, int, int]] = set()  # (file, mtime, size) already compared with the loaded code


@functools.lru_cache(maxsize=1)
def _process_started() -> float:
    """When this process started (Linux), else when dagnb was first imported: no import happened before."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration, AttributeError):
        return _IMPORTED


_IMPORTED = time.time()


def _warn_if_edited_on_disk(fn: Any) -> None:
    """Say once when a file with user code no longer compiles to the code loaded from it.

    Only a file modified since this process started can have been edited
    after its import; an older file that compiles differently was changed by
    an import hook (pytest rewrites assertions), not by the user.
    """
    code = _code_of(fn)
    if code is None or _in_memory_source(code):
        return
    path = code.co_filename
    try:
        stat = os.stat(path)
    except OSError:  # exec'd code, a file since deleted
        return
    marker = (path, stat.st_mtime_ns, stat.st_size)
    if marker in _CHECKED or stat.st_mtime <= _process_started() + 1:  # the boot time has 1 s resolution
        return
    _CHECKED.add(marker)
    on_disk = _compiled_digests(path, code.co_flags & _FUTURE_FLAGS)
    namespace = getattr(fn, "__globals__", None)  # the module's dict, or the namespace %run ran the script in
    if on_disk is None or not isinstance(namespace, dict):
        return
    loaded = _loaded_digests(namespace, path)
    if all(on_disk.get(name) == digest for name, digest in loaded.items()):
        return
    file = os.path.basename(path)
    name = str(namespace.get("__name__", "__main__"))
    if name == "__main__":  # functions brought in with %run
        what, fix = f"the functions `%run {file}` defined", f"Run `%run {file}` again"
    else:
        what, fix = (
            f"`{name}` was imported",
            f"Run `importlib.reload({name})`, or `%load_ext autoreload` then `%autoreload 2`,",
        )
    warn_at(
        fn,
        f"`{file}` changed on disk after {what}: tasks use the code loaded in the kernel (and are keyed "
        f"by it), not the file. {fix} to use the new code.",
        LocalModuleChangedWarning,
    )


def _loaded_digests(namespace: dict[str, Any], path: str) -> dict[str, str]:
    """The bytecode digest of each function (and method) in ``namespace`` that was loaded from ``path``."""
    found: dict[str, str] = {}
    for value in list(namespace.values()):
        members = vars(value).values() if isinstance(value, type) else (value,)
        for member in members:
            func = getattr(member, "__func__", member)
            code = _code_of(func) if isinstance(func, types.FunctionType) else None
            if code is not None and code.co_filename == path:
                found[func.__qualname__.replace("<locals>.", "")] = _bytecode_digest(code)
    return found


def _compiled_digests(path: str, flags: int) -> dict[str, str] | None:
    """The bytecode digest of every function in the file as it is on disk now, by qualified name.

    ``flags``: the ``__future__`` features the loaded code was compiled with (IPython passes the
    notebook's on to ``%run`` scripts).
    """
    try:
        with open(path, "rb") as handle:
            code = compile(handle.read(), path, "exec", flags=flags, dont_inherit=True)
    except (OSError, SyntaxError, ValueError):
        return None
    found: dict[str, str] = {}
    stack: list[tuple[str, types.CodeType]] = [("", code)]
    while stack:
        prefix, current = stack.pop()
        for const in current.co_consts:
            if isinstance(const, types.CodeType):
                name = f"{prefix}{const.co_name}"
                found.setdefault(name, _bytecode_digest(const))
                stack.append((f"{name}.", const))
    return found
