"""Where code lives: the user's code (keyed by its code) or a library (keyed by its version).

Invariants:

* *User code* is any code that is not a library's: a module counts as a
  library when its file lies in the standard library or an installed
  distribution (``site-packages``); the notebook, ``%run`` scripts, modules
  beside the notebook and editable checkouts are user code. dagnb itself is
  never user code.
* A library counts by the version of the distribution that provides it
  (:func:`module_version`), the standard library by the Python version;
  nothing is imported to learn it but namespace packages.
* A user module an ``import`` inside a task names is imported when it is
  not yet (:func:`_user_module_named`): the task would import it anyway, and
  its key sees the module's code before the first run too. A library is
  never imported here.

Imports nothing of dagnb.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import site
import sys
import sysconfig
import types
from collections.abc import Mapping
from typing import Any

PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


@functools.lru_cache(maxsize=1)
def _library_roots() -> tuple[str, ...]:
    """Directories whose modules are libraries: the standard library and every site directory."""
    paths = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    try:
        paths.update(site.getsitepackages())
    except AttributeError:  # some virtualenv versions
        pass
    paths.add(site.getusersitepackages() if hasattr(site, "getusersitepackages") else None)
    return tuple(sorted(os.path.realpath(p) + os.sep for p in paths if p))


@functools.lru_cache(maxsize=4096)
def _is_library_file(path: str) -> bool:
    real = os.path.realpath(path)
    parts = set(real.split(os.sep))
    return "site-packages" in parts or "dist-packages" in parts or real.startswith(_library_roots())


def is_user_module(module: types.ModuleType) -> bool:
    """Whether ``module`` is the user's code (keyed by code) rather than a library (keyed by version)."""
    name = getattr(module, "__name__", None) or ""
    if name == "__main__":
        return True
    if name == "dagnb" or name.startswith("dagnb."):
        return False
    path = getattr(module, "__file__", None)
    if isinstance(path, str):
        return not _is_library_file(path)
    locations = list(getattr(module, "__path__", None) or ())  # a namespace package
    if locations:
        return not any(_is_library_file(p) for p in locations)
    if name in sys.builtin_module_names or getattr(getattr(module, "__spec__", None), "origin", None) == "frozen":
        return False
    return True  # made at run time (types.ModuleType): nobody installed it


def _is_user_function(fn: Any) -> bool:
    module = sys.modules.get(getattr(fn, "__module__", None) or "")
    return module is None or is_user_module(module)  # no module: exec'd code, a cell, a script


def _is_user_class(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    if module is not None and module.__name__ != "builtins":
        return is_user_module(module)
    # exec'd into a namespace without __name__ (module `builtins`): its methods tell where it lives
    return any(isinstance(v, types.FunctionType) for v in vars(cls).values())


_PLAIN = (int, float, complex, str, bytes, bool, type(None))


def is_immutable(value: Any) -> bool:
    """A value nothing can change in place: ``3``, ``"a"``, ``("a", 2)``."""
    if isinstance(value, (tuple, frozenset)):
        return all(is_immutable(v) for v in value)
    return type(value) in _PLAIN


def same_key_while_bound(obj: Any, namespace: Mapping[str, Any]) -> bool:
    """Whether ``obj``'s part of a key cannot change as long as a name stays bound to this very object.

    True for immutable values, library modules, classes and functions (a
    key holds their version), and notebook functions of ``namespace`` with
    no closure and immutable defaults, whose own global reads a caller
    checks too (their code object and defaults are compared by identity).
    False for anything a cell can change in place: data, user classes and
    modules (their state counts), functions of other modules.
    """
    if is_immutable(obj):
        return True
    if isinstance(obj, types.ModuleType):
        return not is_user_module(obj)
    if isinstance(obj, types.FunctionType):
        if not _is_user_function(obj):
            return True
        defaults = (*(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values())
        return obj.__globals__ is namespace and obj.__closure__ is None and is_immutable(defaults)
    if isinstance(obj, type):
        return not _is_user_class(obj)
    return isinstance(obj, types.BuiltinFunctionType)


def _user_module_named(name: str) -> types.ModuleType | None:
    """The user module an ``import`` inside a task brings in, imported now if it is not yet.

    Only modules outside the libraries are imported (the task would import
    them anyway), so the key sees their code before the first run too.
    """
    module = sys.modules.get(name)
    if module is None:
        try:
            spec = importlib.util.find_spec(name.split(".")[0])
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None) if spec is not None else None
        if not isinstance(origin, str) or _is_library_file(origin) or not os.path.exists(origin):
            return None
        try:
            module = importlib.import_module(name)
        except Exception:  # the task will fail with the same error when it runs
            return None
    return module if is_user_module(module) else None


# ------------------------------------------------------------ library versions


@functools.lru_cache(maxsize=1024)
def module_version(module_name: str) -> str:
    """``numpy 2.4.6``: the package and the version of the distribution that provides the module.

    The package is the import root, except in a namespace package
    (``google.cloud.storage``), which many distributions share: there it is
    the first package with a file of its own (``google.cloud.storage``),
    and the version is that of the distribution whose files hold it.
    Nothing is imported but namespace packages.
    """
    root = module_name.split(".")[0]
    if root in sys.stdlib_module_names or root == "builtins":
        return f"{root} {PYTHON}"
    package = _package_of(module_name)
    version = getattr(sys.modules.get(package), "__version__", None)
    if not isinstance(version, str):
        version = _distribution_version(package)
    return f"{package} {version or PYTHON}"


def _package_of(module_name: str) -> str:
    """The import root, or the first package below a namespace package's root."""
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        module = sys.modules.get(name)
        if module is not None:
            if getattr(module, "__file__", None) is not None:
                return name
            continue
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return name
        if spec is None or spec.origin not in (None, "namespace"):
            return name
    return module_name


def _distribution_version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    root = package.split(".")[0]
    candidates = list(dict.fromkeys([*_distributions().get(root, []), root]))
    if "." in package:  # inside a namespace package: the distribution whose files hold it
        owner = _owning_distribution(package, candidates)
        candidates = [owner] if owner else candidates
    for dist in candidates:
        try:
            return dist_version(dist)
        except (PackageNotFoundError, ValueError):
            continue
    return None


def _owning_distribution(package: str, candidates: list[str]) -> str | None:
    from importlib.metadata import PackageNotFoundError, distribution

    relative = package.replace(".", "/")
    for dist_name in candidates:
        try:
            files = distribution(dist_name).files or []
        except (PackageNotFoundError, ValueError):
            continue
        if any(str(f).replace(os.sep, "/").startswith(relative + "/") or str(f) == relative + ".py" for f in files):
            return dist_name
    return None


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return dict(packages_distributions())
