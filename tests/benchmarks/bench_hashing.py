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
    """float64, int64, short strings (Python objects), datetime64 and category columns, deterministic."""
    rng = np.random.default_rng(1)
    words = np.array([f"id{i:04d}" for i in range(5_000)], dtype=object)
    return pd.DataFrame(
        {
            "x": rng.random(rows),
            "n": rng.integers(0, 1_000_000, rows, dtype=np.int64),
            "s": pd.Series(words[rng.integers(0, len(words), rows)], dtype=object),  # Python strings
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


def make_arrow_frame(rows: int) -> pd.DataFrame:
    """The mixed frame with its strings in Arrow (pandas' ``str`` dtype with pyarrow installed)."""
    frame = make_frame(rows)
    frame["s"] = frame["s"].astype(pd.StringDtype("pyarrow", na_value=float("nan")))
    return frame


def library_rows(sizes: Sizes) -> list[Row]:
    """Arrow-backed pandas strings (goal), an Arrow table and a polars frame (info), vs joblib.hash."""
    try:
        import polars as pl
        import pyarrow as pa
    except ImportError:  # the bench extra installs both
        return []
    frame = make_arrow_frame(sizes.frame_rows)
    assert frame["s"].array._pa_array is not None  # stored in Arrow: the fast path is the one measured
    t = _time_hashers(frame, sizes)
    faster = ratio(t["joblib"], t["dagnb"])
    out = [Row(f"fingerprint {sizes.frame_rows:,}-row mixed DataFrame, strings in Arrow (pyarrow) vs joblib.hash",
               ms(t["dagnb"]), ms(t["joblib"]), faster, ">= 5x", faster >= 5)]
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for label, value in (("pyarrow Table of that frame (info)", table),
                         ("polars DataFrame of that frame (info)", pl.from_arrow(table))):
        t = _time_hashers(value, sizes)
        out.append(Row(f"fingerprint {sizes.frame_rows:,}-row {label} vs joblib.hash", ms(t["dagnb"]), ms(t["joblib"]),
                       ratio(t["joblib"], t["dagnb"]), "—", None))
    return out


def rows(sizes: Sizes) -> list[Row]:
    return array_rows(sizes) + frame_rows(sizes) + library_rows(sizes)
