"""Shared test setup.

Kernels started by nbval and nbclient inherit this process's environment,
so a fresh cache directory here keeps every notebook run cold and
independent of a developer's own ``.dagnb`` folders.
"""

from __future__ import annotations

import os
import tempfile

os.environ["DAGNB_CACHE_DIR"] = tempfile.mkdtemp(prefix="dagnb-test-cache-")
