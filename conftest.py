"""Shared test setup.

Kernels started by nbval and nbclient inherit this process's environment,
so a fresh cache directory here keeps every notebook run cold and
independent of a developer's own ``.dagnb`` folders, and a test key file
(``$XDG_DATA_HOME/dagnb/cache.key`` in a fresh folder) keeps the developer's
own key (``~/.local/share/dagnb/cache.key``) out of it. The key is a file,
not ``$DAGNB_CACHE_KEY``: a shared key would switch fingerprints to BLAKE3,
and the suite tests the default (tests of a shared cache set it themselves).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_KEY = b"dagnb-test-suite-key-of-32-bytes-or-more"  # tests/golden/golden_values.py signs with it too

os.environ["DAGNB_CACHE_DIR"] = tempfile.mkdtemp(prefix="dagnb-test-cache-")
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="dagnb-test-data-")
os.environ.pop("DAGNB_CACHE_KEY", None)
os.environ.pop("DAGNB_FINGERPRINT", None)
_key = Path(os.environ["XDG_DATA_HOME"]) / "dagnb" / "cache.key"
_key.parent.mkdir(mode=0o700)
_key.write_bytes(TEST_KEY)
_key.chmod(0o600)


_notebook_caches: dict[str, str] = {}


def pytest_runtest_setup(item: object) -> None:
    """Each notebook nbval runs gets a cache of its own (set before its kernel starts), so
    its saved outputs ("ran", "new") never depend on what other tests left in a shared cache."""
    path = str(getattr(item, "path", ""))
    if path.endswith(".ipynb"):
        if path not in _notebook_caches:
            _notebook_caches[path] = tempfile.mkdtemp(prefix="dagnb-nbval-cache-")
        os.environ["DAGNB_CACHE_DIR"] = _notebook_caches[path]



@pytest.fixture(autouse=True)
def _value_files(request: pytest.FixtureRequest) -> Iterator[None]:
    """``@pytest.mark.value_files``: no value is small enough to live in its row, so each one has a file."""
    if request.node.get_closest_marker("value_files") is None:
        yield
        return
    import dagnb.cache.writer

    saved, dagnb.cache.writer.ROW_LIMIT = dagnb.cache.writer.ROW_LIMIT, 0
    try:
        yield
    finally:
        dagnb.cache.writer.ROW_LIMIT = saved
