"""Fingerprinting throughput: ``dagnb.fingerprint`` vs raw xxh3 and ``joblib.hash``.

Every task input and output is fingerprinted, so hashing speed bounds how
cheap a cache hit on large data can be. Raw ``xxh3_128`` over the array's
buffer is the ceiling (dagnb adds dtype, shape and framing around the same
hash); ``joblib.hash`` (md5 over a pickle stream) is what a joblib-based
cache pays for the same question.
"""

from __future__ import annotations

from typing import Any

import joblib
import numpy as np
import pandas as pd
import xxhash
from _common import Row, Sizes, best_of_call, gb_per_s, ms, ratio

import dagnb


def make_array(nbytes: int) -> np.ndarray:
    return np.random.default_rng(0).random(nbytes // 8)


def make_frame(rows: int) -> pd.DataFrame:
    """float64, int64, short strings, datetime64 and category columns, deterministic."""
    rng = np.random.default_rng(1)
    words = np.array([f"id{i:04d}" for i in range(5_000)], dtype=object)
    return pd.DataFrame(
        {
            "x": rng.random(rows),
            "n": rng.integers(0, 1_000_000, rows, dtype=np.int64),
            "s": words[rng.integers(0, len(words), rows)],
            "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**9, rows), unit="s"),
            "c": pd.Categorical.from_codes(rng.integers(0, 12, rows), [f"cat{i}" for i in range(12)]),
        }
    )


def _time_hashers(value: Any, sizes: Sizes) -> dict[str, float]:
    times = {"dagnb": best_of_call(lambda: dagnb.fingerprint(value), sizes.repeat)}
    if isinstance(value, np.ndarray):
        times["xxh3"] = best_of_call(lambda: xxhash.xxh3_128(value.data).hexdigest(), sizes.repeat)
    times["joblib"] = best_of_call(lambda: joblib.hash(value), sizes.slow_repeat)
    return times


def array_rows(sizes: Sizes) -> list[Row]:
    arr = make_array(sizes.array_bytes)
    t = _time_hashers(arr, sizes)
    label = f"fingerprint {sizes.array_bytes // 2**20} MiB float64 array"
    dagnb_text = f"{ms(t['dagnb'])} ({gb_per_s(arr.nbytes, t['dagnb'])})"
    vs_raw, vs_joblib = ratio(t["xxh3"], t["dagnb"]), ratio(t["joblib"], t["dagnb"])
    return [
        Row(f"{label} vs raw xxh3_128", dagnb_text, f"{ms(t['xxh3'])} ({gb_per_s(arr.nbytes, t['xxh3'])})",
            vs_raw, ">= 0.7x raw speed", vs_raw >= 0.7),
        Row(f"{label} vs joblib.hash", dagnb_text, f"{ms(t['joblib'])} ({gb_per_s(arr.nbytes, t['joblib'])})",
            vs_joblib, ">= 10x", vs_joblib >= 10),
    ]


def frame_rows(sizes: Sizes) -> list[Row]:
    frame = make_frame(sizes.frame_rows)
    t = _time_hashers(frame, sizes)
    faster = ratio(t["joblib"], t["dagnb"])
    label = f"fingerprint {sizes.frame_rows:,}-row mixed DataFrame vs joblib.hash"
    return [Row(label, ms(t["dagnb"]), ms(t["joblib"]), faster, ">= 5x", faster >= 5)]


def rows(sizes: Sizes) -> list[Row]:
    return array_rows(sizes) + frame_rows(sizes)
