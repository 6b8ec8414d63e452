"""A cache shared by a group of real users, and caches this user can only read.

Two real users, ``dagnb-alice`` and ``dagnb-bob`` (group ``dagnb-team``,
created by :mod:`users`, switched to with ``setpriv``, each with umask 022
and the team's ``DAGNB_CACHE_KEY``), share a group-writable setgid folder,
as the team cache of docs/cache.md says: each must hit what the other computed, add
to it, and verify it, without anyone's file being lost. Then a cache of
alice's that bob may only read, and a cache on a read-only file system, are
opened with ``%load_ext dagnb`` in a real IPython shell: one warning, the
magics work, hits load, new results stay in memory, nothing is written.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import stat
import subprocess
import warnings
from pathlib import Path
from typing import Any

import faultlib
import pytest
import users
from notebook_cells import Notebook

import dagnb.cache.writer
from dagnb.errors import DagnbCacheWarning

TEAM_KEY = "the team's shared cache key, 32 characters or more"

CELLS = {
    "numbers": "def numbers():\n    open(LOG, 'a').write('numbers\\n')\n    return list(range(10))\n",
    "total": "def total(numbers):\n    open(LOG, 'a').write('total\\n')\n    return sum(numbers)\n",
    "squares": "def squares(numbers):\n    open(LOG, 'a').write('squares\\n')\n    return [n * n for n in numbers]\n",
}

SESSION = """
import json, linecache, os, warnings
import dagnb
import dagnb.cache.writer
from dagnb.errors import DagnbCacheWarning
dagnb.cache.writer.ROW_LIMIT = int(os.environ["ROW_LIMIT"])  # 0: every value in a file, whose owner and mode are checked
names = json.loads(os.environ["TASKS"])
cells = json.loads(os.environ["CELLS"])
namespace = {"LOG": os.environ["LOG"], "__name__": "__main__"}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    graph = dagnb.Graph(cache_dir=os.environ["CACHE"], namespace=namespace)
    for name in names:
        filename = f"<cell-{name}>"
        linecache.cache[filename] = (len(cells[name]), None, cells[name].splitlines(True), filename)
        exec(compile(cells[name], filename, "exec"), namespace)
        graph.task(namespace[name])
    report = graph.run()
print(json.dumps({"executed": report.executed, "cached": report.cached, "values": {n: graph[n] for n in names},
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)]}))
"""

VERIFY = """
import json, subprocess, sys, os
done = subprocess.run([sys.executable, "-m", "dagnb", "cache", "verify", "--cache-dir", os.environ["CACHE"]],
                      capture_output=True, text=True)
