"""Old module names, before the package was grouped into rooms, still import.

A value pickled by an older dagnb names its class by the old module (a
``FileRef`` in a cached value is ``dagnb.hashing.FileRef``), and code written
against an older dagnb may import ``dagnb.hashing``. Each old name is a thin
module that forwards every attribute to the module that holds it now, so the
class found is the same object.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

MOVED = {
    "dagnb.hashing": "dagnb.fingerprints.values",
    "dagnb._arrays": "dagnb.fingerprints.arrays",
    "dagnb._libraries": "dagnb.fingerprints.libraries",
    "dagnb.codehash": "dagnb.fingerprints.code",
    "dagnb._scopes": "dagnb.fingerprints.scopes",
    "dagnb.untracked": "dagnb.fingerprints.untracked",
    "dagnb.store": "dagnb.cache.store",
    "dagnb.diskstore": "dagnb.cache.disk",
    "dagnb.blobs": "dagnb.cache.blobs",
    "dagnb.cachedir": "dagnb.cache.folder",
    "dagnb.trust": "dagnb.cache.trust",
    "dagnb.writer": "dagnb.cache.writer",
    "dagnb.runlog": "dagnb.cache.runlog",
    "dagnb.upkeep": "dagnb.cache.upkeep",
    "dagnb.valuecopy": "dagnb.cache.valuecopy",
    "dagnb.executor": "dagnb.run.executor",
    "dagnb.backends": "dagnb.run.backends",
    "dagnb.worker": "dagnb.run.worker",
    "dagnb.dask_backend": "dagnb.run.dask_backend",
    "dagnb.aio": "dagnb.run.aio",
    "dagnb.mapping": "dagnb.run.mapping",
    "dagnb.condition": "dagnb.run.condition",
    "dagnb.costs": "dagnb.run.costs",
    "dagnb.save": "dagnb.run.save",
    "dagnb.capture": "dagnb.run.capture",
    "dagnb.magics": "dagnb.notebook.magics",
    "dagnb.follow": "dagnb.notebook.follow",
    "dagnb.status_lines": "dagnb.notebook.status_lines",
    "dagnb.kernelspec": "dagnb.notebook.kernelspec",
    "dagnb.cli": "dagnb.ci.cli",
    "dagnb.check": "dagnb.ci.check",
    "dagnb.static_plan": "dagnb.ci.static_plan",
    "dagnb.runner": "dagnb.ci.runner",
    "dagnb.nbval_plugin": "dagnb.ci.nbval_plugin",
}


class _Forward(importlib.abc.Loader):
    def exec_module(self, module: types.ModuleType) -> None:
        target = importlib.import_module(MOVED[module.__name__])

        def forward(name: str) -> Any:
            return getattr(target, name)

        module.__getattr__ = forward  # type: ignore[method-assign]
        module.__doc__ = f"Moved to :mod:`{target.__name__}`."


class _OldNames(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if name not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(name, _Forward())


def install() -> None:
    """Let the old names import (once per process)."""
    if not any(isinstance(finder, _OldNames) for finder in sys.meta_path):
        sys.meta_path.append(_OldNames())


#: Modules split out of a moved module since: fingerprints name them as the module they came from.
SPLIT = {
    "dagnb.fingerprints.stream": "dagnb.fingerprints.values",
    "dagnb.fingerprints.dispatch": "dagnb.fingerprints.values",
    "dagnb.fingerprints.pickled": "dagnb.fingerprints.values",
    "dagnb.fingerprints.own_code": "dagnb.fingerprints.code",
    "dagnb.fingerprints.modules": "dagnb.fingerprints.code",
    "dagnb.fingerprints.references": "dagnb.fingerprints.code",
    "dagnb.fingerprints.walk": "dagnb.fingerprints.code",
    "dagnb.fingerprints.edited": "dagnb.fingerprints.code",
    "dagnb.fingerprints.untracked_rules": "dagnb.fingerprints.untracked",
    "dagnb.fingerprints.untracked_syntax": "dagnb.fingerprints.untracked",
}

_OLD_NAMES = {new: old for old, new in MOVED.items()}


def named_as_before(module_name: str) -> str:
    """The name fingerprints give a dagnb module: its name before the move.

    A fingerprint that names a class or function's module (a ``FileRef``
    value, ``from dagnb import file`` read by a task) stays what it was, so
    grouping the package into rooms, or splitting a module, changed no key
    and no digest.
    """
    module_name = SPLIT.get(module_name, module_name)
    return _OLD_NAMES.get(module_name, module_name)
