"""Shared test setup.

Kernels started by nbval and nbclient inherit this process's environment,
so a fresh cache directory here keeps every notebook run cold and
independent of a developer's own ``.dagnb`` folders, and a test cache key
keeps the developer's own key (``~/.local/share/dagnb/cache.key``) out of it.
"""

from __future__ import annotations

import os
import tempfile

os.environ["DAGNB_CACHE_DIR"] = tempfile.mkdtemp(prefix="dagnb-test-cache-")
os.environ["DAGNB_CACHE_KEY"] = "dagnb-test-suite-key"


_notebook_caches: dict[str, str] = {}


def pytest_runtest_setup(item: object) -> None:
    """Each notebook nbval runs gets a cache of its own (set before its kernel starts), so
    its saved outputs ("ran", "new") never depend on what other tests left in a shared cache."""
    path = str(getattr(item, "path", ""))
    if path.endswith(".ipynb"):
        if path not in _notebook_caches:
            _notebook_caches[path] = tempfile.mkdtemp(prefix="dagnb-nbval-cache-")
        os.environ["DAGNB_CACHE_DIR"] = _notebook_caches[path]
