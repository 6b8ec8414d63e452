"""Fingerprints of values: pinned digests, collisions that must not happen,
equalities that must hold, stability across hash seeds, and file inputs."""

from __future__ import annotations

import collections
import copy
import enum
import json
import os
import subprocess
import sys
import textwrap
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import dagnb
from dagnb.errors import Unfingerprintable
from dagnb.fingerprints import values as hashing

# pandas 3 gives column labels its `str` dtype (pandas 2: `object`); dtype is
# part of a fingerprint by design, so frame and series pins depend on the major.
_BY_PANDAS = {
    2: {"DataFrame": "ef4ec925e3932e61488d8ff5a4894303", "Series": "e987fb4b948a2bcb8604fb6e61d8988f"},
    3: {"DataFrame": "7bf0b74fffcfd0e0c29f9c46f22860a7", "Series": "16191ac63429ba7c64ebe4388bc35d36"},
}[int(pd.__version__.split(".")[0])]


def _frame() -> pd.DataFrame:
    """A small frame with one column of each common kind (dtypes spelled out so
    that a pandas upgrade changing its inference defaults does not move the pin)."""
    return pd.DataFrame(
        {
            "i": pd.Series([1, 2, 3], dtype="int64"),
            "f": pd.Series([0.5, -1.0, 2.25], dtype="float64"),
            "s": pd.Series(["a", "bc", ""], dtype=object),
            "c": pd.Categorical(["x", "y", "x"]),
            "t": pd.Series(pd.to_datetime(["2024-01-01", "2024-02-29", "2025-12-31"])).astype("datetime64[ns]"),
        }
    )


def _file_ref() -> dagnb.FileRef:
    """``dagnb.file`` on a relative path with fixed content (the test chdirs first)."""
    Path("pinned.csv").write_bytes(b"a,b\n1,2\n")
    return dagnb.file("pinned.csv")


# A change to any digest below means that every user's cache is invalidated on
# upgrade: that is only acceptable together with a bump of `hashing.FORMAT`
# (and then every pin here is regenerated on purpose).
PINNED: list[tuple[str, Callable[[], Any], str]] = [
    ("None", lambda: None, "82b8ac4e7b96a6b1146010a8cab4eb44"),
    ("True", lambda: True, "c597f549acce6d1feb2db3e35bc57941"),
    ("0", lambda: 0, "7f25bc257aa966cd6f949291b4ae7164"),
    ("-1", lambda: -1, "1b3856883172b364dd7510d0d94dcc4b"),
    ("2**100", lambda: 2**100, "7bfa9d7e30beb3a7e24e91f06b5d8b36"),
    ("1.5", lambda: 1.5, "debbcc43d138374f31eb4204cf258918"),
    ("-0.0", lambda: -0.0, "1c2dfc65d6926e3efa7145ead2f0b3b7"),
    ("empty str", lambda: "", "93e22d53f2462650796c0dadfb524470"),
    ("str 1", lambda: "1", "bb557405bea05a7284432c539972aece"),
    ("bytes 1", lambda: b"1", "c1c5eacb1781a45e0bc6f1d17eb0af94"),
    ("tuple", lambda: (1,), "1abb653b6bbb37c46f1b2391311e7a94"),
    ("list", lambda: [1], "e9d306aa01cad13bad78bd281a8aab7a"),
    ("dict", lambda: {"a": 1}, "839ac412f3b4745e6e64d1dd749ad043"),
    ("set", lambda: {1, 2}, "e42f31c5824df73a0c69d70cb39f51f0"),
    ("frozenset", lambda: frozenset({"x", "y"}), "8432346b995abdd29b28ed900be384d2"),
    # a set or a bytearray inside a list, tuple or dict makes the container go element by element (the C
    # pickler writes sets in hash order, and writes them without asking any hook: a check must see them)
    ("list holding a set", lambda: [1, {2, 3}], "74f5675c1c18d48836757379e26366d7"),
    ("dict holding a frozenset", lambda: {"k": (b"x", frozenset({"a", "b", "c"}))}, "bfff5c4021df83d92e3fcf3dc45dc1ef"),
    ("list holding a bytearray", lambda: [bytearray(b"ab"), 1.5], "b86f7a53c8cb9b7dc04fdafbb0791940"),
    ("int array 2x3", lambda: np.arange(6, dtype=np.int64).reshape(2, 3), "3855c6fdc5480920deddbaa692f2f2a1"),
    ("float32 array", lambda: np.array([0.5, 1.5, -2.0], dtype=np.float32), "b9b46a2049e4edd6a88dbe87df572ffc"),
    ("0-d array", lambda: np.array(7), "762dd81f1ae082ae5886eadd163fa461"),
    ("DataFrame", _frame, _BY_PANDAS["DataFrame"]),
    ("Series", lambda: pd.Series([1.0, 2.0], index=["p", "q"], name="s"), _BY_PANDAS["Series"]),
    ("dagnb.file", _file_ref, "6a6a4017c85ba4447ebd834668338e5a"),
]


