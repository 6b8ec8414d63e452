"""Fingerprints of the PyData libraries' values, registered lazily by :mod:`dagnb.fingerprints.dispatch`.

:data:`HANDLERS` maps a module to the function that registers its types.
:mod:`dagnb.fingerprints.dispatch` calls one (the wing hands it the table) the first time it fingerprints a value after that
module appears in ``sys.modules``: a value of the type cannot exist before,
so no library is ever imported here (each register function reads
``sys.modules``).

Invariants, as for every fingerprint (see :mod:`dagnb.fingerprints.values`): type, dtype
and shape are part of it; it is stable across processes and
``PYTHONHASHSEED``; what cannot be fingerprinted raises ``Unfingerprintable``.

* pyarrow: in :mod:`dagnb.fingerprints.arrow` (pandas' Arrow columns use it too).
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

from dagnb.errors import Unfingerprintable
from dagnb.fingerprints import arrays as _arrays
from dagnb.fingerprints.arrow import (
    _library,
    feed_arrow_column,
    feed_arrow_strings_as_objects,
    is_arrow_text,
    register_pyarrow,
)
from dagnb.fingerprints.dispatch import _feed
from dagnb.fingerprints.pickled import _feed_pickle
from dagnb.fingerprints.stream import _blob, _hasher, _qualname, _text
from dagnb.fingerprints.values import fingerprint

__all__ = ["HANDLERS", "feed_arrow_column", "feed_arrow_strings_as_objects", "is_arrow_text"]


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
        raise Unfingerprintable(
            _qualname(type(collection)), f"dask cannot tokenize it deterministically ({exc})"
        ) from None
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
