"""Fixtures for the real-browser end-to-end tests.

A JupyterLab server runs on 127.0.0.1 with a random token in a temporary
directory, with its own Jupyter config, data, runtime, settings and
workspace directories so that nothing of the user's setup is read or
written. Debian's ``chromium`` is driven headless through Playwright for
Python (never a downloaded browser build).

Prerequisites (more in ``tests/e2e/README.md``)::

    apt-get install -y chromium
    pip install -e ".[test]" jupyterlab playwright

Without them every test here is skipped, unless ``DAGNB_E2E_REQUIRED=1``
is set (as CI does), in which case the tests fail instead.

Artifacts (screenshots, and on failure the server log) go to the
directory named by ``DAGNB_E2E_ARTIFACTS``, else ``build/e2e/`` under the
repository root.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DAGNB_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SERVER_START_TIMEOUT = 60.0  # seconds until /api/status answers
VIEWPORT = {"width": 1280, "height": 900}

# JupyterLab user settings written into a private settings directory:
# no news/update toasts, no notification popups over the screenshots, and
# every cell attached to the DOM (no virtual scrolling of the notebook).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: real-browser end-to-end test (JupyterLab + headless Chromium)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Keep each phase's report on the item so fixtures can tell a failure at teardown."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


# ---------------------------------------------------------------- helpers


def missing_prerequisite(reason: str) -> None:
    """Skip, or fail when ``DAGNB_E2E_REQUIRED=1`` (CI must not pass silently)."""
    if os.environ.get("DAGNB_E2E_REQUIRED") == "1":
        pytest.fail(f"e2e prerequisite missing (DAGNB_E2E_REQUIRED=1): {reason}", pytrace=False)
    pytest.skip(reason)


def check_prerequisites() -> None:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        missing_prerequisite(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    for module, package in [
        ("playwright", "playwright"),
        ("jupyterlab", "jupyterlab"),
        ("jupyterlab_widgets", "jupyterlab_widgets"),
        ("ipykernel", "ipykernel"),
        ("nbformat", "nbformat"),
    ]:
        if importlib.util.find_spec(module) is None:
            missing_prerequisite(f"Python package {package!r} is not installed (pip install {package})")


def artifacts_dir() -> Path:
    path = Path(os.environ.get("DAGNB_E2E_ARTIFACTS") or REPO_ROOT / "build" / "e2e")
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


# ---------------------------------------------------------------- server


@dataclass
class LabServer:
    """A running JupyterLab: where it listens and where its files are."""

    url: str  # http://127.0.0.1:PORT
    token: str
    root_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def api(self, path: str, method: str = "GET", timeout: float = 5.0) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback only)
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, notebook: str, workspace: str) -> str:
        """The notebook alone in a fresh workspace (``reset``: no tabs restored from earlier tests)."""
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={self.token}"

    def shutdown_kernels(self) -> None:
        for session in self.api("/api/sessions"):
            self.api(f"/api/sessions/{session['id']}", method="DELETE", timeout=15)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _write_private_jupyter_dirs(base: Path) -> dict[str, str]:
    """Config, data, runtime, lab settings and workspaces dirs under ``base``.

    The data dir holds a ``python3`` kernelspec that starts this very
    interpreter, so the kernel sees the same installed ``dagnb``.
    """
    dirs = {
        name: base / sub
        for name, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
            ("IPYTHONDIR", "ipython"),
        ]
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    kernel_dir = dirs["JUPYTER_DATA_DIR"] / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    kernelspec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(kernelspec, indent=1))
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        target = dirs["JUPYTERLAB_SETTINGS_DIR"] / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values, indent=1))
    return {name: str(path) for name, path in dirs.items()}


def _stop_server(server: LabServer) -> None:
    """Shut kernels and server down; escalate to SIGTERM/SIGKILL if needed.

    Kernels run in their own sessions (jupyter_client starts them with
    ``start_new_session``), so they are shut down through the API first.
    """
    proc = server.process
    if proc.poll() is None:
        with contextlib.suppress(Exception):
            for kernel in server.api("/api/kernels"):
                server.api(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=15)
        with contextlib.suppress(Exception):
            server.api("/api/shutdown", method="POST")
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


@pytest.fixture(scope="session")
def lab_server() -> Iterator[LabServer]:
    """JupyterLab on 127.0.0.1 with a random token, in a fresh temporary root."""
    check_prerequisites()
    base = Path(tempfile.mkdtemp(prefix="dagnb-e2e-"))
    root_dir = base / "root"
    root_dir.mkdir()
    cache_dir = base / "dagnb-cache"
    cache_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in {"JUPYTER_PATH", "JUPYTER_CONFIG_PATH", "JUPYTER_TOKEN"}}
    env.update(_write_private_jupyter_dirs(base / "jupyter"))
    env["DAGNB_CACHE_DIR"] = str(cache_dir)  # the kernel inherits it: a cold cache
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("JUPYTER_PREFER_ENV_PATH", None)
    port, token = free_port(), secrets.token_hex(24)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_remote_access=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")  # containers and CI often run as root
    log_path = base / "jupyter-server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=root_dir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = LabServer(f"http://127.0.0.1:{port}", token, root_dir, log_path, proc)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log()[-4000:]}", pytrace=False)
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if server.api("/api/status", timeout=2) is not None:
                    break
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in {SERVER_START_TIMEOUT:.0f} s:\n{server.log()[-4000:]}", pytrace=False)
            time.sleep(0.25)
        yield server
    finally:
        _stop_server(server)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture()
def server_log_on_failure(lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[None]:
    """Copy the server log into the artifacts directory when the test fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        target = artifacts_dir() / f"failure-{_safe_name(request.node.name)}-server.log"
        target.write_text(lab_server.log(), errors="replace")


