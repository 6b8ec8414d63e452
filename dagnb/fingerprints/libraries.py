"""Fingerprints of the PyData libraries' values, registered lazily by :mod:`dagnb.fingerprints.values`.

:data:`HANDLERS` maps a module to the function that registers its types.
``hashing`` calls one the first time it fingerprints a value after that
module appears in ``sys.modules``: a value of the type cannot exist before,
so no library is ever imported here (each register function reads
``sys.modules``).

Invariants, as for every fingerprint (see :mod:`dagnb.fingerprints.values`): type, dtype
and shape are part of it; it is stable across processes and
``PYTHONHASHSEED``; what cannot be fingerprinted raises ``Unfingerprintable``.

* pyarrow: schema, then each column's buffers hashed in place, in three
  streams (validity, lengths, data), so chunk boundaries and slice offsets do
  not count; null slots are zeroed first. Types without a flat layout (lists,
  structs...) go in as Arrow IPC bytes, chunk by chunk.
* polars: its own IPC bytes of the rechunked frame (no pyarrow needed); a
  LazyFrame by its serialized plan (the plan is the value the task returned).
* xarray: each variable's dims, data (numpy, dask...), attrs and encoding.
* torch: dtype, shape, device, ``requires_grad``, then the tensor's bytes.
* dask: ``dask.base.tokenize`` with ``tokenize.ensure-deterministic`` on.
* scikit-learn: the estimator's class and attributes, sorted by name.
* matplotlib: an artist (a ``Figure``) by its pickle, made canonical: the
  ``id()`` keys of transform parents and the pyplot figure number are left
  out (they differ between processes), sets go in by fingerprint.

Estimators and artists of classes defined elsewhere (a notebook's
``class Model(BaseEstimator)``) go to the generic path, which sees their code.
"""

from __future__ import annotations

import ctypes
import pickle
import sys
import types
from collections.abc import Callable
from typing import Any

from dagnb.fingerprints import arrays as _arrays
from dagnb.errors import Unfingerprintable
from dagnb.fingerprints.values import _blob, _feed, _feed_pickle, _hasher, _qualname, _text, fingerprint

__all__ = ["HANDLERS", "feed_arrow_column", "feed_arrow_strings_as_objects", "is_arrow_text"]


def _library(h: Any, value: Any) -> None:
    """The tag and type every library value starts with: ``pyarrow.Table``, ``torch.Tensor``.

    The library and the class, not the module path: libraries move classes
    between their modules (pandas 3 did), which must not change fingerprints.
    """
    cls = type(value)
    h.update(b"L")
    _text(h, f"{cls.__module__.split('.')[0]}.{cls.__qualname__}")


# --------------------------------------------------------------------------- pyarrow


def register_pyarrow(registry: Any) -> None:
    pa = sys.modules["pyarrow"]
    registry.register(pa.Array)(lambda v, h: (_library(h, v), feed_arrow_column([v], v.type, h)))
    registry.register(pa.ChunkedArray)(lambda v, h: (_library(h, v), feed_arrow_column(v.chunks, v.type, h)))
    registry.register(pa.Table)(_feed_arrow_table)
    registry.register(pa.RecordBatch)(_feed_arrow_table)


def _feed_arrow_table(table: Any, h: Any) -> None:
    _library(h, table)
    schema = table.schema
    _feed([(f.name, str(f.type), f.nullable) for f in schema], h)
    _feed(dict(schema.metadata or {}), h)
    _feed(table.num_rows, h)
    for column in table.columns:
        chunks = column.chunks if hasattr(column, "chunks") else [column]
        feed_arrow_column(chunks, column.type, h)


class _Streams:
    """One column's parts, each a stream of its own, so where the chunks split does not count."""

    def __init__(self) -> None:
        self.valid, self.sizes, self.data, self.other = (_hasher() for _ in range(4))

    def digest(self) -> bytes:
        return b"".join(s.digest() for s in (self.valid, self.sizes, self.data, self.other))


def feed_arrow_column(chunks: Any, arrow_type: Any, h: Any) -> None:
    """An Arrow column (the chunks of a ``ChunkedArray``): type, length, null count, then its parts."""
    _text(h, str(arrow_type))
    nulls = sum(c.null_count for c in chunks)
    _feed((sum(len(c) for c in chunks), nulls), h)
    streams = _Streams()
    for chunk in chunks:
        if nulls:
            streams.valid.update(_valid_bytes(chunk))
        _feed_arrow_chunk(chunk, streams)
    h.update(streams.digest())