@pytest.mark.parametrize(("make", "expected"), [p[1:] for p in PINNED], ids=[p[0] for p in PINNED])
def test_digests_stay_the_same(
    make: Callable[[], Any], expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert hashing.FORMAT == b"dagnb-fp-3", "FORMAT was bumped: regenerate every pin below"
    assert dagnb.fingerprint(make()) == expected


def test_fingerprint_is_a_hex_xxh3_128_digest() -> None:
    digest = dagnb.fingerprint("anything")
    assert len(digest) == 32
    int(digest, 16)


# ------------------------------------------------------------------ collisions

Point = collections.namedtuple("Point", "x y")


class Real(float):
    """A float subclass: pickled by its class, so not plain data."""


class Level(enum.IntEnum):
    ONE = 1
    TWO = 2


class Color(enum.Enum):
    RED = "r"
    BLUE = "b"

    def paint(self) -> str:
        return str(self.value)


def _other_index() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2]}, index=[10, 20])


DIFFERENT: list[tuple[str, list[Callable[[], Any]]]] = [
    ("1, '1', 1.0, True", [lambda: 1, lambda: "1", lambda: 1.0, lambda: True]),
    ("0, False, None, '', 0.0, -0.0", [lambda: 0, lambda: False, lambda: None, lambda: "", lambda: 0.0, lambda: -0.0]),
    ("str vs bytes vs bytearray", [lambda: "ab", lambda: b"ab", lambda: bytearray(b"ab")]),
    ("shapes (2,3) (3,2) (6,)", [
        lambda: np.arange(6).reshape(2, 3), lambda: np.arange(6).reshape(3, 2), lambda: np.arange(6)]),
    ("float32 vs float64", [
        lambda: np.array([1.0, 2.0], dtype=np.float32), lambda: np.array([1.0, 2.0], dtype=np.float64)]),
    ("int32 vs int64", [lambda: np.arange(4, dtype=np.int32), lambda: np.arange(4, dtype=np.int64)]),
    ("0-d vs 1-d vs scalar", [lambda: np.array(5), lambda: np.array([5]), lambda: np.int64(5), lambda: 5]),
    ("column names differ", [
        lambda: pd.DataFrame({"a": [1, 2]}), lambda: pd.DataFrame({"b": [1, 2]})]),
    ("index differs", [lambda: pd.DataFrame({"a": [1, 2]}), _other_index]),
    ("column dtype differs", [
        lambda: pd.DataFrame({"a": [1, 2]}), lambda: pd.DataFrame({"a": [1.0, 2.0]})]),
    ("series vs one-column frame", [
        lambda: pd.Series([1, 2], name="a"), lambda: pd.DataFrame({"a": [1, 2]})]),
    ("list vs tuple", [lambda: [1, 2], lambda: (1, 2)]),
    ("dict insertion order", [lambda: {"a": 1, "b": 2}, lambda: {"b": 2, "a": 1}]),
    ("set vs frozenset vs list", [lambda: {1, 2}, lambda: frozenset({1, 2}), lambda: [1, 2]]),
    ("namedtuple vs tuple", [lambda: Point(1, 2), lambda: (1, 2)]),
    ("string split differently", [lambda: ["ab", "c"], lambda: ["a", "bc"], lambda: ["abc"]]),
    ("object arrays split differently", [
        lambda: np.array(["ab", "c"], dtype=object), lambda: np.array(["a", "bc"], dtype=object)]),
    ("nested vs flat", [lambda: [[1], 2], lambda: [1, [2]], lambda: [1, 2]]),
    # a container goes in as its pickle only when it holds plain data; anything else inside goes by its own type
    ("1, True, numpy's 1, 1.0, a float subclass, numpy's 1.0, in a list", [
        lambda: [1], lambda: [True], lambda: [np.int64(1)], lambda: [1.0], lambda: [Real(1.0)],
        lambda: [np.float64(1.0)]]),
    ("bytes vs bytearray in a list", [lambda: [b"ab"], lambda: [bytearray(b"ab")]]),
    ("enum members vs their values", [
        lambda: Level.ONE, lambda: Level.TWO, lambda: 1, lambda: [Level.ONE], lambda: [1],
        lambda: Color.RED, lambda: Color.BLUE, lambda: "r"]),
    ("dict vs OrderedDict vs defaultdict in a list", [
        lambda: [{"a": 1}], lambda: [collections.OrderedDict(a=1)],
        lambda: [collections.defaultdict(int, a=1)]]),
    ("set vs frozenset vs list in a tuple, deep", [
        lambda: ([(1, {2})],), lambda: ([(1, frozenset({2}))],), lambda: ([(1, [2])],)]),
    ("a type or a function in a list", [lambda: [float], lambda: [int], lambda: [len]]),
]


