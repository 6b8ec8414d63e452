"""The secret: created whole or not at all, and refused when it cannot be trusted.

Attacks and accidents, each for real: the first use of dagnb on a full
disk (a real tmpfs filled to the last block); 300 trials of 8 threads
creating the key at once; a key file that is world-writable, group-writable,
readable by others, a symbolic link to a public file, someone else's,
short, or empty; ``DAGNB_CACHE_KEY=a``. Behind each bad key sits a cache
with an entry signed with that key whose value is a malicious pickle: it
must never be unpickled. Each refusal is one paragraph (exact text checked),
and a session over such a cache still works, in memory.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

import faultlib
import pytest
from notebook_cells import Notebook

import dagnb
from dagnb.cache import trust
from dagnb.cache.store import CacheEntry, DiskStore, MemoryStore
from dagnb.cache.trust import SecretError
from dagnb.errors import DagnbCacheWarning

DATA = """
def data():
    note("data")
    return [1, 2, 3]
"""


class Evil:
    """Unpickling this creates a file: proof that it was unpickled."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.target), "w"))


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder of this user's, with no key in it yet (``$XDG_DATA_HOME``)."""
    folder = tmp_path / "data-home"
    folder.mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    monkeypatch.delenv("DAGNB_CACHE_KEY", raising=False)
    return folder


def plant_forged(root: Path, key: bytes, target: Path, tmp_path: Path) -> None:
    """An entry for the key `data` will have, signed with ``key``, whose value creates ``target`` when unpickled."""
    nb = Notebook(tmp_path, cache=False)
    nb.task(DATA)
    task_key = nb.graph.plan()["data"].key.key  # type: ignore[union-attr]
    store = DiskStore(root, secret=key)
    store.put(CacheEntry(task_key, "data", "e" * 32), Evil(target))
    store.close()


