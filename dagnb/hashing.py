"""Fingerprints of values and code (xxh3_128, hex digests).

Invariants:

* A fingerprint is stable across processes, kernel restarts and
  ``PYTHONHASHSEED`` values: sets are hashed in a canonical order, dicts in
  insertion order (code can observe it), nothing hashes ``id()`` or ``hash()``.
* Type, dtype and shape are always part of a fingerprint, so ``1`` and
  ``"1"``, a 0-d and a 1-d array, or two frames with other column names never
  share one by construction.
* Equal values share a fingerprint whatever their memory layout or identity:
  a C- and an F-ordered array, a frame and its copy, ``[s, s]`` and
  ``[s, copy(s)]`` (no pickle memo).

numpy and pandas are never imported here; their handlers register on the
first value from a module that is already loaded.
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import os
import pickle
import struct
import sys
import textwrap
import types
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import xxhash

from .errors import Unfingerprintable, UnfingerprintableWarning

__all__ = [
    "CodeFingerprint",
    "FileRef",
    "code_fingerprint",
    "file",
    "fingerprint",
    "function_digest",
    "register_fingerprint",
    "source_digest",
]

#: Bumped whenever the byte stream below changes; pinned-digest tests guard it.
FORMAT = b"dagnb-fp-1"
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"

Feeder = Callable[[Any, Any], None]


# --------------------------------------------------------------------------- values


def fingerprint(value: Any) -> str:
    """Return the hex xxh3_128 fingerprint of ``value``.

    Raises:
        Unfingerprintable: the value (or an element of it) has no stable
            byte representation; register one with :func:`register_fingerprint`.
    """
    h = xxhash.xxh3_128(FORMAT)
    _feed(value, h)
    return h.hexdigest()


def _blob(h: Any, data: bytes | memoryview) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _text(h: Any, text: str) -> None:
    _blob(h, text.encode("utf-8", "surrogatepass"))


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _feed_int(value: int, h: Any) -> None:
    h.update(b"i")
    _blob(h, value.to_bytes(value.bit_length() // 8 + 1, "little", signed=True))


def _feed_sequence(tag: bytes) -> Feeder:
    def feed(value: Any, h: Any) -> None:
        h.update(tag)
        h.update(len(value).to_bytes(8, "little"))
        for item in value:
            _feed(item, h)

    return feed


def _feed_dict(value: dict[Any, Any], h: Any) -> None:
    h.update(b"{")
    h.update(len(value).to_bytes(8, "little"))
    for key, item in value.items():
        _feed(key, h)
        _feed(item, h)


def _feed_set(tag: bytes) -> Feeder:
    def feed(value: Any, h: Any) -> None:
        # Canonical order: element digests sorted, independent of hash seeds.
        h.update(tag)
        h.update(len(value).to_bytes(8, "little"))
        for digest in sorted(bytes.fromhex(fingerprint(item)) for item in value):
            h.update(digest)

    return feed


_EXACT: dict[type, Feeder] = {
    type(None): lambda v, h: h.update(b"N"),
    bool: lambda v, h: h.update(b"T" if v else b"F"),
    int: _feed_int,
    float: lambda v, h: h.update(b"f" + struct.pack("<d", v)),
    complex: lambda v, h: h.update(b"c" + struct.pack("<dd", v.real, v.imag)),
    str: lambda v, h: (h.update(b"s"), _text(h, v)),
    bytes: lambda v, h: (h.update(b"b"), _blob(h, v)),
    bytearray: lambda v, h: (h.update(b"a"), _blob(h, bytes(v))),
    tuple: _feed_sequence(b"("),
    list: _feed_sequence(b"["),
    dict: _feed_dict,
    set: _feed_set(b"<"),
    frozenset: _feed_set(b">"),
    range: lambda v, h: (h.update(b"r"), _feed((v.start, v.stop, v.step), h)),
}


@functools.singledispatch
def _registered(value: Any, h: Any) -> None:
    _feed_pickle(value, h)


def _feed(value: Any, h: Any) -> None:
    exact = _EXACT.get(type(value))
    if exact is not None:
        exact(value, h)
        return
    _register_lazy_handlers()
    _registered(value, h)


def register_fingerprint(cls: type, fn: Callable[[Any], Any]) -> None:
    """Teach dagnb to fingerprint values of ``cls``.

    ``fn(value)`` returns any value dagnb can already fingerprint (bytes, a
    tuple of arrays, a dict of settings...); the type's qualified name is
    always mixed in, so two types never collide.
    """

    def feed(value: Any, h: Any) -> None:
        h.update(b"U")
        _text(h, _qualname(type(value)))
        _feed(fn(value), h)

    _registered.register(cls)(feed)


def _has_handler(obj: Any) -> bool:
    cls = type(obj)
    if cls in (set, frozenset):
        return True
    return _registered.dispatch(cls) is not _registered.dispatch(object)


class _HashingPickler(pickle.Pickler):
    """Pickles into a hash; values with a native handler go in by fingerprint."""

    def persistent_id(self, obj: Any) -> str | None:  # noqa: D102 - pickle hook
        if obj is self._root or not _has_handler(obj):
            return None
        return fingerprint(obj)

    def __init__(self, h: Any, root: Any) -> None:
        self._root = root
        writer = types.SimpleNamespace(write=h.update)
        super().__init__(writer, protocol=5, buffer_callback=lambda buf: _blob(h, buf.raw()))


def _feed_pickle(value: Any, h: Any) -> None:
    h.update(b"P")
    _text(h, _qualname(type(value)))
    try:
        _pickle_into(value, h, fast=True)
    except ValueError:  # fast mode refuses cyclic structures: keep the memo for them
        _pickle_into(value, h, fast=False)


def _pickle_into(value: Any, h: Any, fast: bool) -> None:
    inner = xxhash.xxh3_128()
    pickler = _HashingPickler(inner, value)
    pickler.fast = fast  # no memo: identity must not change a fingerprint
    try:
        pickler.dump(value)
    except ValueError:
        if fast:
            raise
        raise Unfingerprintable(_qualname(type(value)), "it cannot be pickled") from None
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise Unfingerprintable(_qualname(type(value)), str(exc) or type(exc).__name__) from None
    h.update(inner.digest())


# ------------------------------------------------------------- numpy and pandas

_LAZY_DONE: set[str] = set()


def _register_lazy_handlers() -> None:
    if len(_LAZY_DONE) == 2:
        return
    if "numpy" not in _LAZY_DONE and "numpy" in sys.modules:
        _LAZY_DONE.add("numpy")
        _register_numpy(sys.modules["numpy"])
    if "pandas" not in _LAZY_DONE and "pandas" in sys.modules:
        _LAZY_DONE.add("pandas")
        _register_pandas(sys.modules["pandas"])


def _register_numpy(np: Any) -> None:
    _registered.register(np.ndarray)(_feed_ndarray)
    _registered.register(np.generic)(_feed_numpy_scalar)


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


def _register_pandas(pd: Any) -> None:
    _registered.register(pd.DataFrame)(_feed_frame)
    _registered.register(pd.Series)(_feed_series)
    _registered.register(pd.Index)(_feed_index)


def _feed_array_like(values: Any, h: Any) -> None:
    """A column's values: numpy buffers when the dtype has them."""
    np = sys.modules["numpy"]
    pd = sys.modules["pandas"]
    dtype = values.dtype
    _text(h, str(dtype))
    if isinstance(dtype, pd.CategoricalDtype):
        _feed((dtype.ordered,), h)
        _feed_index(dtype.categories, h)
        _feed_ndarray(np.asarray(values.codes), h)
    elif isinstance(dtype, np.dtype):
        _feed_ndarray(np.asarray(values), h)
    else:  # extension arrays: their object form is exact, if slower
        _feed_ndarray(np.asarray(values, dtype=object), h)


