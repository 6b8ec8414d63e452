"""Fingerprints of numpy arrays and pandas objects, registered lazily by :mod:`dagnb.fingerprints.dispatch`.

Arrays hash as dtype + shape + C-order bytes, so memory layout never matters
and shape or dtype always does. Frames hash their schema (column and index
labels, dtypes) and then each column's buffers; strings go in bulk (lengths
plus one UTF-8 join) rather than one pickle per element.
"""

from __future__ import annotations

import sys
from typing import Any

from dagnb.fingerprints.arrow import feed_arrow_column, feed_arrow_strings_as_objects, is_arrow_text
from dagnb.fingerprints.dispatch import _feed
from dagnb.fingerprints.pickled import _feed_pickle
from dagnb.fingerprints.stream import _blob, _qualname, _text

__all__ = ["register_numpy", "register_pandas"]


def _pandas_name(obj: Any) -> str:
    """``pandas.RangeIndex`` whatever module path the pandas version reports (3.x moved them)."""
    cls = type(obj)
    return f"pandas.{cls.__qualname__}" if cls.__module__.startswith("pandas") else _qualname(cls)


def register_numpy(registry: Any) -> None:
    np = sys.modules["numpy"]
    registry.register(np.ndarray)(_feed_ndarray)
    registry.register(np.generic)(_feed_numpy_scalar)


def register_pandas(registry: Any) -> None:
    pd = sys.modules["pandas"]
    registry.register(pd.DataFrame)(_feed_frame)
    registry.register(pd.Series)(_feed_series)
    registry.register(pd.Index)(_feed_index)


def _dtype_text(dtype: Any) -> str:
    return str(dtype.descr) if dtype.names is not None else dtype.str


def _feed_ndarray(value: Any, h: Any) -> None:
    np = sys.modules["numpy"]
    if type(value) not in (np.ndarray, np.memmap):  # masked arrays and co. carry more state
        _feed_pickle(value, h)
        return
    h.update(b"n")
    _text(h, _dtype_text(value.dtype))
    _feed(tuple(value.shape), h)
    if value.dtype.hasobject:
        _feed_object_array(value.reshape(-1), h)
        return
    flat = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
    _blob(h, flat.data)


def _feed_numpy_scalar(value: Any, h: Any) -> None:
    np = sys.modules["numpy"]
    h.update(b"g")
    _feed_ndarray(np.asarray(value), h)


def _feed_object_array(flat: Any, h: Any) -> None:
    """Strings in bulk (lengths + one UTF-8 join), anything else one by one."""
    np = sys.modules["numpy"]
    is_str = np.fromiter((type(x) is str for x in flat), dtype=bool, count=len(flat))
    h.update(b"o")
    _blob(h, is_str.view(np.uint8).data)
    strings = flat[is_str]
    lengths = np.fromiter(map(len, strings), dtype=np.int64, count=len(strings))
    _blob(h, lengths.view(np.uint8).data)
    _blob(h, "".join(strings.tolist()).encode("utf-8", "surrogatepass"))
    for item in flat[~is_str]:
        _feed(item, h)


def _feed_array_like(values: Any, h: Any) -> None:
    """A column's values: numpy buffers when the dtype has them."""
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    dtype = values.dtype
    _text(h, str(dtype))
    # pandas wraps plain numpy columns (NumpyExtensionArray): hash their buffer, not objects
    dtype = getattr(dtype, "numpy_dtype", dtype) if not isinstance(dtype, np.dtype) else dtype
    if isinstance(dtype, pd.CategoricalDtype):
        _feed((dtype.ordered,), h)
        _feed_index(dtype.categories, h)
        _feed_ndarray(np.asarray(values.codes), h)
    elif isinstance(dtype, np.dtype):
        _feed_ndarray(np.asarray(values), h)
    elif getattr(values, "_pa_array", None) is not None and "pyarrow" in sys.modules:
        _feed_arrow_backed(values, h)
    else:  # extension arrays: their object form is exact, if slower
        _feed_ndarray(np.asarray(values, dtype=object), h)


def _feed_arrow_backed(values: Any, h: Any) -> None:
    """A column pandas stores in Arrow: hashed from the Arrow buffers, never as Python objects.

    Strings (``str``, ``string[pyarrow]``) produce the very bytes of their
    object form, so a frame's fingerprint is the same with or without
    pyarrow installed (and the pinned digests hold); other Arrow types are
    hashed as Arrow columns.
    """
    column = values._pa_array
    if is_arrow_text(column.type):
        feed_arrow_strings_as_objects(column, values.dtype.na_value, h)
        return
    h.update(b"A")
    feed_arrow_column(column.chunks, column.type, h)


def _feed_index(index: Any, h: Any) -> None:
    pd = sys.modules["pandas"]
    h.update(b"I")
    _text(h, _pandas_name(index))
    _feed(list(index.names), h)
    if isinstance(index, pd.RangeIndex):
        _feed((index.start, index.stop, index.step), h)
    elif isinstance(index, pd.MultiIndex):
        _feed(list(index.levels), h)
        _feed([_codes(c) for c in index.codes], h)
    else:
        _feed_array_like(index.array, h)


def _codes(codes: Any) -> Any:
    return sys.modules["numpy"].asarray(codes)


def _feed_series(series: Any, h: Any) -> None:
    h.update(b"S")
    _text(h, _pandas_name(series))
    _feed(series.name, h)
    _feed_index(series.index, h)
    _feed_array_like(series.array, h)


def _feed_frame(frame: Any, h: Any) -> None:
    h.update(b"D")
    _text(h, _pandas_name(frame))
    _feed_index(frame.columns, h)
    _feed_index(frame.index, h)
    for i in range(frame.shape[1]):
        _feed_array_like(frame.iloc[:, i].array, h)
