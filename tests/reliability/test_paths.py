"""Cache operations touch only paths they derive themselves, inside the cache, without following links.

Attacks, each performed for real on a cache a notebook filled: a ``blobs``
row (unsigned in format 2, and in any case written by whoever can write
``meta.sqlite``) whose fingerprint is an absolute path or a ``../`` path to
a file of the user's; a shard folder ``blobs/ab`` and the ``blobs`` folder
itself replaced by a symbolic link to a folder of the user's holding old
``*.pkl`` and ``.tmp-*`` files. Then every command that deletes files runs:
``DiskStore.verify``/``prune``/``clear``, ``dagnb cache verify|prune|clear``
and ``%dag cache verify|prune|clear`` in a real IPython shell. Nothing
outside the cache may change, and ``verify`` must say what it found.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import faultlib
import pytest
from notebook_cells import Notebook

from dagnb.cache.store import DiskStore

DATA = """
def data():
    note("data")
    return list(range(1000))
"""
TOTAL = """
def total(data):
    note("total")
    return sum(data)
"""


def filled(tmp_path: Path) -> Path:
    nb = Notebook(tmp_path)
    nb.task(DATA)
    nb.task(TOTAL)
    nb.run()
    nb.graph.store.close()
    return tmp_path / "cache"


def forge_row(root: Path, fingerprint: str) -> None:
    db = sqlite3.connect(root / "meta.sqlite")
    with db:
        db.execute("INSERT INTO blobs (fingerprint, signature, nbytes, created, last_used) "
                   "VALUES (?, 'forged', 20, 0, 0)", (fingerprint,))
    db.close()


def _store_op(action: str) -> Callable[[Path], str]:
    """The operation on a DiskStore; returns what it said and warned."""

    def run(root: Path) -> str:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store = DiskStore(root)
            result = {"verify": store.verify, "prune": lambda: store.prune(0), "clear": store.clear}[action]()
            store.close()
        return "\n".join([str(result), *(str(w.message) for w in caught)])

    return run


def _cli_op(action: str) -> Callable[[Path], str]:
    def run(root: Path) -> str:
        extra = ["--max-size", "0"] if action == "prune" else []
        done = subprocess.run([sys.executable, "-m", "dagnb", "cache", action, "--cache-dir", str(root), *extra],
                              capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout.strip() + "\n" + done.stderr.strip()

    return run


def _magic_op(action: str) -> Callable[[Path], str]:
    def run(root: Path) -> str:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            shell = faultlib.ipython_shell(root)
            try:
                said = faultlib.ipython_cell(shell, f"%dag cache {action}" + (" --max-size 0" if action == "prune" else ""))
            finally:
                faultlib.unload_ipython(shell)
        return "\n".join([said, *(str(w.message) for w in caught)])

    return run


OPERATIONS = {f"{how} {action}": make(action) for how, make in (("store", _store_op), ("dagnb cache", _cli_op),
                                                                 ("%dag cache", _magic_op))
              for action in ("verify", "prune", "clear")}


def _forged(form: str, root: Path, victims: Path) -> str:
    """A fingerprint that the old ``ROOT/blobs/fp[:2]/fp.pkl`` turned into ``victims/notes.pkl``."""
    if form == "absolute path":
        return str(victims / "notes")  # ROOT/blobs/"/t"/"/…/notes.pkl" is the absolute path itself
    return os.path.relpath(victims / "notes", root)  # "../home/notes": ROOT/blobs/../../home/notes.pkl


@pytest.mark.parametrize("form", ["absolute path", "../ path"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_forged_fingerprint_never_names_a_file_outside_the_cache(tmp_path: Path, operation: str, form: str) -> None:
    root = filled(tmp_path)
    victims = faultlib.plant_victims(tmp_path / "home")
    before = faultlib.snapshot(victims)
    forge_row(root, _forged(form, root, victims))
    OPERATIONS[operation](root)
    assert faultlib.lost(before, victims) == [], f"{operation} deleted or changed a file outside the cache"
    faultlib.assert_usable(root)
    faultlib.record_case("test_paths", f"{form} as a fingerprint, then {operation}")


def _link_shard(root: Path, victims: Path) -> str:
    shard = next(p for p in sorted((root / "blobs").iterdir()) if p.is_dir())
    shard.rename(root / "moved-away")  # the real shard is out of the way; its values are gone
    shard.symlink_to(victims, target_is_directory=True)
    return f"blobs/{shard.name}"


def _link_blobs(root: Path, victims: Path) -> str:
    (root / "blobs").rename(root / "moved-away")
    (root / "blobs").symlink_to(victims, target_is_directory=True)
    return "blobs"


@pytest.mark.value_files
@pytest.mark.parametrize("where", ["a shard folder", "the blobs folder"])
@pytest.mark.parametrize("operation", [o for o in OPERATIONS if "clear" not in o])
def test_a_symbolic_link_in_the_cache_is_never_followed(tmp_path: Path, operation: str, where: str) -> None:
    root = filled(tmp_path)
    victims = faultlib.plant_victims(tmp_path / "home", ("0" * 32 + ".pkl", "ab" * 16 + ".pkl", ".tmp-old.pkl",
                                                         "thesis.tex"))
    shard = (victims / "ab")  # a victim folder that looks like a shard, inside the linked folder
    faultlib.plant_victims(shard, ("ab" * 16 + ".pkl", ".tmp-x.pkl"))
    before = faultlib.snapshot(victims)
    link = (_link_shard if where == "a shard folder" else _link_blobs)(root, victims)
    said = OPERATIONS[operation](root)
    assert faultlib.lost(before, victims) == [], f"{operation} deleted or changed a file outside the cache"
    if where == "the blobs folder":  # found when the cache opens, whatever the command
        assert f"`blobs` was a symbolic link (to {victims}); dagnb removed the link, never what it pointed to" in said
    elif "verify" in operation:
        assert "all intact" not in said, said
        assert f"symbolic links planted where dagnb keeps its files ({link}), never what they point to" in said, said
    if "verify" in operation or where == "the blobs folder":
        assert not (root / link).is_symlink(), "the link itself is removed"
    faultlib.assert_usable(root)
    faultlib.record_case("test_paths", f"{where} replaced by a symlink, then {operation}")