print(json.dumps({"code": done.returncode, "out": done.stdout.strip(), "err": done.stderr.strip()}))
"""


def session(user: str, shared: Path, *tasks: str) -> Any:
    log = shared / "log.txt"
    if not log.exists():  # the task bodies of both users append to it
        log.touch()
        log.chmod(0o666)
    env = {"DAGNB_CACHE_KEY": TEAM_KEY, "CACHE": str(shared / "cache"), "LOG": str(shared / "log.txt"),
           "TASKS": json.dumps(tasks), "CELLS": json.dumps(CELLS),
           "ROW_LIMIT": str(dagnb.cache.writer.ROW_LIMIT)}
    return users.run_as(user, SESSION, env)


def files(root: Path) -> dict[str, os.stat_result]:
    return {str(p.relative_to(root)): p.lstat() for p in sorted(root.rglob("*")) if not p.name.startswith(".tmp-")}


@pytest.mark.value_files
def test_a_group_shared_cache_serves_both_users_and_loses_nothing() -> None:
    alice, bob = users.require_users()
    team = grp.getgrnam(users.GROUP).gr_gid
    shared = users.folder(0o2770, group=users.GROUP)  # as an administrator sets up a team folder
    try:
        first = session(alice, shared, "numbers", "total")
        assert (first["executed"], first["warnings"]) == (["numbers", "total"], [])
        second = session(bob, shared, "numbers", "total")
        assert (second["executed"], second["values"], second["warnings"]) == ([], first["values"], []), second
        third = session(bob, shared, "numbers", "total", "squares")
        assert third["executed"] == ["squares"]
        fourth = session(alice, shared, "numbers", "total", "squares")
        assert (fourth["executed"], fourth["values"]) == ([], third["values"]), "alice hits what bob computed"

        root = shared / "cache"
        made = files(root)
        for name, info in made.items():
            wanted = 0o070 if stat.S_ISDIR(info.st_mode) else 0o060
            assert info.st_mode & wanted == wanted, f"{name} is not readable and writable by the team"
            assert info.st_gid == team, f"{name} is not the team's"
        owners = {info.st_uid for info in made.values()}
        assert len(owners) == 2, "both users wrote files"
        for user in (alice, bob):
            checked = users.run_as(user, VERIFY, {"DAGNB_CACHE_KEY": TEAM_KEY, "CACHE": str(root)})
            assert checked["code"] == 0 and checked["out"].endswith("all intact and signed with your secret"), checked
        assert set(files(root)) >= set(made), "a verify removed another user's file"
        assert (shared / "log.txt").read_text().split() == ["numbers", "total", "squares"]
    finally:
        shutil.rmtree(shared)
    faultlib.record_case("test_shared", "2 real users (setpriv, umask 022) on a group-shared cache: each hit the "
                                        "other's values, both verified it, 0 files lost")


# ------------------------------------------------------- read-only caches

SHELL = """
import json, os, warnings
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from dagnb.errors import DagnbCacheWarning
shell = InteractiveShell.instance()
shell.user_ns["LOG"] = os.environ["LOG"]
said = []
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    for cell in json.loads(os.environ["RUN"]):
        with capture_output() as out:
            result = shell.run_cell(cell)
        error = result.error_in_exec or result.error_before_exec
        if error:
            said.append(str(error))
        elif result.result is not None:
            bundle = result.result._repr_mimebundle_()
            said.append((bundle[0] if isinstance(bundle, tuple) else bundle)["text/plain"].strip())
        else:
            shown = [o.data.get("text/plain", "") for o in out.outputs]
            said.append(chr(10).join(part.strip() for part in [out.stdout, *shown] if part.strip()))
values = {n: shell.user_ns.get(n) for n in ("numbers", "total", "squares")}
print(json.dumps({"said": said, "values": values,
                  "warnings": [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)]}))