def _feed_index(index: Any, h: Any) -> None:
    pd = sys.modules["pandas"]
    h.update(b"I")
    _text(h, _qualname(type(index)))
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
    _text(h, _qualname(type(series)))
    _feed(series.name, h)
    _feed_index(series.index, h)
    _feed_array_like(series.array, h)


def _feed_frame(frame: Any, h: Any) -> None:
    h.update(b"D")
    _text(h, _qualname(type(frame)))
    _feed_index(frame.columns, h)
    _feed_index(frame.index, h)
    for i in range(frame.shape[1]):
        _feed_array_like(frame.iloc[:, i].array, h)


# ----------------------------------------------------------------------- files

#: Files up to this size are fingerprinted by content; larger ones by size and mtime.
CONTENT_LIMIT = 64 * 2**20


class FileRef(os.PathLike):  # type: ignore[type-arg]
    """A file a task reads: the task is stale when the file changes.

    Pass it where a path goes (``open``, ``pd.read_csv``): it is ``os.PathLike``.
    """

    def __init__(self, path: str | os.PathLike[str], content: bool | None = None) -> None:
        self.path = os.fspath(path)
        self.content = content

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"dagnb.file({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileRef) and (self.path, self.content) == (other.path, other.content)

    def __hash__(self) -> int:
        return hash((FileRef, self.path))

    def state(self) -> tuple[Any, ...]:
        """What the fingerprint covers: content when asked (or small), else size and mtime."""
        try:
            st = os.stat(self.path)
        except OSError:
            return (self.path, "missing")
        by_content = self.content if self.content is not None else st.st_size <= CONTENT_LIMIT
        if by_content:
            return (self.path, st.st_size, _file_digest(self.path))
        return (self.path, st.st_size, st.st_mtime_ns)


