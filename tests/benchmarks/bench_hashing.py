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


MODEL_CELL = """
import numpy as np

class Scaler:
    def fit(self, X):
        self.mean_, self.scale_ = X.mean(axis=0), X.std(axis=0) + 1e-12
        return self
    def transform(self, X):
        return (X - self.mean_) / self.scale_

class LinearModel(Scaler):
    def __init__(self, alpha=1.0, max_iter=100):
        self.alpha, self.max_iter = alpha, max_iter
    def fit(self, X, y):
        super().fit(X)
        Z = self.transform(X)
        self.coef_ = np.linalg.solve(Z.T @ Z + self.alpha * np.eye(Z.shape[1]), Z.T @ y)
        return self
    def predict(self, X):
        return self.transform(X) @ self.coef_
    def score(self, X, y):
        return 1 - ((self.predict(X) - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    def get_params(self):
        return {"alpha": self.alpha, "max_iter": self.max_iter}
    def __repr__(self):
        return f"LinearModel(alpha={self.alpha})"
"""


def _notebook() -> Any:
    """A notebook's namespace as a module (so joblib can pickle its classes by reference)."""
    import linecache
    import sys
    import types

    module = sys.modules.get("bench_notebook")
    if module is None:
        module = sys.modules["bench_notebook"] = types.ModuleType("bench_notebook")
        linecache.cache["<bench-cell>"] = (len(MODEL_CELL), None, MODEL_CELL.splitlines(True), "<bench-cell>")
        exec(compile(MODEL_CELL, "<bench-cell>", "exec"), module.__dict__)  # noqa: S102 - the benchmark's cell
    return module


def _notebook_model(features: int) -> Any:
    """A fitted model of a class defined in a notebook cell (its methods are part of its fingerprint)."""
    module = _notebook()
    rng = np.random.default_rng(2)
    X = rng.random((2_000, features))
    return module.LinearModel(alpha=0.5).fit(X, X @ rng.random(features))


def code_rows(sizes: Sizes) -> list[Row]:
    """Values that carry code: their fingerprint covers their class's methods (and base classes)."""
    model = _notebook_model(200)
    many = [_notebook_model(3) for _ in range(20)] * (50 if sizes.quick else 500)
    out = []
    for label, value in (("fingerprint a fitted notebook model (200 features, 6 methods, a base class)", model),
                         (f"fingerprint a list of {len(many):,} fitted notebook models", many)):
        ours = best_of_call(lambda v=value: dagnb.fingerprint(v), sizes.repeat)
        theirs = best_of_call(lambda v=value: joblib.hash(v), sizes.slow_repeat)
        out.append(Row(f"{label} vs joblib.hash (which sees no code)", ms(ours), ms(theirs), ratio(theirs, ours),
                       "information", None))
    return out


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
    return array_rows(sizes) + frame_rows(sizes) + library_rows(sizes) + code_rows(sizes)