# ---------------------------------------------------------------- browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, through Playwright, with a new empty profile."""
    check_prerequisites()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # scrollbars drawn as a user sees them (headless hides them by default), so screenshots show overflow
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True,
                                             ignore_default_args=["--hide-scrollbars"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture()
def page(browser: Any, lab_server: LabServer, server_log_on_failure: None, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh browser context; screenshot on failure.

    Playwright's ``launch`` gives each browser a new empty user data dir
    and each ``new_context`` a fresh incognito-like profile within it.
    """
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"[{message.type}] {message.text}"))
    page.on("pageerror", lambda error: console.append(f"[pageerror] {error}"))
    try:
        yield page
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            name = _safe_name(request.node.name)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(artifacts_dir() / f"failure-{name}.png"), full_page=True)
            with contextlib.suppress(Exception):
                (artifacts_dir() / f"failure-{name}-console.log").write_text("\n".join(console))
        context.close()
        with contextlib.suppress(Exception):
            lab_server.shutdown_kernels()  # keep the 2-core machine quiet for the next test


# ---------------------------------------------------------------- notebook


def write_notebook(path: Path, sources: list[str]) -> Path:
    """Write a notebook of code cells with the ``python3`` kernelspec."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(notebook, str(path))
    return path


class LabNotebook:
    """Drive one open notebook in JupyterLab the way a person would."""

    PROMPT_DONE = re.compile(r"^\s*\[\d+\]:\s*$")
    KERNEL_IDLE = re.compile(r"^(?!No Kernel\b).+ \| Idle$")

    def __init__(self, page: Any, server: LabServer, name: str, workspace: str) -> None:
        self.page, self.server, self.name, self.workspace = page, server, name, workspace

    def open(self, timeout: float = 60_000) -> LabNotebook:
        from playwright.sync_api import expect

        self.page.goto(self.server.lab_url(self.name, self.workspace), wait_until="domcontentloaded")
        expect(self.panel).to_have_count(1, timeout=timeout)
        expect(self.notebook).to_be_visible(timeout=timeout)
        self.wait_kernel_idle(timeout)
        return self

    @property
    def panel(self) -> Any:
        """The one notebook panel (each test opens its notebook alone in its own workspace)."""
        return self.page.locator(".jp-NotebookPanel")

    @property
    def notebook(self) -> Any:
        return self.panel.locator(".jp-Notebook")

    def cell(self, index: int) -> Any:
        return self.notebook.locator(".jp-Cell").nth(index)

    def outputs(self, index: int) -> Any:
        return self.cell(index).locator(".jp-OutputArea-output")

    def wait_kernel_idle(self, timeout: float = 60_000) -> None:
        """The kernel is started, connected and idle.

        The toolbar's execution indicator alone is not enough: it already
        says ``idle`` while the status bar still shows ``No Kernel``, and a
        cell run then is silently dropped. The status bar's kernel item
        reads ``<kernel name> | Idle`` only once the kernel answered.
        """
        from playwright.sync_api import expect

        status = self.page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\| Idle$"))
        expect(status.first).to_have_text(self.KERNEL_IDLE, timeout=timeout)
        indicator = self.panel.locator(".jp-Notebook-ExecutionIndicator")
        expect(indicator).to_have_attribute("data-status", "idle", timeout=timeout)

    def start_cell(self, index: int) -> None:
        """Select cell ``index`` and press Shift+Enter; do not wait for it to finish."""
        from playwright.sync_api import expect

        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click()
        expect(cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
        self.page.keyboard.press("Shift+Enter")

    def wait_cell_done(self, index: int, timeout: float = 60_000) -> None:
        """The cell's prompt shows an execution count (``[n]:``), and no error output."""
        from playwright.sync_api import expect

        prompt = self.cell(index).locator(".jp-InputArea-prompt").first
        expect(prompt).to_have_text(self.PROMPT_DONE, timeout=timeout)
        errors = self.cell(index).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
        for i in range(errors.count()):
            text = errors.nth(i).inner_text()
            assert not re.search(r"Traceback|Error\b|Exception\b", text), f"cell {index} failed:\n{text}"

    def run_cell(self, index: int, timeout: float = 60_000) -> None:
        self.start_cell(index)
        self.wait_cell_done(index, timeout)

    def prompt(self, index: int) -> str:
        return str(self.cell(index).locator(".jp-InputArea-prompt").first.inner_text()).strip()

    def edit_end_of_cell(self, index: int, backspaces: int, text: str) -> None:
        """Edit cell ``index`` as a person would: delete the last ``backspaces`` characters, type ``text``."""
        cell = self.cell(index)
        cell.scroll_into_view_if_needed()
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Control+End")
        for _ in range(backspaces):
            self.page.keyboard.press("Backspace")
        self.page.keyboard.type(text)

    def interrupt_kernel(self) -> None:
        """Press the toolbar's stop button (Kernel → Interrupt Kernel)."""
        self.panel.locator('.jp-Toolbar [data-command="notebook:interrupt-kernel"]').first.click()


@pytest.fixture()
def open_notebook(page: Any, lab_server: LabServer, request: pytest.FixtureRequest) -> Any:
    """``open_notebook(name, sources)``: write it into the server root and open it."""

    def _open(name: str, sources: list[str]) -> LabNotebook:
        write_notebook(lab_server.root_dir / name, sources)
        workspace = f"e2e-{_safe_name(request.node.name)}-{secrets.token_hex(4)}"
        return LabNotebook(page, lab_server, name, workspace).open()

    return _open
