"""The "Python 3 (dagnb)" Jupyter kernel: the spec shipped in the wheel and ``kernelspec.install``.

Installs go to a temporary prefix (or a temporary ``JUPYTER_DATA_DIR`` for
the user default), never into this environment or the real home directory.
The kernel tests start the installed spec, and the shipped one, with
jupyter_client and run a ``%%task`` cell with no ``%load_ext dagnb`` before it.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

from dagnb.errors import DagnbError
from dagnb.notebook import kernelspec

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "extension" / "kernels" / "dagnb" / "kernel.json"
SHIPPED_ARGV = ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}", "--ext=dagnb"]


def read_spec(directory: str | Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((Path(directory) / "kernel.json").read_text())
    return spec


# ------------------------------------------------------------ the shipped spec


def test_shipped_kernel_json_is_the_dagnb_kernel() -> None:
    assert read_spec(SHIPPED.parent) == {
        "argv": SHIPPED_ARGV,
        "display_name": "Python 3 (dagnb)",
        "language": "python",
        "metadata": {"debugger": True},
    }


def test_pip_install_makes_the_kernel_visible_in_this_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    try:
        importlib.metadata.distribution("dagnb")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("dagnb is imported from source, not installed with pip, so the wheel's "
                    "shared-data (share/jupyter/kernels/dagnb) was never installed")
    # Only this environment's directories: no user-level or JUPYTER_PATH copy can shadow it.
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.delenv("JUPYTER_PATH", raising=False)

    specs = KernelSpecManager().find_kernel_specs()

    assert "dagnb" in specs, (
        "the dagnb kernelspec is not in this environment; reinstall with "
        "`pip install -e .` so the wheel's shared-data is installed"
    )
    resource_dir = Path(specs["dagnb"])
    assert resource_dir.resolve().is_relative_to(Path(sys.prefix).resolve())
    assert read_spec(resource_dir) == read_spec(SHIPPED.parent)
    assert KernelSpecManager().get_kernel_spec("dagnb").display_name == "Python 3 (dagnb)"


# ------------------------------------------------------------------ install()


def test_install_into_a_prefix_writes_a_spec_for_this_python(tmp_path: Path) -> None:
    installed = kernelspec.install(prefix=str(tmp_path))

    assert Path(installed) == tmp_path / "share" / "jupyter" / "kernels" / "dagnb"
    spec = read_spec(installed)
    python = spec["argv"][0]
    assert os.path.isabs(python)
    assert Path(python).resolve() == Path(sys.executable).resolve()
    assert spec["argv"][1:3] == ["-m", "ipykernel_launcher"]
    assert "--ext=dagnb" in spec["argv"]
    assert spec["display_name"] == "Python 3 (dagnb)"
    assert spec["language"] == "python"


def test_install_again_replaces_the_spec(tmp_path: Path) -> None:
    first = kernelspec.install(prefix=str(tmp_path))
    (Path(first) / "kernel.json").write_text('{"argv": ["old"], "display_name": "old"}')

    second = kernelspec.install(prefix=str(tmp_path))

    assert second == first
    assert read_spec(second)["display_name"] == "Python 3 (dagnb)"


def test_install_defaults_to_the_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "user-data"))

    installed = kernelspec.install()

    assert Path(installed) == tmp_path / "user-data" / "kernels" / "dagnb"
    assert Path(installed) == kernelspec.target_dir() == kernelspec.target_dir(user=True)
    assert read_spec(installed)["display_name"] == "Python 3 (dagnb)"


def test_target_dir_of_sys_prefix_is_this_environment() -> None:
    expected = Path(os.path.abspath(sys.prefix)) / "share" / "jupyter" / "kernels" / "dagnb"
    assert kernelspec.target_dir(sys_prefix=True) == expected


def test_target_dir_matches_install_for_a_relative_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    installed = kernelspec.install(prefix="env")

    assert Path(installed) == kernelspec.target_dir(prefix="env") == tmp_path / "env" / "share" / "jupyter" / "kernels" / "dagnb"


# ------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("where", "named"),
    [
        ({"user": True, "sys_prefix": True}, "--user and --sys-prefix"),
        ({"user": True, "prefix": "/somewhere"}, "--user and --prefix"),
        ({"sys_prefix": True, "prefix": "/somewhere"}, "--sys-prefix and --prefix"),
        ({"user": True, "sys_prefix": True, "prefix": "/somewhere"}, "--user, --sys-prefix and --prefix"),
    ],
)
def test_more_than_one_place_is_an_error(where: dict[str, Any], named: str) -> None:
    with pytest.raises(DagnbError) as info:
        kernelspec.install(**where)
    assert str(info.value) == (
        "Give only one of --user, --sys-prefix and --prefix DIR to say where the dagnb "
        f"kernel goes; got {named}."
    )


def test_missing_ipykernel_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes the import fail as if the package were not installed.
    monkeypatch.setitem(sys.modules, "ipykernel", None)
    monkeypatch.setitem(sys.modules, "ipykernel.kernelspec", None)

    with pytest.raises(DagnbError) as info:
        kernelspec.install(prefix=str(tmp_path))

    assert str(info.value) == (
        f"Installing the dagnb kernel needs `ipykernel`, which is not installed in this "
        f"Python environment ({sys.prefix}). Install it with `pip install \"dagnb[run]\"` "
        f"(or `pip install ipykernel`), then run `dagnb kernel install` again."
    )
    assert not (tmp_path / "share").exists()


def test_unwritable_prefix_is_an_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    destination = not_a_dir / "share" / "jupyter" / "kernels" / "dagnb"

    with pytest.raises(DagnbError) as info:
        kernelspec.install(prefix=str(not_a_dir))

    assert str(info.value) == (
        f"Cannot write the dagnb kernel to {destination}: Not a directory. "
        "Choose a directory you can write to with --prefix DIR, or install for your user only with --user."
    )


def test_unwritable_user_dir_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(not_a_dir))

    with pytest.raises(DagnbError) as info:
        kernelspec.install(user=True)

    assert str(info.value) == (
        f"Cannot write the dagnb kernel to {not_a_dir / 'kernels' / 'dagnb'}: Not a directory. "
        "Make that directory writable, or choose another place with --prefix DIR."
    )


# ------------------------------------------------------ the kernel, started


def start(kernels: Path, cwd: Path) -> tuple[KernelManager, BlockingKernelClient]:
    """Start the "dagnb" kernel found in ``kernels`` only, with a cache under ``cwd``."""
    manager = KernelManager(kernel_name="dagnb", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(kernels)]))
    cwd.mkdir()
    manager.start_kernel(env={**os.environ, "DAGNB_CACHE_DIR": str(cwd / "cache")}, cwd=str(cwd))
    return manager, manager.blocking_client()


@pytest.fixture(params=["installed", "shipped"])
def dagnb_kernel(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, BlockingKernelClient]]:
    """The spec ``install(prefix=...)`` wrote, or the one shipped in the wheel; started; its directory."""
    if request.param == "installed":
        spec_dir = Path(kernelspec.install(prefix=str(tmp_path / "prefix")))
    else:
        spec_dir = SHIPPED.parent
    manager, client = start(spec_dir.parent, tmp_path / "work")
    try:
        assert manager.kernel_spec is not None
        assert Path(manager.kernel_spec.resource_dir) == spec_dir
        client.start_channels()
        client.wait_for_ready(timeout=120)
        yield tmp_path / "work" / "cache", client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run(client: BlockingKernelClient, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Execute ``code``; return the execute_reply content and the iopub messages it produced."""
    outputs: list[dict[str, Any]] = []
    reply = client.execute_interactive(code, timeout=120, output_hook=outputs.append, allow_stdin=False)
    return reply["content"], outputs


def results(outputs: list[dict[str, Any]]) -> list[str]:
    return [m["content"]["data"]["text/plain"] for m in outputs if m["msg_type"] == "execute_result"]


def errors(outputs: list[dict[str, Any]]) -> list[str]:
    return [f"{m['content']['ename']}: {m['content']['evalue']}" for m in outputs if m["msg_type"] == "error"]


@pytest.mark.kernel
def test_task_cells_work_without_load_ext(dagnb_kernel: tuple[Path, BlockingKernelClient]) -> None:
    cache, client = dagnb_kernel

    reply, outputs = run(client, "%%task\ndef answer():\n    return 42\n")
    assert errors(outputs) == []
    assert reply["status"] == "ok"

    reply, outputs = run(client, "answer + 1")
    assert reply["status"] == "ok", errors(outputs)
    assert results(outputs) == ["43"]
    assert any(cache.iterdir())  # the task's value went to this test's DAGNB_CACHE_DIR