@pytest.mark.parametrize("makers", [d[1] for d in DIFFERENT], ids=[d[0] for d in DIFFERENT])
def test_different_values_never_share_a_fingerprint(makers: list[Callable[[], Any]]) -> None:
    digests = [dagnb.fingerprint(make()) for make in makers]
    assert len(set(digests)) == len(digests), digests


# ------------------------------------------------------------------ equalities


class Settings:
    """A plain user class: equal attributes, equal fingerprints."""

    def __init__(self, alpha: float, tags: set[str]) -> None:
        self.alpha = alpha
        self.tags = tags


def _memmap(tmp_path: Path) -> np.ndarray:
    data = np.arange(12, dtype=np.float64).reshape(3, 4)
    mm = np.memmap(tmp_path / "mm.dat", dtype=np.float64, mode="w+", shape=(3, 4))
    mm[:] = data
    mm.flush()
    return np.memmap(tmp_path / "mm.dat", dtype=np.float64, mode="r", shape=(3, 4))


def _set_in_order(items: list[Any]) -> set[Any]:
    out: set[Any] = set()
    for item in items:
        out.add(item)
    return out


SAME: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
    ("set insertion order", lambda: _set_in_order([1, "a", 2]), lambda: _set_in_order([2, 1, "a"])),
    ("frozenset insertion order", lambda: frozenset(["x", "y", "z"]), lambda: frozenset(["z", "x", "y"])),
    ("[s, s] vs [s, copy(s)]", lambda: (lambda s: [s, s])([1, 2]), lambda: (lambda s: [s, copy.copy(s)])([1, 2])),
    ("C vs F order", lambda: np.arange(6.0).reshape(2, 3), lambda: np.asfortranarray(np.arange(6.0).reshape(2, 3))),
    ("non-contiguous slice vs copy", lambda: np.arange(20)[::3], lambda: np.arange(20)[::3].copy()),
    ("transposed view vs copy", lambda: np.arange(6).reshape(2, 3).T, lambda: np.arange(6).reshape(2, 3).T.copy()),
    ("frame vs copy", _frame, lambda: _frame().copy()),
    ("user object with equal attributes",
     lambda: Settings(0.5, {"a", "b", "c"}), lambda: Settings(0.5, {"c", "b", "a"})),
]


