"""A task's key, what it was made of, and why it changed.

A task's *key* hashes the fingerprint format (``FORMAT``) and its code
fingerprint (own code, helpers, globals, modules, Python version) with the
fingerprint of each input: a constant or external input by value, an
upstream input by the *fingerprint* of the upstream's value. So a rerun
that yields an identical value leaves every downstream key unchanged:
early cutoff. A task that reads another task's
variable as a global (no parameter) has that task as an upstream input too.

Invariants:

* A key is a pure function of the task's code fingerprint and the recorded
  form of its inputs (:mod:`dagnb.keyparts`): the same parts give the same
  key in every process and every version that keeps the format.
* A key with an *untracked* part (a value that has no fingerprint) cannot
  tell a change from no change, so its task always runs, and the user is
  told once per process why (:func:`tell_untracked`).
* :func:`explain` compares two keys' recorded parts only; it never
  fingerprints or loads a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import xxhash

from dagnb.cache.base import CacheEntry
from dagnb.errors import UnfingerprintableWarning, untracked_message, warn_at
from dagnb.fingerprints.code import Untracked, code_fingerprint, untracked_value
from dagnb.fingerprints.stream import FORMAT
from dagnb.fingerprints.values import fingerprint
from dagnb.graph import Input, TaskSpec
from dagnb.keyparts import Fed

__all__ = ["KeyInfo", "compute_key", "explain", "tell_untracked"]


@dataclass(frozen=True)
class KeyInfo:
    """A key and what it was made of (for ``why``).

    ``parts`` (label -> digest) and ``inputs`` (parameter -> how it was fed) are in the recorded form
    that :mod:`dagnb.keyparts` writes and reads: what a cache entry keeps and the key hashes.
    """

    key: str
    parts: dict[str, str]
    inputs: dict[str, str]
    values: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    untracked: tuple[Untracked, ...] = ()  # parts with no fingerprint: the task always runs


_INPUT_WORDS = {"constant": "the default of `{}`", "external": "the notebook variable `{}`"}


def compute_key(
    spec: TaskSpec,
    inputs: Iterable[Input],
    upstream: Mapping[str, str],
    hidden: Sequence[str] = (),
    fingerprint_of: Callable[[Any], str] = fingerprint,
) -> KeyInfo:
    """The key of ``spec`` given how its inputs resolve and its upstream tasks' fingerprints.

    ``hidden`` names the tasks ``spec`` reads as globals: they are upstream
    inputs (by their fingerprint), not globals hashed by value.
    ``fingerprint_of`` fingerprints the values the key reads (a session's
    epoch takes each one once: see :mod:`dagnb.epoch`).
    """
    skip = frozenset(spec.params).union(hidden)
    code = spec.fixed_code or code_fingerprint(spec.func, spec.code_digest, skip=skip, fingerprint_of=fingerprint_of)
    fed: dict[str, str] = {}
    values: dict[str, Any] = {}
    untracked = list(code.untracked)
    for item in inputs:
        if item.kind == "upstream":
            fed[item.param] = Fed("upstream", upstream[item.param]).render()
            continue
        digest, missing = untracked_value(_INPUT_WORDS[item.kind].format(item.param), item.value, fingerprint_of)
        fed[item.param] = Fed(item.kind, digest).render()
        values[item.param] = item.value
        if missing is not None:
            untracked.append(missing)
    for name in hidden:
        fed[name] = Fed("upstream", upstream[name]).render()
    hashed = "".join([code.digest, *[f"\0{param}\0{fed[param]}" for param in sorted(fed)]])
    # The fingerprint format is part of every key: a new one gives every task a new key (no result found under
    # an old key carries an upstream fingerprint of the old format into the new).
    key = xxhash.xxh3_128_hexdigest(b"key\0" + FORMAT + b"\0" + hashed.encode())
    return KeyInfo(key, code.parts, fed, values, tuple(untracked))


_told: set[tuple[str, Untracked]] = set()  # (task, what) already explained in this process


def tell_untracked(spec: TaskSpec, info: KeyInfo) -> tuple[str, ...]:
    """The reasons a task with untracked parts always runs; each explained once, at the task's cell."""
    for item in info.untracked:
        if (spec.name, item) not in _told:
            _told.add((spec.name, item))
            warn_at(
                spec.func,
                untracked_message(spec.name, item.what, item.type_name, item.reason),
                UnfingerprintableWarning,
            )
    return tuple(str(item) for item in info.untracked)


def explain(info: KeyInfo, prior: CacheEntry | None, inputs: Iterable[Input]) -> tuple[str, ...]:
    """Name what differs between the current key and the one the task last had."""
    if prior is None:
        return ("new",)
    if prior.key == info.key:
        return ("not in cache",)
    reasons = ["code changed"] if info.parts.get("code") != prior.parts.get("code") else []
    for label in sorted(set(info.parts) | set(prior.parts)):
        if label != "code" and info.parts.get(label) != prior.parts.get(label):
            reasons.append(f"{label} changed")
    for item in inputs:
        if info.inputs.get(item.param) != prior.inputs.get(item.param):
            what = "upstream" if item.kind == "upstream" else "input"
            reasons.append(f"{what} {item.param} changed")
    params = {item.param for item in inputs}
    for name in sorted(set(info.inputs) - params):  # tasks read as globals
        if info.inputs.get(name) != prior.inputs.get(name):
            reasons.append(f"upstream {name} changed")
    return tuple(reasons) or ("key changed",)