def _valid_bytes(chunk: Any) -> memoryview:
    pa = sys.modules["pyarrow"]
    valid = chunk.is_valid().cast(pa.uint8())  # a new array, offset 0, no nulls: one byte per slot
    return memoryview(valid.buffers()[1])[: len(valid)]


def _feed_arrow_chunk(chunk: Any, streams: _Streams) -> None:
    pa = sys.modules["pyarrow"]
    kind = chunk.type
    if pa.types.is_dictionary(kind):
        return _feed_arrow_chunk(chunk.dictionary_decode(), streams)
    if _is_view(pa, kind):  # views point into buffers in any order: their values, as large strings
        large = pa.large_binary() if _is_view(pa, kind, "binary") else pa.large_string()
        return _feed_arrow_chunk(chunk.cast(large), streams)
    if pa.types.is_boolean(kind):
        return _feed_arrow_chunk(chunk.cast(pa.uint8()), streams)
    if _is_binary_like(pa, kind):
        chunk = _null_slots_zeroed(chunk, b"" if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) else "")
        import pyarrow.compute as pc  # a submodule of the loaded pyarrow

        lengths = pc.binary_length(chunk).cast(pa.int64())
        streams.sizes.update(memoryview(lengths.buffers()[1])[: 8 * len(lengths)])
        streams.data.update(_binary_data(chunk))
    elif _fixed_width(kind) and len(chunk.buffers()) == 2:
        chunk = _null_slots_zeroed(chunk, 0)
        width = kind.bit_width // 8
        data = chunk.buffers()[1]
        if data is not None:
            streams.data.update(memoryview(data)[chunk.offset * width: (chunk.offset + len(chunk)) * width])
    elif not pa.types.is_null(kind):  # nested and other layouts: their IPC bytes, chunk by chunk
        _blob(streams.other, _ipc_bytes(chunk))
    return None


def _is_view(pa: Any, kind: Any, which: str = "") -> bool:
    """``string_view`` / ``binary_view`` (pyarrow 16 and later)."""
    names = [f"is_{which}_view"] if which else ["is_string_view", "is_binary_view"]
    return any(getattr(pa.types, name, lambda _: False)(kind) for name in names)


def is_arrow_text(kind: Any) -> bool:
    """An Arrow string type (what pandas' ``str`` and ``string[pyarrow]`` columns hold)."""
    pa = sys.modules["pyarrow"]
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind) or _is_view(pa, kind, "string"))


def _is_binary_like(pa: Any, kind: Any) -> bool:
    t = pa.types
    return t.is_string(kind) or t.is_large_string(kind) or t.is_binary(kind) or t.is_large_binary(kind)


def _fixed_width(kind: Any) -> bool:
    try:
        return kind.bit_width % 8 == 0
    except ValueError:  # not a fixed-width type
        return False


def _null_slots_zeroed(chunk: Any, zero: Any) -> Any:
    """What a null slot holds is left to the writer: set it, so equal arrays hash equal."""
    if not chunk.null_count:
        return chunk
    pa = sys.modules["pyarrow"]
    import pyarrow.compute as pc  # loaded with pyarrow by pandas and polars; cheap once pyarrow is

    try:
        return pc.fill_null(chunk, pa.array([zero]).cast(chunk.type)[0])
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError):
        return chunk  # the slots count as they are: a cache miss at worst, never a collision


def _binary_data(chunk: Any) -> memoryview:
    """The bytes of a string or binary chunk's values, from its offsets (a slice keeps the parent's)."""
    size, code = (8, "q") if "large" in str(chunk.type) else (4, "i")
    _, offsets, data = chunk.buffers()
    if data is None or not len(chunk):
        return memoryview(b"")
    bounds = memoryview(offsets)[chunk.offset * size: (chunk.offset + len(chunk) + 1) * size].cast(code)
    return memoryview(data)[bounds[0]: bounds[-1]]


