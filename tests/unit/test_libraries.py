"""Fingerprints of the PyData libraries' values (``dagnb/fingerprints/libraries.py``).

For each library: pinned digests where the bytes are dagnb's own encoding of
stable facts (Arrow buffers and type names, tensor bytes, numpy data); values
that must never share a fingerprint (type, dtype, shape, content); values
that must (chunking, slicing, memory layout, the storage pandas picked);
the same digests in processes with other ``PYTHONHASHSEED`` values (for
every library, including those whose digest covers the library's own
serialization: polars IPC, dask tokens, a figure's pickle); and, in a fresh
interpreter, that no library is imported by dagnb itself.

torch is not in the test extra (a plain ``pip install torch`` downloads
several GB of CUDA builds): its tests run where torch is importable.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xxhash

import dagnb
from dagnb.errors import Unfingerprintable
from dagnb.fingerprints import values as hashing

pa = pytest.importorskip("pyarrow")
pl = pytest.importorskip("polars")
xr = pytest.importorskip("xarray")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
sklearn_linear = pytest.importorskip("sklearn.linear_model")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None
needs_torch = pytest.mark.skipif(
    torch is None, reason="torch is not installed (not in the test extra; see docs/reference.md)"
)


def _tensor(*args: Any, **kwargs: Any) -> Any:
    return torch.tensor(*args, **kwargs)


# ------------------------------------------------------------------ pinned digests

PINNED: list[tuple[str, Callable[[], Any], str]] = [
    ("pyarrow int64 array with a null", lambda: pa.array([1, None, 3], type=pa.int64()),
     "a615778ea4b4b76db797d59febea3798"),
    ("pyarrow string array", lambda: pa.array(["a", "bc", ""]), "b646c9dd75f9f8a1bd7f0e14cbd9664d"),
    ("pyarrow table", lambda: pa.table({"x": [0.5, 1.5], "s": ["p", "q"]}), "825dbca5e0312d3e30a2731e7fceed6d"),
    ("xarray DataArray", lambda: xr.DataArray(np.arange(6, dtype=np.int64).reshape(2, 3), dims=("y", "x"),
                                              name="v", attrs={"units": "m"}), "137bdf164f753ee6f97a2762bd0644c7"),
]
if torch is not None:
    PINNED.append(("torch float32 tensor", lambda: _tensor([[1.0, 2.0], [3.0, 4.0]]), "74b4c37c7d7d2ce05ae68ff7a83349db"))


@pytest.mark.parametrize(("make", "expected"), [p[1:] for p in PINNED], ids=[p[0] for p in PINNED])
def test_digests_stay_the_same(make: Callable[[], Any], expected: str) -> None:
    assert hashing.FORMAT == b"dagnb-fp-3", "FORMAT was bumped: regenerate every pin below"
    assert dagnb.fingerprint(make()) == expected


# ------------------------------------------------------------------ collisions

def _figure(ys: list[float], title: str = "t") -> Any:
    figure, axes = plt.subplots()
    axes.plot(ys)
    axes.set_title(title)
    plt.close(figure)
    return figure


def _figure_numbered_later(ys: list[float]) -> Any:
    """The same drawing while another figure is open: pyplot gives it another number."""
    other = plt.figure()
    figure = _figure(ys)
    plt.close(other)
    return figure


def _fitted(y: list[float], **params: Any) -> Any:
    return sklearn_linear.Ridge(**params).fit(np.arange(len(y), dtype=float).reshape(-1, 1), np.array(y))


DIFFERENT: list[tuple[str, list[Callable[[], Any]]]] = [
    ("pyarrow int32 vs int64 vs values", [
        lambda: pa.array([1, 2], pa.int32()), lambda: pa.array([1, 2], pa.int64()), lambda: pa.array([1, 3])]),
    ("pyarrow null position", [lambda: pa.array([1, None, 3]), lambda: pa.array([None, 1, 3])]),
    ("pyarrow string vs large_string vs split", [
        lambda: pa.array(["ab", "c"]), lambda: pa.array(["ab", "c"], pa.large_string()),
        lambda: pa.array(["a", "bc"])]),
    ("pyarrow array vs chunked vs table", [
        lambda: pa.array([1, 2]), lambda: pa.chunked_array([[1, 2]]), lambda: pa.table({"a": [1, 2]})]),
    ("pyarrow table column names", [lambda: pa.table({"a": [1]}), lambda: pa.table({"b": [1]})]),
    ("pyarrow nested values", [lambda: pa.array([[1, 2], [3]]), lambda: pa.array([[1], [2, 3]])]),
    ("polars dtype and values", [
        lambda: pl.DataFrame({"a": [1, 2]}), lambda: pl.DataFrame({"a": [1.0, 2.0]}),
        lambda: pl.DataFrame({"a": [1, 3]}), lambda: pl.DataFrame({"b": [1, 2]})]),
    ("polars frame vs series vs lazy", [
        lambda: pl.DataFrame({"a": [1, 2]}), lambda: pl.Series("a", [1, 2]), lambda: pl.DataFrame({"a": [1, 2]}).lazy()]),
    ("polars plans", [
        lambda: pl.DataFrame({"a": [1, 2]}).lazy().filter(pl.col("a") > 1),
        lambda: pl.DataFrame({"a": [1, 2]}).lazy().filter(pl.col("a") > 0)]),
    ("xarray dims, attrs, coords, data", [
        lambda: xr.DataArray([1, 2], dims="x"), lambda: xr.DataArray([1, 2], dims="y"),
        lambda: xr.DataArray([1, 2], dims="x", attrs={"u": 1}),
        lambda: xr.DataArray([1, 2], dims="x", coords={"x": [5, 6]}), lambda: xr.DataArray([1, 3], dims="x")]),
    ("xarray array vs dataset", [
        lambda: xr.DataArray([1, 2], dims="x", name="v"), lambda: xr.Dataset({"v": ("x", [1, 2])})]),
    ("scikit-learn params and fitted state", [
        lambda: sklearn_linear.Ridge(), lambda: sklearn_linear.Ridge(alpha=2.0),
        lambda: _fitted([1.0, 2.0, 3.0]), lambda: _fitted([1.0, 2.0, 4.0]), lambda: sklearn_linear.Lasso()]),
    ("dask arrays", [lambda: da.ones(4, chunks=2), lambda: da.zeros(4, chunks=2), lambda: da.ones(4, chunks=4)]),
    ("figures", [lambda: _figure([1, 2, 3]), lambda: _figure([1, 2, 4]), lambda: _figure([1, 2, 3], "other")]),
]
if torch is not None:
    DIFFERENT.append(("torch dtype, shape, values, grad", [
        lambda: _tensor([1.0, 2.0]), lambda: _tensor([1.0, 2.0], dtype=torch.float64), lambda: _tensor([[1.0, 2.0]]),
        lambda: _tensor([1.0, 3.0]), lambda: _tensor([1.0, 2.0], requires_grad=True),
        lambda: torch.nn.Parameter(_tensor([1.0, 2.0]))]))


@pytest.mark.parametrize("makers", [d[1] for d in DIFFERENT], ids=[d[0] for d in DIFFERENT])
def test_different_values_never_share_a_fingerprint(makers: list[Callable[[], Any]]) -> None:
    digests = [dagnb.fingerprint(make()) for make in makers]
    assert len(set(digests)) == len(digests), digests


# ------------------------------------------------------------------ equalities


def _garbage_under_the_null() -> Any:
    """``[1, null, 3]`` whose null slot holds 99 (Arrow leaves null slots to the writer)."""
    values = pa.py_buffer(np.array([1, 99, 3], dtype=np.int64).tobytes())
    validity = pa.py_buffer(bytes([0b101]))
    return pa.Array.from_buffers(pa.int64(), 3, [validity, values], null_count=1)


SAME: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("chunked vs one chunk", lambda: pa.chunked_array([[1, 2], [3]]), lambda: pa.chunked_array([[1, 2, 3]])),
    ("string chunks vs one", lambda: pa.chunked_array([["a"], ["bc", None]]),
     lambda: pa.chunked_array([["a", "bc", None]])),
    ("slice vs copy", lambda: pa.array(["x", "yy", "zzz", "w"])[1:3], lambda: pa.array(["yy", "zzz"])),
    ("bool slice vs copy", lambda: pa.array([True, False, True, True])[1:], lambda: pa.array([False, True, True])),
    ("what a null slot holds", _garbage_under_the_null, lambda: pa.array([1, None, 3], pa.int64())),
    ("dictionary chunks", lambda: pa.chunked_array([pa.array(["a", "b"]).dictionary_encode(),
                                                    pa.array(["b"]).dictionary_encode()]),
     lambda: pa.chunked_array([pa.array(["a", "b", "b"]).dictionary_encode()])),
    ("table of chunks vs combined", lambda: pa.concat_tables([pa.table({"a": [1]}), pa.table({"a": [2]})]),
     lambda: pa.table({"a": [1, 2]})),
    ("polars chunks vs rechunked", lambda: pl.concat([pl.DataFrame({"a": [1]}), pl.DataFrame({"a": [2]})], rechunk=False),
     lambda: pl.DataFrame({"a": [1, 2]})),
    ("two figures drawn alike (other pyplot numbers, other transform ids)",
     lambda: _figure([1, 2, 3]), lambda: _figure_numbered_later([1, 2, 3])),
    ("pandas str column: Arrow vs Python storage",
     lambda: pd.Series(["a", None, "é"], dtype=pd.StringDtype("pyarrow", na_value=np.nan)),
     lambda: pd.Series(["a", None, "é"], dtype=pd.StringDtype("python", na_value=np.nan))),
    ("pandas string column: Arrow vs Python storage",
     lambda: pd.Series(["a", None, ""], dtype="string[pyarrow]"), lambda: pd.Series(["a", None, ""], dtype="string[python]")),
    ("pandas Arrow strings in chunks vs one",
     lambda: pd.concat([pd.Series(["a"], dtype="string[pyarrow]"), pd.Series(["bc"], dtype="string[pyarrow]")],
                       ignore_index=True),
     lambda: pd.Series(["a", "bc"], dtype="string[pyarrow]")),
]
if torch is not None:
    SAME += [
        ("transposed view vs contiguous copy", lambda: torch.arange(6).reshape(2, 3).T,
         lambda: torch.arange(6).reshape(2, 3).T.contiguous()),
        ("conjugate view vs resolved", lambda: torch.tensor([1 + 2j]).conj(), lambda: torch.tensor([1 - 2j])),
    ]


@pytest.mark.parametrize(("left", "right"), [s[1:] for s in SAME], ids=[s[0] for s in SAME])
def test_equal_values_share_a_fingerprint(left: Callable[[], Any], right: Callable[[], Any]) -> None:
    assert dagnb.fingerprint(left()) == dagnb.fingerprint(right())


def test_a_pandas_arrow_string_column_hashes_like_its_object_array() -> None:
    """The fast path feeds the very bytes the object path would: pins made without pyarrow still hold."""
    series = pd.Series(["a", None, "ccc", "é"] * 3, dtype=pd.StringDtype("pyarrow", na_value=np.nan))  # pandas 3: "str"
    assert series.array._pa_array is not None  # stored in Arrow here
    slow = xxhash.xxh3_128(hashing.FORMAT)
    hashing._feed(series.name, slow)  # as _feed_series would, with the values as Python objects
    from dagnb.fingerprints import arrays as _arrays

    slow_frame = xxhash.xxh3_128()
    slow_frame.update(b"S")
    hashing._text(slow_frame, "pandas.Series")
    hashing._feed(series.name, slow_frame)
    _arrays._feed_index(series.index, slow_frame)
    hashing._text(slow_frame, str(series.dtype))
    _arrays._feed_ndarray(np.asarray(series.array, dtype=object), slow_frame)
    fast_frame = xxhash.xxh3_128()
    _arrays._feed_series(series, fast_frame)
    assert fast_frame.hexdigest() == slow_frame.hexdigest()


def test_an_estimator_class_of_the_notebook_takes_the_generic_path() -> None:
    from sklearn.base import BaseEstimator

    module = types.ModuleType("dagnb_notebook_probe")  # found by name, as `__main__` is for a notebook
    sys.modules[module.__name__] = module
    module.BaseEstimator = BaseEstimator
    exec("class Model(BaseEstimator):\n    def __init__(self, k=1):\n        self.k = k\n", module.__dict__)
    model = module.Model(k=2)
    generic = xxhash.xxh3_128(hashing.FORMAT)
    hashing._feed_pickle(model, generic)
    assert dagnb.fingerprint(model) == generic.hexdigest()


@needs_torch
def test_a_meta_tensor_has_no_bytes_and_says_so() -> None:
    with pytest.raises(Unfingerprintable, match="has no plain bytes"):
        dagnb.fingerprint(torch.empty(3, device="meta"))


def test_dask_tokenizes_without_computing() -> None:
    computed: list[int] = []

    def load(i: int) -> int:
        computed.append(i)
        return i

    delayed = dask.delayed(load, pure=True)(1)
    assert dagnb.fingerprint(delayed) == dagnb.fingerprint(dask.delayed(load, pure=True)(1))
    assert computed == []


# ------------------------------------------------------------ across processes and seeds

PROBE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, pandas as pd, pyarrow as pa, polars as pl, xarray as xr, dask.array as da
    import dask.dataframe as dd
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.linear_model import Ridge
    import dagnb

    figure, axes = plt.subplots()
    axes.plot([1, 2, 3], label="line")
    axes.legend()
    figure.canvas.draw()
    words = [f"w{i}" for i in range(40)]
    values = {
        "arrow table": pa.table({"w": words, "n": list(range(40))}),
        "polars frame": pl.DataFrame({"w": words, "n": list(range(40))}),
        "polars plan": pl.DataFrame({"n": [1, 2]}).lazy().filter(pl.col("n") > 1).select(pl.col("n") * 2),
        "xarray dataset": xr.Dataset({"v": ("x", np.arange(4.0))}, coords={"x": list("abcd")}, attrs={"s": {1, 2}}),
        "fitted ridge": Ridge().fit(np.arange(8.0).reshape(-1, 1), np.arange(8.0) ** 2),
        "dask array": (da.arange(10, chunks=5) * 2).sum(),
        "dask frame": dd.from_pandas(pd.DataFrame({"w": words}), npartitions=2).w.str.upper(),
        "figure": figure,
        "pandas arrow strings": pd.DataFrame({"w": pd.Series(words, dtype="string[pyarrow]")}),
    }
    try:
        import torch
        values["torch"] = torch.linspace(0, 1, 5)
    except ImportError:
        pass
    print(json.dumps({name: dagnb.fingerprint(value) for name, value in values.items()}))
    """
)


