"""The values in the golden caches, shared by the generators and ``tests/reliability/test_format.py``.

Each entry: key -> (task, value, metadata). Changing anything here means
regenerating the fixtures (``make_format1.py``, ``make_format2.py``), which
is what a change of the on-disk format must never require silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

KEY = b"dagnb-test-suite-key-of-32-bytes-or-more"  # the test suite's key file (root conftest.py)
KEY_FORMAT_2 = b"dagnb-test-suite-key"  # what format-2/ was signed with (the suite's key until format 3)
CREATED = 1_700_000_000.0


def values() -> dict[str, tuple[str, Any, dict[str, Any]]]:
    rng = np.random.default_rng(2)
    return {
        "key-raw-1": ("raw", rng.standard_normal(64), {"parts": {"code": "c-raw"}, "duration": 1.25}),
        "key-raw-2": ("raw", np.arange(12, dtype=np.int32).reshape(3, 4), {"parts": {"code": "c-raw-2"}}),
        "key-clean": ("clean", {"rows": [1, 2, 3], "name": "clean", "nested": (1.5, None, b"bytes")},
                      {"parts": {"code": "c-clean"}, "inputs": {"raw": "upstream fp"},
                       "outputs": [{"name": "stdout", "text": "cleaned 3 rows\n"}]}),
        "key-label": ("label", "a string value", {"parts": {"code": "c-label"}}),
        "key-count": ("count", 42, {"parts": {"code": "c-count"}}),
        "key-same": ("copy", [1, 2, 3], {"parts": {"code": "c-copy"}}),  # equal value, own key
        "key-same-2": ("copy2", [1, 2, 3], {"parts": {"code": "c-copy2"}}),  # stored once with key-same
    }


# The fingerprints format-3/ to format-5/ were written with (fingerprint format
# 2): a later format fingerprints these values anew, and the stored rows keep
# these. make_format5.py writes these, so format-5/ regenerated is the same
# whatever the fingerprint format of the day (the older generators ran with the
# code of their format, and format-1/ and format-2/ predate these digests).
FINGERPRINTS = {
    "key-raw-1": "9566f66c8fd3a1efbdc2954b2689ffc9",
    "key-raw-2": "609958fb1cec774b137a3320a0eba994",
    "key-clean": "f8ca0a174bc61af1b9b58530868395fa",
    "key-label": "d56bc02fd1e4ca6f2bc71e1682c692bf",
    "key-count": "cf72914f3786adcf3d8bad08e622c5f0",
    "key-same": "ebf031dcba03edecfea813f0562444b6",
    "key-same-2": "ebf031dcba03edecfea813f0562444b6",
}

UNSTORED = ("key-unstored", "huge", "fingerprint-of-an-unpicklable-value")  # an entry without a value
HEADS = {"raw": "key-raw-2", "clean": "key-clean", "label": "key-label"}
HITS = [("key-raw-1", 2.5), ("key-raw-1", 2.5), ("key-clean", 0.75)]
# format 3 signs the run history: one recorded run, whose task rows name the keys above
RUN = (1_700_000_100.0, 1_700_000_102.5, [("raw", "done", "new", "key-raw-2", 1.25, "main"),
                                          ("clean", "cached", "", "key-clean", 0.0, "main"),
                                          ("label", "failed", "ValueError: no", None, 0.5, "main")])
# format 5 keeps heads, hits and runs per notebook: HEADS, HITS and RUN are a.ipynb's; b.ipynb has these
B_HEAD = ("raw", "key-raw-1")
B_RUN = (1_700_000_200.0, 1_700_000_201.0, [("raw", "cached", "", "key-raw-1", 0.0, "main")])