@pytest.mark.parametrize(("left", "right"), [s[1:] for s in SAME], ids=[s[0] for s in SAME])
def test_equal_values_share_a_fingerprint(left: Callable[[], Any], right: Callable[[], Any]) -> None:
    assert dagnb.fingerprint(left()) == dagnb.fingerprint(right())


def test_object_sharing_a_list_twice_hashes_like_one_holding_copies() -> None:
    """Pickle's memo would write a back-reference for the second ``s``; dagnb must not."""
    s = [1, 2, 3]
    shared, copied = Settings(1.0, set()), Settings(1.0, set())
    shared.pair = [s, s]  # type: ignore[attr-defined]
    copied.pair = [s, copy.copy(s)]  # type: ignore[attr-defined]
    assert dagnb.fingerprint(shared) == dagnb.fingerprint(copied)


def test_memmap_and_ndarray_of_the_same_data_share_a_fingerprint(tmp_path: Path) -> None:
    mm = _memmap(tmp_path)
    assert type(mm) is np.memmap
    assert dagnb.fingerprint(mm) == dagnb.fingerprint(np.arange(12, dtype=np.float64).reshape(3, 4))


def test_user_objects_with_different_attributes_differ() -> None:
    assert dagnb.fingerprint(Settings(0.5, {"a"})) != dagnb.fingerprint(Settings(0.25, {"a"}))
    assert dagnb.fingerprint(Settings(0.5, {"a"})) != dagnb.fingerprint(Settings(0.5, {"b"}))


def _enum_member(source: str) -> Any:
    """``Mode.FAST`` of an enum defined by ``source`` as a notebook cell defines it (its code in memory only)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(source), "<cell>", "exec"), namespace)
    return namespace["Mode"].FAST


def test_an_enum_defined_in_a_notebook_fingerprints_by_its_members_and_code() -> None:
    """Its members are attributes of its own class: walking the class meets them, and goes by their values."""
    base = "import enum\nclass Mode(enum.Enum):\n    FAST = 1\n    SLOW = 2\n"
    same = dagnb.fingerprint(_enum_member(base)), dagnb.fingerprint(_enum_member(base))
    assert same[0] == same[1]
    other_value = dagnb.fingerprint(_enum_member(base.replace("FAST = 1", "FAST = 3")))
    other_member = dagnb.fingerprint(_enum_member(base + "    GONE = 4\n"))
    other_method = dagnb.fingerprint(_enum_member(base + "    def speed(self):\n        return 1\n"))
    assert len({same[0], other_value, other_member, other_method}) == 4


# -------------------------------------------------------- hash seed stability

# Run both in this process and in subprocesses with other hash seeds. The
# class lives in a module registered under a fixed name, so pickle finds it
# by the same qualified name everywhere.
PROBE = textwrap.dedent(
    """
    import sys, types
    import pandas as pd
    import dagnb

    module = types.ModuleType("dagnb_seed_probe")
    sys.modules["dagnb_seed_probe"] = module
    exec(
        "class Holder:\\n"
        "    def __init__(self, tags):\\n"
        "        self.tags = tags\\n",
        module.__dict__,
    )
    words = [f"word{i}" for i in range(50)]
    values = {
        "set of strings": set(words),
        "frozenset": frozenset(words + [1, 2.5, (3, "x")]),
        "dict": {w: {w[::-1]} for w in words},
        "list of a set of strings": [1.5, set(words)],
        "a frozenset deep in plain containers": {"k": [[(1, "a", frozenset(words))]]},
        "object with a set attribute": module.Holder(set(words)),
        "frame": pd.DataFrame({"w": pd.Categorical(words[:5]), "n": range(5)}),
    }
    digests = {name: dagnb.fingerprint(value) for name, value in values.items()}
    """
)


def _digests_in_subprocess(seed: str) -> dict[str, str]:
    script = PROBE + "\nimport json\nprint(json.dumps(digests))\n"
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_fingerprints_do_not_depend_on_the_hash_seed() -> None:
    namespace: dict[str, Any] = {}
    exec(PROBE, namespace)
    here = namespace["digests"]
    assert _digests_in_subprocess("1") == _digests_in_subprocess("2") == here


# ------------------------------------------------------------ unfingerprintable


def test_a_lock_is_unfingerprintable_with_a_message_naming_the_type_and_the_fix() -> None:
    with pytest.raises(Unfingerprintable) as info:
        dagnb.fingerprint(threading.Lock())
    message = str(info.value)
    assert "`_thread.lock`" in message
    assert "dagnb.register_fingerprint(lock, fn)" in message


@pytest.mark.parametrize(
    "wrap",
    [lambda x: [x], lambda x: (1, x), lambda x: {"k": x}, lambda x: [[x]],
     lambda x: types.SimpleNamespace(lock=x)],
    ids=["list", "tuple", "dict value", "nested list", "object attribute"],
)
def test_a_container_of_an_unfingerprintable_value_is_unfingerprintable(wrap: Callable[[Any], Any]) -> None:
    """A container never collapses to a constant fingerprint."""
    with pytest.raises(Unfingerprintable):
        dagnb.fingerprint(wrap(threading.Lock()))


def test_a_self_referencing_list_fingerprints() -> None:
    """A cyclic list is a legal task output: it fingerprints (by its pickle, with a memo), never crashes."""
    loop: list[Any] = [1]
    loop.append(loop)
    other: list[Any] = [2]
    other.append(other)
    assert dagnb.fingerprint(loop) == dagnb.fingerprint(loop) != dagnb.fingerprint(other)


class Connection:
    """Stands in for a value with no stable pickle (holds a lock)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()


