"""Install the "Python 3 (dagnb)" Jupyter kernel.

The kernel is ipykernel started with ``--ext=dagnb``, so ``%%task`` and
``%dag`` work in a notebook without a ``%load_ext dagnb`` cell. ``--ext``
adds dagnb to IPython's extra extensions and leaves a user's own configured
extensions alone.

Two copies of the spec exist:

* ``extension/kernels/dagnb/kernel.json`` ships in the wheel (hatchling
  shared-data) and lands in ``sys.prefix/share/jupyter/kernels/dagnb``, so the
  Jupyter of the environment dagnb is installed in lists it after
  ``pip install``. Its ``argv[0]`` is ``python``, which jupyter_client replaces
  with the Python that launches the kernel.
* :func:`install` (``dagnb kernel install``) writes a spec whose ``argv[0]`` is
  the absolute path of this Python, for a Jupyter that runs in another
  environment.

ipykernel and jupyter_client come with the ``run`` extra only; they are
imported when :func:`install` runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from dagnb.errors import DagnbError

__all__ = ["DISPLAY_NAME", "KERNEL_NAME", "install", "target_dir"]

KERNEL_NAME = "dagnb"
DISPLAY_NAME = "Python 3 (dagnb)"
EXTENSION_ARG = "--ext=dagnb"


def _where(user: bool, sys_prefix: bool, prefix: str | None) -> tuple[bool, str | None]:
    """``(user, prefix)`` for jupyter_client; the default is the user's directory."""
    chosen = [
        flag
        for flag, given in (("--user", user), ("--sys-prefix", sys_prefix), ("--prefix", prefix is not None))
        if given
    ]
    if len(chosen) > 1:
        got = " and ".join([", ".join(chosen[:-1]), chosen[-1]])
        raise DagnbError(
            f"Give only one of --user, --sys-prefix and --prefix DIR to say where the dagnb kernel goes; got {got}."
        )
    if sys_prefix:
        return False, sys.prefix
    if prefix is not None:
        return False, prefix
    return True, None


def _require_jupyter() -> None:
    """Raise a DagnbError that says how to fix it when ipykernel or jupyter_client is missing."""
    try:
        import ipykernel.kernelspec  # noqa: F401
        import jupyter_client.kernelspec  # noqa: F401
    except ImportError as exc:
        missing = (exc.name or "ipykernel").split(".")[0]
        raise DagnbError(
            f"Installing the dagnb kernel needs `{missing}`, which is not installed in this "
            f'Python environment ({sys.prefix}). Install it with `pip install "dagnb[run]"` '
            f"(or `pip install ipykernel`), then run `dagnb kernel install` again."
        ) from exc


def target_dir(*, user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> Path:
    """The directory :func:`install` writes the kernel spec into, for the same arguments.

    ``--user`` (the default): the user's Jupyter data directory
    (``~/.local/share/jupyter/kernels/dagnb`` on Linux, or under
    ``$JUPYTER_DATA_DIR``); ``--sys-prefix``: ``sys.prefix/share/jupyter/kernels/dagnb``;
    ``--prefix DIR``: ``DIR/share/jupyter/kernels/dagnb``.
    """
    as_user, at_prefix = _where(user, sys_prefix, prefix)
    if as_user:
        _require_jupyter()
        from jupyter_core.paths import jupyter_data_dir

        return Path(jupyter_data_dir()) / "kernels" / KERNEL_NAME
    assert at_prefix is not None
    return Path(os.path.abspath(at_prefix)) / "share" / "jupyter" / "kernels" / KERNEL_NAME


def _elsewhere(as_user: bool) -> str:
    """The fix for a directory that cannot be written."""
    if as_user:
        return "Make that directory writable, or choose another place with --prefix DIR."
    return "Choose a directory you can write to with --prefix DIR, or install for your user only with --user."


def install(*, user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> str:
    """Install the "Python 3 (dagnb)" kernel for this Python; return the directory written.

    Where it goes (at most one of the three; none means ``user=True``):

    * ``user=True`` (default): the user's Jupyter data directory. It never needs
      root and every Jupyter the user starts, in any environment, lists the
      kernel. This is what ``python -m ipykernel install --user`` does; unlike
      ``jupyter kernelspec install``, dagnb never defaults to the system-wide
      directory.
    * ``sys_prefix=True``: this environment's ``share/jupyter/kernels``.
    * ``prefix=DIR``: ``DIR/share/jupyter/kernels``.

    An existing "dagnb" kernel in the target directory is replaced. Raises
    :class:`DagnbError` when more than one place is given, when ipykernel is not
    installed, or when the directory cannot be written.
    """
    as_user, at_prefix = _where(user, sys_prefix, prefix)
    _require_jupyter()
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    destination = target_dir(user=user, sys_prefix=sys_prefix, prefix=prefix)
    with tempfile.TemporaryDirectory(prefix="dagnb-kernelspec-") as staging:
        source = write_kernel_spec(
            Path(staging) / KERNEL_NAME,
            overrides={"display_name": DISPLAY_NAME},
            extra_arguments=[EXTENSION_ARG],
        )
        try:
            return KernelSpecManager().install_kernel_spec(
                source,
                KERNEL_NAME,
                user=as_user,
                prefix=at_prefix,
            )
        except OSError as exc:
            raise DagnbError(
                f"Cannot write the dagnb kernel to {destination}: {exc.strerror or exc}. {_elsewhere(as_user)}"
            ) from exc
