"""The parts a key is made of, as types: what the code reads (:class:`Part`) and how each input is fed (:class:`Fed`).

A key hashes its parts by their *rendered* labels (``helper h``, ``module np``,
``global K``, ``upstream <fingerprint>``), and a cache record keeps them in
that form, so the strings are a format: :meth:`Part.render` and
:meth:`Fed.render` are the only writers of it, and :func:`parse_part` and
:func:`parse_fed` its only readers, for records read back from the disk
(``dagnb check --plan`` compares them with a notebook's text).

Invariants:
    * ``parse_part(p.render()) == p`` and ``parse_fed(f.render()) == f``;
    * a rendered label is exactly what dagnb wrote before these types, so no
      key and no digest changes (the pinned digests of
      ``tests/unit/test_fingerprint.py`` and ``tests/unit/test_code_fingerprint.py`` hold it);
    * parsing never raises: a label of a kind this version does not know
      (written by a newer one) comes back with that kind, for the caller to skip.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

__all__ = ["Fed", "FedKind", "Part", "PartKind", "parse_fed", "parse_part", "rendered"]

#: ``code`` (the task's own), ``python`` (the version), ``wrapped`` (the function a decorator wraps) stand
#: alone; the others name what the code reads: a notebook ``helper`` (function, class or local module), a
#: library ``module`` (by version), a ``global`` value, a ``closure`` variable.
PartKind = Literal["code", "python", "wrapped", "module", "helper", "global", "closure"]

#: An input of a task's key: another task's value (by fingerprint), a default, or a notebook variable.
FedKind = Literal["upstream", "constant", "external"]


class Part(NamedTuple):
    """One thing a task's code fingerprint covers: ``Part("helper", "h")`` renders ``helper h``.

    A named tuple: a code fingerprint makes one per name its code reads, on every plan.
    """

    kind: str  # a PartKind, or an unknown kind read back from a newer record
    name: str = ""

    def render(self) -> str:
        return f"{self.kind} {self.name}" if self.name else self.kind


class Fed(NamedTuple):
    """How one input entered a key: ``Fed("upstream", fp)`` renders ``upstream <fp>``."""

    kind: str  # a FedKind, or an unknown kind read back from a newer record
    fingerprint: str

    def render(self) -> str:
        return f"{self.kind} {self.fingerprint}"


def rendered(parts: Iterable[tuple[Part, str]]) -> dict[str, str]:
    """``{label: digest}`` in the recorded form, from typed parts."""
    return {part.render(): digest for part, digest in parts}


def parse_part(label: str) -> Part:
    """A recorded label (``helper h``, ``code``) as a :class:`Part`; the one reader of the format."""
    kind, _, name = label.partition(" ")
    return Part(kind, name)


def parse_fed(text: str) -> Fed:
    """A recorded input (``upstream <fingerprint>``) as a :class:`Fed`; the one reader of the format."""
    kind, _, fingerprint = text.partition(" ")
    return Fed(kind, fingerprint)