def session_runs_safely(tmp_path: Path, root: Path, target: Path) -> tuple[list[str], list[str], Any]:
    """A notebook session over ``root``: returns what ran, the cache warnings, and its store."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb = Notebook(tmp_path, cache=False)
        nb.graph = dagnb.Graph(cache_dir=str(root), namespace=nb.ns)
        nb.task(DATA)
        report, ran = nb.run()
    assert report.ok and nb.graph["data"] == [1, 2, 3]
    assert not target.exists(), "the malicious pickle was unpickled"
    return ran, [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)], nb.graph.store


# ------------------------------------------------------------ full disk


def test_a_full_disk_on_first_use_leaves_no_key_and_no_empty_key(tmp_path: Path, small_disk: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(small_disk))
    monkeypatch.delenv("DAGNB_CACHE_KEY", raising=False)
    (small_disk / "dagnb").mkdir()
    faultlib.fill(small_disk)
    path = small_disk / "dagnb" / "cache.key"
    with pytest.raises(SecretError) as refused:
        trust.load_secret()
    message = (f"dagnb could not create your secret at {path} (No space left on device). Free some space or "
               f"make {path.parent} writable (or set `DAGNB_CACHE_KEY`); dagnb creates the secret on next use.")
    assert str(refused.value) == message
    assert list(path.parent.iterdir()) == [], "no key file, empty or not, and no temporary file"

    root, target = tmp_path / "cache", tmp_path / "pwned"
    plant_forged(root, b"", target, tmp_path)  # what the empty key of the old bug would have accepted
    ran, warned, store = session_runs_safely(tmp_path, root, target)
    assert ran == ["data"] and isinstance(store, MemoryStore)
    assert warned == [f"{message} Until then, dagnb keeps results in memory only (nothing is cached on disk)."]

    (small_disk / "filler").unlink()  # space again: a real key is created, the forged entry stays foreign
    ran, warned, store = session_runs_safely(tmp_path, root, target)
    assert ran == ["data"] and len(trust.load_secret()) == 32
    assert any("is not signed with your secret" in w for w in warned), warned
    store.close()
    faultlib.record_case("test_key", "first use on a full tmpfs: no key file left, a forged entry signed with the "
                                     "empty key never loaded")


# ------------------------------------------------------------ racing threads


def test_threads_creating_the_key_at_once_all_get_the_one_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DAGNB_CACHE_KEY", raising=False)
    trials, threads, empty, disagreed, failed = 300, 8, 0, 0, 0
    for trial in range(trials):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / f"home-{trial}"))
        barrier, got = threading.Barrier(threads), []

        def create() -> None:
            barrier.wait()
            try:
                got.append(trust.load_secret())
            except SecretError as exc:  # collected, not raised in a thread
                got.append(exc)

        workers = [threading.Thread(target=create) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        keys = [k for k in got if isinstance(k, bytes)]
        failed += len(got) - len(keys)
        empty += sum(1 for k in keys if len(k) < 32)
        disagreed += len(set(keys)) > 1
        assert trust.secret_path().read_bytes() in keys
    assert (empty, disagreed, failed) == (0, 0, 0)
    faultlib.record_case("test_key", f"{trials} trials of {threads} threads creating the key at once: 0 empty, "
                                     f"0 disagreeing, 0 failed")


# ------------------------------------------------------------ keys not to trust


def _untrusted(path: Path, what: str) -> str:
    return (f"The secret at {path} {what}, so dagnb does not trust it to sign cache entries. Delete it and dagnb "
            f"creates a new secret of your own on next use (entries signed with the old one are recomputed), or set "
            f"`DAGNB_CACHE_KEY` to share a secret on purpose.")


def _exposed(path: Path, mode: int) -> str:
    return (f"The secret at {path} can be read or written by other users (mode {mode:04o}); whoever can read it "
            f"can sign cache entries your kernels will load (and run). Make it private with `chmod 600 {path}`, or, "
            f"if others may have read or changed it, delete it: dagnb creates a new one on next use (entries signed "
            f"with the old secret are recomputed).")


def _write_key(path: Path, secret: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(secret)
    path.chmod(mode)


def _mode(mode: int) -> Any:
    def make(path: Path, secret: bytes) -> str:
        _write_key(path, secret, mode)
        return _exposed(path, mode)

    return make


def _symlink(path: Path, secret: bytes) -> str:
    public = path.parent.parent / "public.txt"
    public.write_bytes(secret)
    public.chmod(0o644)
    path.parent.mkdir(exist_ok=True)
    path.symlink_to(public)
    return _untrusted(path, f"is a symbolic link (to {public})")


def _foreign(path: Path, secret: bytes) -> str:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    _write_key(path, secret)
    os.chown(path, 65534, -1)
    return _untrusted(path, f"belongs to {trust.user_name(65534)}, not to you ({trust.user_name(os.geteuid())})")


def _short(size: int) -> Any:
    def make(path: Path, secret: bytes) -> str:
        _write_key(path, secret[:size])
        what = (f"is {size} bytes long (dagnb writes 32 random bytes; an empty file is what a full disk left "
                f"behind)")
        return _untrusted(path, what)

    return make


KEY_FILES = {
    "world-writable": _mode(0o666),
    "group-writable": _mode(0o620),
    "readable by others": _mode(0o644),
    "a symbolic link to a public file": _symlink,
    "someone else's": _foreign,
    "5 bytes long": _short(5),
    "empty": _short(0),
}


@pytest.mark.parametrize("case", list(KEY_FILES))
def test_a_key_file_that_cannot_be_trusted_is_refused(home: Path, tmp_path: Path, case: str) -> None:
    path = trust.secret_path()
    secret = b"k" * 40
    message = KEY_FILES[case](path, secret)
    with pytest.raises(SecretError) as refused:
        trust.load_secret()
    assert str(refused.value) == message
    root, target = tmp_path / "cache", tmp_path / "pwned"
    plant_forged(root, path.read_bytes() if path.exists() else secret, target, tmp_path)
    ran, warned, store = session_runs_safely(tmp_path, root, target)
    assert ran == ["data"] and isinstance(store, MemoryStore)
    assert warned == [f"{message} Until then, dagnb keeps results in memory only (nothing is cached on disk)."]
    faultlib.record_case("test_key", f"a key file {case}: refused, a forged entry signed with it never loaded")


@pytest.mark.parametrize("value", ["a", "x" * 31])
def test_a_short_shared_key_is_refused(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DAGNB_CACHE_KEY", value)
    message = (f"`DAGNB_CACHE_KEY` is {len(value)} characters long; a shared secret needs at least 32, or someone "
               f"could guess it and sign cache entries your kernels would load (and run). Set it to a random "
               f"secret, the same for everyone who shares the cache, for example the output of "
               f"`python -c \"import secrets; print(secrets.token_hex(32))\"`.")
    with pytest.raises(SecretError) as refused:
        trust.load_secret()
    assert str(refused.value) == message
    root, target = tmp_path / "cache", tmp_path / "pwned"
    plant_forged(root, value.encode(), target, tmp_path)
    ran, warned, _ = session_runs_safely(tmp_path, root, target)
    assert ran == ["data"] and warned == [
        f"{message} Until then, dagnb keeps results in memory only (nothing is cached on disk)."]
    faultlib.record_case("test_key", f"DAGNB_CACHE_KEY of {len(value)} characters: refused, a forged entry signed "
                                     f"with it never loaded")


def test_the_refusal_is_one_paragraph_in_a_real_ipython_shell(home: Path, tmp_path: Path) -> None:
    """`%load_ext dagnb` still works: one warning, then the magics run with values in memory."""
    _write_key(trust.secret_path(), b"k" * 40, 0o666)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shell = faultlib.ipython_shell(tmp_path / "cache")
        try:
            shell.user_ns["LOG"] = str(tmp_path / "log.txt")
            faultlib.ipython_cell(shell, "%%task\ndef numbers():\n    open(LOG, 'a').write('numbers\\n')\n"
                                         "    return [1, 2]\n")
            assert shell.user_ns["numbers"] == [1, 2]
        finally:
            faultlib.unload_ipython(shell)
    assert [str(w.message) for w in caught if issubclass(w.category, DagnbCacheWarning)] == [
        f"{_exposed(trust.secret_path(), 0o666)} Until then, dagnb keeps results in memory only (nothing is cached on "
        f"disk)."]
    assert not (tmp_path / "cache").exists(), "nothing was written with a key others could have changed"


def test_a_good_key_file_is_used(home: Path) -> None:
    _write_key(trust.secret_path(), b"k" * 40)
    assert trust.load_secret() == b"k" * 40