def test_register_fingerprint_teaches_a_new_type_and_mixes_in_the_type() -> None:
    with pytest.raises(Unfingerprintable):
        dagnb.fingerprint(Connection("db://a"))

    class OtherConnection(Connection):
        pass

    dagnb.register_fingerprint(Connection, lambda c: c.url)

    assert dagnb.fingerprint(Connection("db://a")) == dagnb.fingerprint(Connection("db://a"))
    assert dagnb.fingerprint(Connection("db://a")) != dagnb.fingerprint(Connection("db://b"))
    # The type's qualified name is mixed in: not the fingerprint of the url alone,
    # and a subclass with the same url does not collide.
    assert dagnb.fingerprint(Connection("db://a")) != dagnb.fingerprint("db://a")
    assert dagnb.fingerprint(Connection("db://a")) != dagnb.fingerprint(OtherConnection("db://a"))
    # And a container of it is now fingerprintable.
    assert dagnb.fingerprint([Connection("db://a")]) == dagnb.fingerprint([Connection("db://a")])


# ------------------------------------------------------------------------ files


def test_file_content_change_gives_a_new_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    before = dagnb.fingerprint(dagnb.file(path))
    path.write_text("a,b\n1,3\n")  # same size, other content
    assert dagnb.fingerprint(dagnb.file(path)) != before


def test_small_file_with_new_mtime_but_same_content_keeps_its_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    before = dagnb.fingerprint(dagnb.file(path))
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    assert dagnb.fingerprint(dagnb.file(path)) == before


def test_file_without_content_hashing_changes_with_mtime(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    os.utime(path, ns=(10**18, 10**18))
    before = dagnb.fingerprint(dagnb.file(path, content=False))
    os.utime(path, ns=(2 * 10**18, 2 * 10**18))
    assert dagnb.fingerprint(dagnb.file(path, content=False)) != before


def test_a_missing_file_fingerprints_without_raising_and_differs_once_created(tmp_path: Path) -> None:
    path = tmp_path / "not-yet.csv"
    missing = dagnb.fingerprint(dagnb.file(path))
    assert missing == dagnb.fingerprint(dagnb.file(path))
    path.write_text("x")
    assert dagnb.fingerprint(dagnb.file(path)) != missing


def test_file_ref_is_path_like() -> None:
    ref = dagnb.file("data/iris.csv")
    assert os.fspath(ref) == "data/iris.csv"
    assert repr(ref) == "dagnb.file('data/iris.csv')"
