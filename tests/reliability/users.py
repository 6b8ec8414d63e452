"""Real users for the tests of shared and foreign caches: created once (root only), switched to with ``setpriv``.

Two users, ``dagnb-alice`` and ``dagnb-bob``, both in the group
``dagnb-team``, are created with ``groupadd``/``useradd`` the first time a
test asks for them (idempotent: existing ones are reused). Without root, or
without those tools, the tests that need them are skipped with the reason.
Each user gets a home of their own under ``/tmp`` (their key, their
IPython profile), and runs this interpreter with the same dagnb.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

GROUP = "dagnb-team"
USERS = ("dagnb-alice", "dagnb-bob")


def require_users() -> tuple[str, str]:
    """The two test users (created if need be), or a skip saying why they cannot be."""
    if os.geteuid() != 0:
        pytest.skip("switching between two real users needs root (the tests create dagnb-alice and dagnb-bob)")
    missing = [tool for tool in ("groupadd", "useradd", "setpriv") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"creating and switching users needs {', '.join(missing)}")
    _run(["groupadd", "-f", GROUP])
    for user in USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            _run(["useradd", "-M", "-N", "-g", GROUP, "-s", "/usr/sbin/nologin", user])
    return USERS


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"`{' '.join(argv)}` failed: {done.stderr.strip()}")


def folder(mode: int, owner: str | None = None, group: str | None = None) -> Path:
    """A fresh folder under /tmp that other users can reach (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="dagnb-users-", dir="/tmp"))
    os.chown(path, pwd.getpwnam(owner).pw_uid if owner else -1, grp.getgrnam(group).gr_gid if group else -1)
    path.chmod(mode)
    return path


def home(user: str) -> Path:
    """A private home for ``user``: their key and IPython profile live there."""
    path = folder(0o700, user)
    return path


def _blocked() -> tuple[Path, Path] | None:
    """The folder other users cannot enter on the way to this interpreter, and its child on that way.

    A pyenv Python under ``/root`` (mode 0700) is the usual case: the test
    users get a private mount namespace in which ``/root`` is an empty,
    enterable tmpfs with only that child bind-mounted back. Nothing changes
    for the machine.
    """
    needed = {Path(os.path.realpath(sys.executable)), Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()}
    blocked = set()
    for path in needed:
        for parent in [*reversed(path.parents)][1:]:
            if not os.stat(parent).st_mode & 0o001:
                blocked.add((parent, parent / path.relative_to(parent).parts[0]))
                break
    if len(blocked) > 1 or len({b for b, _ in blocked}) > 1:
        pytest.skip(f"this interpreter is behind folders other users cannot enter: {sorted(blocked)}")
    return next(iter(blocked), None)


def _switch(user: str, argv: list[str], spare: Path) -> list[str]:
    """``argv`` run as ``user`` (in group dagnb-team), through a mount namespace if the interpreter needs one."""
    switched = ["setpriv", f"--reuid={user}", f"--regid={GROUP}", "--init-groups", "--", *argv]
    blocked = _blocked()
    if blocked is None:
        return switched
    if shutil.which("unshare") is None:
        pytest.skip(f"this interpreter is under {blocked[0]}, which other users cannot enter, and there is no unshare")
    parent, child = blocked
    script = ('set -e; mount --bind "$1" "$2"; mount -t tmpfs -o mode=0755 tmpfs "$3"; mkdir "$4"; '
              'mount --bind "$2" "$4"; shift 4; exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(child), str(spare),
            str(parent), str(child), *switched]


def run_as(user: str, code: str, env: dict[str, str], timeout: float = 120) -> Any:
    """Run ``code`` with this interpreter as ``user`` (umask 022, a fresh home); return the JSON it prints last."""
    user_home = home(user)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(user_home),
        "XDG_DATA_HOME": str(user_home / "data"),
        "IPYTHONDIR": str(user_home / "ipython"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **env,
    }
    spare = Path(tempfile.mkdtemp(prefix="dagnb-users-bind-"))  # a mount point, in the namespace only
    argv = _switch(user, [sys.executable, "-c", "import os; os.umask(0o022)\n" + code], spare)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=environment, timeout=timeout, check=False,
                              cwd=user_home)
    finally:
        shutil.rmtree(user_home, ignore_errors=True)
        spare.rmdir()
    assert done.returncode == 0, f"as {user}:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])