def _file_digest(path: str) -> str:
    h = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(2**22), b""):
            h.update(chunk)
    return h.hexdigest()


def file(path: str | os.PathLike[str], content: bool | None = None) -> FileRef:
    """Declare a file input: ``def raw(path=dagnb.file("data/iris.csv"))``.

    By default files up to 64 MiB are fingerprinted by content (so a fresh
    clone with new mtimes is still a cache hit) and larger ones by size and
    modification time; ``content=True`` or ``False`` forces one way.
    """
    return FileRef(path, content)


register_fingerprint(FileRef, FileRef.state)


# ------------------------------------------------------------------------ code


@dataclass(frozen=True)
class CodeFingerprint:
    """The fingerprint of a task's code and of each thing it references.

    ``parts`` maps a label (``code``, ``helper h``, ``global K``,
    ``module numpy``, ``python``) to its digest or version, so that
    ``%dag why`` can name exactly what changed.
    """

    digest: str
    parts: dict[str, str] = field(default_factory=dict)


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:] or [ast.Pass()]
    return tree


def normalize_source(source: str) -> str:
    """Source with comments, blank lines, formatting and docstrings removed."""
    tree = _strip_docstrings(ast.parse(textwrap.dedent(source)))
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def source_digest(source: str) -> str:
    """Fingerprint of source code after AST normalization."""
    return xxhash.xxh3_128_hexdigest(normalize_source(source).encode())


@functools.lru_cache(maxsize=8192)
def _code_digest(code: types.CodeType) -> str:
    try:
        return source_digest(inspect.getsource(code))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return _bytecode_digest(code)


def _bytecode_digest(code: types.CodeType) -> str:
    """Fallback when no source is available (lambdas on one line, exec'd code)."""
    h = xxhash.xxh3_128(b"code")
    for part in (code.co_code, code.co_names, code.co_varnames, code.co_freevars):
        _feed(part, h)
    _feed((code.co_argcount, code.co_kwonlyargcount, code.co_flags), h)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            h.update(_bytecode_digest(const).encode())
        else:
            _feed(const, h)
    return h.hexdigest()


def function_digest(fn: Callable[..., Any]) -> str:
    """Fingerprint of a function's own code (not of what it references)."""
    return _code_digest(fn.__code__)


_GLOBAL_OPS = frozenset({"LOAD_GLOBAL", "LOAD_NAME", "STORE_GLOBAL", "DELETE_GLOBAL"})


@functools.lru_cache(maxsize=8192)
def referenced_globals(code: types.CodeType) -> frozenset[str]:
    """Global names a code object (and every code object nested in it) reads or writes."""
    names = {ins.argval for ins in dis.get_instructions(code) if ins.opname in _GLOBAL_OPS}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= referenced_globals(const)
    return frozenset(str(n) for n in names)


def code_fingerprint(
    fn: Callable[..., Any], own_digest: str | None = None, skip: frozenset[str] = frozenset()
) -> CodeFingerprint:
    """Fingerprint ``fn``'s code plus every helper, global and module it references.

    Names are looked up in ``fn.__globals__`` (the notebook namespace for a
    ``%%task`` cell). ``skip`` names are left out (the task's own parameters
    are inputs, hashed elsewhere).
    """
    parts = {"python": PYTHON, "code": own_digest or function_digest(fn)}
    parts.update(_reference_parts(fn, skip, {id(fn)}))
    h = xxhash.xxh3_128(b"code")
    for label in sorted(parts):
        _text(h, label)
        _text(h, parts[label])
    return CodeFingerprint(h.hexdigest(), parts)