def _digests_in_subprocess(seed: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_library_fingerprints_do_not_depend_on_the_process_or_the_hash_seed() -> None:
    first, second = _digests_in_subprocess("1"), _digests_in_subprocess("2")
    assert first == second
    assert len(set(first.values())) == len(first)


# ------------------------------------------------------------ no library is imported

CLEAN = textwrap.dedent(
    """
    import json, sys, types
    import dagnb

    graph = dagnb.Graph()

    @graph.task
    def a():
        return {"rows": [1, 2, 3], "tags": {"x", "y"}, "name": "a"}

    @graph.task
    def b(a):
        return len(a["rows"])

    graph.run()
    dagnb.fingerprint([types.SimpleNamespace(k=1), b"x", 2.5, (1, "2")])
    seen = {"plain": sorted(m for m in LIBRARIES if m in sys.modules)}
    import numpy as np
    dagnb.fingerprint(np.arange(3))
    seen["numpy"] = sorted(m for m in LIBRARIES if m in sys.modules)
    import polars as pl
    dagnb.fingerprint(pl.DataFrame({"a": [1]}))
    seen["polars"] = sorted(m for m in LIBRARIES if m in sys.modules)
    print(json.dumps(seen))
    """
)
LIBRARIES = ["numpy", "pandas", "pyarrow", "polars", "xarray", "torch", "dask", "sklearn", "matplotlib"]


def test_no_library_is_imported_until_the_user_imports_it() -> None:
    script = f"LIBRARIES = {LIBRARIES!r}\n" + CLEAN
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    seen = json.loads(done.stdout)
    assert seen["plain"] == []
    assert seen["numpy"] == ["numpy"]
    assert seen["polars"] == ["numpy", "polars"]  # fingerprinting a polars frame needs no pyarrow


# ------------------------------------------------------------------ sizes in %dag costs


def test_output_bytes_of_library_values_never_raise_and_count_buffers() -> None:
    from dagnb.run.costs import value_nbytes

    dd = pytest.importorskip("dask.dataframe")
    lazy = dd.from_pandas(pd.DataFrame({"a": range(4)}), npartitions=2)
    with pytest.raises(NotImplementedError):
        lazy.nbytes  # noqa: B018 - dask's own property raises: dagnb must not ask it
    assert value_nbytes(lazy) > 0
    assert value_nbytes(pa.array(np.arange(1000, dtype=np.int64))) == 8000
    assert value_nbytes(xr.DataArray(np.zeros(500))) == 4000
    assert value_nbytes(pl.DataFrame({"a": np.arange(1000, dtype=np.int64)})) == 8000
