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