def _reference_parts(fn: Any, skip: frozenset[str], seen: set[int]) -> dict[str, str]:
    namespace = getattr(fn, "__globals__", {})
    parts: dict[str, str] = {}
    for name in sorted(referenced_globals(fn.__code__) - skip):
        if name in namespace:
            label, digest = _describe(name, namespace[name], namespace, seen)
            parts[label] = digest
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        try:
            label, digest = _describe(name, cell.cell_contents, namespace, seen)
        except ValueError:  # empty cell: the closure variable is not bound yet
            continue
        parts["closure " + label.split(" ", 1)[1]] = digest
    wrapped = getattr(fn, "__wrapped__", None)
    if wrapped is not None and hasattr(wrapped, "__code__"):
        parts["wrapped"] = _helper_digest(wrapped, seen)
    return parts


def _describe(name: str, obj: Any, namespace: Mapping[str, Any], seen: set[int]) -> tuple[str, str]:
    if isinstance(obj, types.ModuleType):
        return f"module {name}", _module_version(obj.__name__)
    if _is_local(obj, namespace):
        if isinstance(obj, type):
            return f"helper {name}", _class_digest(obj, seen)
        return f"helper {name}", _helper_digest(obj, seen)
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        module = getattr(obj, "__module__", None) or "builtins"
        return f"module {name}", f"{module} {_module_version(module)}"
    return f"global {name}", value_digest(name, obj)


def _is_local(obj: Any, namespace: Mapping[str, Any]) -> bool:
    """Defined in the notebook (or the module) the task lives in."""
    if isinstance(obj, types.FunctionType):
        return obj.__globals__ is namespace
    if isinstance(obj, type):
        return obj.__module__ == namespace.get("__name__", "__main__")
    return False


def _helper_digest(fn: Any, seen: set[int]) -> str:
    if id(fn) in seen:
        return "recursive"
    seen = seen | {id(fn)}
    h = xxhash.xxh3_128(function_digest(fn).encode())
    for label, digest in sorted(_reference_parts(fn, frozenset(), seen).items()):
        _text(h, label)
        _text(h, digest)
    _feed(_safe_value(fn.__defaults__), h)
    return h.hexdigest()


def _class_digest(cls: type, seen: set[int]) -> str:
    if id(cls) in seen:
        return "recursive"
    seen = seen | {id(cls)}
    h = xxhash.xxh3_128(b"class")
    _text(h, cls.__qualname__)
    _feed([_qualname(base) for base in cls.__bases__], h)
    for attr, value in sorted(vars(cls).items()):
        if attr.startswith("__") and attr not in ("__init__", "__call__", "__post_init__"):
            continue
        _text(h, attr)
        func = getattr(value, "__func__", value)  # staticmethod, classmethod
        if isinstance(func, types.FunctionType):
            _text(h, _helper_digest(func, seen))
        elif isinstance(value, property):
            _feed([_helper_digest(f, seen) for f in (value.fget, value.fset) if f], h)
        else:
            _text(h, _safe_value(value))
    return h.hexdigest()


@functools.lru_cache(maxsize=1024)
def _module_version(module_name: str) -> str:
    root = module_name.split(".")[0]
    module = sys.modules.get(root)
    version = getattr(module, "__version__", None)
    if version is None and root not in sys.stdlib_module_names:
        try:
            from importlib.metadata import PackageNotFoundError, version as dist_version

            version = dist_version(root)
        except (PackageNotFoundError, ValueError):
            version = None
    return f"{root} {version or PYTHON}"


_WARNED: set[str] = set()


def _safe_value(value: Any) -> str:
    try:
        return fingerprint(value)
    except Unfingerprintable:
        return f"unfingerprintable {type(value).__qualname__} {id(value)}"


def value_digest(name: str, value: Any) -> str:
    """A global's value fingerprint; one that has none is keyed by identity (and said once)."""
    try:
        return fingerprint(value)
    except Unfingerprintable as exc:
        if name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(
                f"The global `{name}` used by a task cannot be fingerprinted ({exc.reason}); "
                f"tasks using it rerun whenever `{name}` is rebound. Pass it as a parameter "
                f"or register a fingerprint with `dagnb.register_fingerprint`.",
                UnfingerprintableWarning,
                stacklevel=2,
            )
        return f"identity {type(value).__qualname__} {id(value)}"