def _ipc_bytes(chunk: Any) -> Any:
    pa = sys.modules["pyarrow"]
    batch = pa.record_batch([chunk], names=["c"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return memoryview(sink.getvalue())


def feed_arrow_strings_as_objects(column: Any, na_value: Any, h: Any) -> None:
    """A pandas string column stored in Arrow, fed exactly as its object array would be.

    So a frame's fingerprint does not depend on whether pandas stores its
    strings in Python objects or in Arrow (pyarrow installed or not), and
    the strings are never turned into Python objects: code-point lengths come
    from ``utf8_length`` and the text is the Arrow data buffer itself.
    """
    import pyarrow.compute as pc

    pa = sys.modules["pyarrow"]
    chunks = [c.cast(pa.large_string()) if _is_view(pa, c.type) else c for c in column.chunks]
    count = sum(len(c) for c in chunks)
    nulls = sum(c.null_count for c in chunks)
    h.update(b"n")
    _text(h, "|O")
    _feed((count,), h)
    h.update(b"o")
    _stream_blob(h, [_valid_bytes(c) if c.null_count else b"\x01" * len(c) for c in chunks], count)
    lengths = [pc.drop_null(pc.utf8_length(c)).cast(pa.int64()) for c in chunks]
    chunks = [_null_slots_zeroed(c, "") for c in chunks]  # a null slot's bytes must not reach the text
    _stream_blob(h, [memoryview(n.buffers()[1])[: 8 * len(n)] for n in lengths], 8 * (count - nulls))
    data = [_binary_data(c) for c in chunks]
    _stream_blob(h, data, sum(len(d) for d in data))
    for _ in range(nulls):
        _feed(na_value, h)


def _stream_blob(h: Any, parts: list[Any], total: int) -> None:
    """``_blob`` of the parts' concatenation, without concatenating them."""
    h.update(total.to_bytes(8, "little"))
    for part in parts:
        h.update(part)


# ---------------------------------------------------------------------------- polars


def register_polars(registry: Any) -> None:
    pl = sys.modules["polars"]
    registry.register(pl.DataFrame)(_feed_polars_frame)
    registry.register(pl.Series)(lambda s, h: (_library(h, s), _text(h, s.name), _feed_polars_ipc(s.to_frame(), h)))
    registry.register(pl.LazyFrame)(_feed_polars_plan)


def _feed_polars_frame(frame: Any, h: Any) -> None:
    _library(h, frame)
    _feed_polars_ipc(frame, h)


def _feed_polars_ipc(frame: Any, h: Any) -> None:
    import io

    _feed([(name, str(dtype)) for name, dtype in frame.schema.items()], h)
    _feed(frame.height, h)
    buffer = io.BytesIO()
    frame.rechunk().write_ipc(buffer)
    _blob(h, buffer.getbuffer())


def _feed_polars_plan(plan: Any, h: Any) -> None:
    _library(h, plan)
    try:
        serialized = plan.serialize(format="binary")
    except TypeError:  # polars before 1.0: JSON only
        serialized = plan.serialize()
    except Exception as exc:  # noqa: BLE001 - a plan with Python functions in it
        raise Unfingerprintable(_qualname(type(plan)), f"its plan cannot be serialized ({exc})") from None
    _blob(h, serialized.encode() if isinstance(serialized, str) else serialized)


# ---------------------------------------------------------------------------- xarray


def register_xarray(registry: Any) -> None:
    xr = sys.modules["xarray"]
    registry.register(xr.Variable)(_feed_xarray_variable)
    registry.register(xr.DataArray)(_feed_xarray_array)
    registry.register(xr.Dataset)(_feed_xarray_dataset)


def _feed_xarray_variable(variable: Any, h: Any) -> None:
    _library(h, variable)
    _feed(tuple(variable.dims), h)
    _feed(dict(variable.attrs), h)
    _feed(dict(variable.encoding), h)
    _feed(variable.data, h)  # numpy, or a dask array by its token: nothing is computed


def _feed_xarray_array(array: Any, h: Any) -> None:
    _library(h, array)
    _feed(array.name, h)
    _feed_xarray_variable(array.variable, h)
    _feed({name: coord.variable for name, coord in array.coords.items()}, h)


def _feed_xarray_dataset(dataset: Any, h: Any) -> None:
    _library(h, dataset)
    _feed({name: var.variable for name, var in dataset.data_vars.items()}, h)
    _feed({name: coord.variable for name, coord in dataset.coords.items()}, h)
    _feed(dict(dataset.attrs), h)


# ----------------------------------------------------------------------------- torch


def register_torch(registry: Any) -> None:
    registry.register(sys.modules["torch"].Tensor)(_feed_tensor)


def _feed_tensor(tensor: Any, h: Any) -> None:
    torch = sys.modules["torch"]
    _library(h, tensor)
    _feed((str(tensor.dtype), tuple(tensor.shape), tensor.device.type, bool(tensor.requires_grad)), h)
    if tensor.is_sparse:
        coalesced = tensor.detach().coalesce()
        _feed((coalesced.indices(), coalesced.values()), h)
        return
    if tensor.layout != torch.strided or tensor.is_quantized or tensor.is_nested or tensor.device.type == "meta":
        raise Unfingerprintable(_qualname(type(tensor)), f"its layout ({tensor.layout}) has no plain bytes")
    flat = tensor.detach().resolve_conj().resolve_neg().cpu().contiguous().reshape(-1)
    size = flat.numel() * flat.element_size()
    # The tensor's own memory, read in place (no numpy needed); `flat` stays alive meanwhile.
    _blob(h, memoryview((ctypes.c_char * size).from_address(flat.data_ptr())).cast("B") if size else b"")


# ------------------------------------------------------------------------------ dask


def register_dask(registry: Any) -> None:
    registry.register(sys.modules["dask.base"].DaskMethodsMixin)(_feed_dask)


def _feed_dask(collection: Any, h: Any) -> None:
    """By dask's own token of the collection: its graph, as returned (nothing is computed)."""
    dask_base, config = sys.modules["dask.base"], sys.modules["dask.config"]
    _library(h, collection)
    try:
        with config.set({"tokenize.ensure-deterministic": True}):
            token = dask_base.tokenize(collection)
    except Exception as exc:  # noqa: BLE001 - dask says it cannot tokenize deterministically
        raise Unfingerprintable(_qualname(type(collection)), f"dask cannot tokenize it deterministically ({exc})") from None
    _text(h, token)


# ---------------------------------------------------------------------- scikit-learn


def register_sklearn(registry: Any) -> None:
    registry.register(sys.modules["sklearn.base"].BaseEstimator)(_feed_estimator)


def _feed_estimator(estimator: Any, h: Any) -> None:
    """Class, then every attribute (parameters and fitted state) by name; nested estimators recurse."""
    if not type(estimator).__module__.startswith("sklearn."):
        _feed_pickle(estimator, h)  # a class of the notebook's own: the generic path sees its code
        return
    _library(h, estimator)
    state = vars(estimator)
    for name in sorted(state):
        _text(h, name)
        _feed(state[name], h)


# ------------------------------------------------------------------------ matplotlib


def register_matplotlib(registry: Any) -> None:
    registry.register(sys.modules["matplotlib.artist"].Artist)(_feed_artist)


def _feed_artist(artist: Any, h: Any) -> None:
    if not type(artist).__module__.startswith(("matplotlib.", "mpl_toolkits.")):
        _feed_pickle(artist, h)
        return
    _library(h, artist)
    inner = _hasher()
    try:
        _ArtistPickler(inner).dump(artist)
    except (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError) as exc:
        raise Unfingerprintable(_qualname(type(artist)), str(exc) or type(exc).__name__) from None
    h.update(inner.digest())


class _ArtistPickler(pickle.Pickler):
    """Pickles a figure into a hash, leaving out what differs between two processes drawing the same."""

    _DROPPED = ("_number", "_restore_to_pylab")  # pyplot's figure number: a counter of the session

    def __init__(self, h: Any) -> None:
        super().__init__(types.SimpleNamespace(write=h.update), protocol=5)
        figure = sys.modules.get("matplotlib.figure")  # loaded with any figure; an artist alone may not need it
        self._rewritten = (sys.modules["matplotlib.transforms"].TransformNode, *([figure.Figure] if figure else []))
        self._transform = self._rewritten[0]

    def persistent_id(self, obj: Any) -> str | None:  # noqa: D102 - pickle hook
        if type(obj) in (set, frozenset):  # pickled in hash order otherwise, which PYTHONHASHSEED changes
            return fingerprint(obj)
        return None

    def reducer_override(self, obj: Any) -> Any:  # noqa: D102 - pickle hook
        if not isinstance(obj, self._rewritten):
            return NotImplemented
        reduced = obj.__reduce_ex__(5)
        if len(reduced) < 3 or not isinstance(reduced[2], dict):
            return NotImplemented
        state = dict(reduced[2])
        if isinstance(obj, self._transform):  # keyed by id(): an address, other in every process
            state["_parents"] = list(state.get("_parents", {}).values())
        for key in self._DROPPED:
            state.pop(key, None)
        return (*reduced[:2], state, *reduced[3:])


# ------------------------------------------------------------------------- the table

#: module -> the function that registers its types; each runs once, after its module is loaded.
HANDLERS: dict[str, Callable[[Any], None]] = {
    "numpy": _arrays.register_numpy,
    "pandas": _arrays.register_pandas,
    "pyarrow": register_pyarrow,
    "polars": register_polars,
    "xarray": register_xarray,
    "torch": register_torch,
    "dask.base": register_dask,
    "sklearn.base": register_sklearn,
    "matplotlib.artist": register_matplotlib,
}