"""

READ_ONLY_CELLS = ["%load_ext dagnb", *(f"%%task\n{CELLS[n]}" for n in ("numbers", "total", "squares")),
                   "%dag cache prune --max-size 0", "%dag cache info"]


def _read_only_warning(root: Path, why: str) -> str:
    return (f"The cache at {root} is read-only for you ({why}). dagnb uses it read-only: the values it holds load as "
            f"usual, and new results stay in memory for this session (recomputed after a restart). To keep them, "
            f"use a cache you can write (`DAGNB_CACHE_DIR`, `%dag cache --dir PATH`).")


def _prune_refused(root: Path, why: str) -> str:
    return (f"The cache at {root} is read-only for you ({why}), so `prune` cannot change it. Ask its owner to run it, "
            f"or use a cache of your own (`DAGNB_CACHE_DIR`, `%dag cache --dir PATH`).")


def test_a_cache_of_another_user_opens_read_only_in_a_real_shell() -> None:
    alice, bob = users.require_users()
    published = users.folder(0o755, owner=alice)  # alice's, readable by all, writable by her only
    log = users.folder(0o777)
    try:
        root = published / "cache"
        filled = users.run_as(alice, SHELL, {"DAGNB_CACHE_KEY": TEAM_KEY, "DAGNB_CACHE_DIR": str(root),
                                             "LOG": str(log / "log.txt"), "RUN": json.dumps(READ_ONLY_CELLS[:3])})
        assert filled["said"][1:] == ["numbers: ran (new)", "total: ran (new)"] and filled["warnings"] == []
        subprocess.run(["chmod", "-R", "go+rX", str(root)], check=True)  # published for others to read
        before = faultlib.snapshot(root)
        (log / "log.txt").unlink()
        seen = users.run_as(bob, SHELL, {"DAGNB_CACHE_KEY": TEAM_KEY, "DAGNB_CACHE_DIR": str(root),
                                         "LOG": str(log / "log.txt"), "RUN": json.dumps(READ_ONLY_CELLS)})
        why = "the folder belongs to user dagnb-alice and you cannot write to it"
        assert seen["warnings"] == [_read_only_warning(root, why)], seen["warnings"]
        assert seen["said"][1:3] == ["numbers: cached", "total: cached"], seen["said"]
        assert seen["said"][3] == "squares: ran (new)"
        assert seen["said"][4] == _prune_refused(root, why)
        assert seen["said"][5].splitlines()[-2] == f"read-only for you: {why}"
        assert seen["values"] == {"numbers": list(range(10)), "total": 45, "squares": [n * n for n in range(10)]}
        assert (log / "log.txt").read_text().split() == ["squares"], "the hits ran nothing"
        assert faultlib.snapshot(root) == before, "a read-only cache was changed"
    finally:
        shutil.rmtree(published)
        shutil.rmtree(log)
    faultlib.record_case("test_shared", "another user's cache, readable only: %load_ext with one warning, 2 hits, "
                                        "the new task in memory, prune refused, nothing changed")


@pytest.mark.value_files
def test_values_another_user_keeps_private_are_misses_and_stay(tmp_path: Path) -> None:
    """Bob may write the folder but not read alice's 0600 value files: misses (Permission denied), nothing removed."""
    alice, bob = users.require_users()
    shared = users.folder(0o2770, group=users.GROUP)
    try:
        session(alice, shared, "numbers", "total")
        root = shared / "cache"
        for value in root.glob("blobs/*/*.pkl"):
            value.chmod(0o600)  # as a dagnb of format 2 wrote them
        before = {name: info.st_ino for name, info in files(root).items()}
        seen = session(bob, shared, "numbers", "total")
        assert seen["executed"] == ["numbers", "total"] and seen["values"] == {"numbers": list(range(10)), "total": 45}
        assert len(seen["warnings"]) == 2 and all("cannot be read (Permission denied)" in w for w in seen["warnings"])
        after = {name: info.st_ino for name, info in files(root).items()}
        assert {n: i for n, i in after.items() if n in before} == before, "a value that could not be read was removed"
        again = session(alice, shared, "numbers", "total")
        assert again["executed"] == [], "alice's values are all still there"
    finally:
        shutil.rmtree(shared)
    faultlib.record_case("test_shared", "another user's private value files (0600): misses with Permission denied, "
                                        "0 files removed, the owner still hits")


def test_a_cache_on_a_read_only_file_system_opens_read_only(tmp_path: Path, small_disk: Path) -> None:
    root = small_disk / "cache"
    nb = Notebook(tmp_path, cache=False)
    nb.graph.store.close()
    shell = faultlib.ipython_shell(root)
    try:
        shell.user_ns["LOG"] = str(tmp_path / "log.txt")
        for name in ("numbers", "total"):
            faultlib.ipython_cell(shell, f"%%task\n{CELLS[name]}")
    finally:
        faultlib.unload_ipython(shell)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    before = faultlib.snapshot(root)
    (tmp_path / "log.txt").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shell = faultlib.ipython_shell(root)
        try:
            shell.user_ns["LOG"] = str(tmp_path / "log.txt")
            said = [faultlib.ipython_cell(shell, f"%%task\n{CELLS[n]}") for n in ("numbers", "total", "squares")]
            result = shell.run_cell("%dag cache prune --max-size 0")
            assert str(result.error_in_exec) == _prune_refused(root, "it is on a read-only file system")
        finally:
            faultlib.unload_ipython(shell)
    assert [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)] == [
        _read_only_warning(root, "it is on a read-only file system")]
    assert said == ["numbers: cached", "total: cached", "squares: ran (new)"]
    assert (tmp_path / "log.txt").read_text().split() == ["squares"]
    assert faultlib.snapshot(root) == before
    faultlib.record_case("test_shared", "a cache on a read-only tmpfs: %load_ext with one warning, 2 hits, the new "
                                        "task in memory, prune refused, nothing changed")
