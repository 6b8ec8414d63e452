"""Fingerprints of pyarrow values, and the Arrow columns pandas stores its strings in.

Below :mod:`dagnb.fingerprints.arrays` (pandas columns backed by Arrow) and
:mod:`dagnb.fingerprints.libraries` (pyarrow's own types, in the lazy table):
both build on it, so neither imports the other for it.

Invariants, as for every fingerprint (see :mod:`dagnb.fingerprints.values`):
a column's buffers are hashed in place, in three streams (validity, lengths,
data), so chunk boundaries and slice offsets do not count; null slots are
zeroed first. Types without a flat layout (lists, structs...) go in as Arrow
IPC bytes, chunk by chunk. No library is imported here: pyarrow is read from
``sys.modules`` (a value of its types cannot exist before it is loaded).
"""

from __future__ import annotations

import sys
from typing import Any

from dagnb.fingerprints.dispatch import _feed
from dagnb.fingerprints.stream import _blob, _hasher, _text

__all__ = ["feed_arrow_column", "feed_arrow_strings_as_objects", "is_arrow_text", "register_pyarrow"]


def _library(h: Any, value: Any) -> None:
    """The tag and type every library value starts with: ``pyarrow.Table``, ``torch.Tensor``.

    The library and the class, not the module path: libraries move classes
    between their modules (pandas 3 did), which must not change fingerprints.
    """
    cls = type(value)
    h.update(b"L")
    _text(h, f"{cls.__module__.split('.')[0]}.{cls.__qualname__}")


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
            streams.data.update(memoryview(data)[chunk.offset * width : (chunk.offset + len(chunk)) * width])
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
    bounds = memoryview(offsets)[chunk.offset * size : (chunk.offset + len(chunk) + 1) * size].cast(code)
    return memoryview(data)[bounds[0] : bounds[-1]]


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
