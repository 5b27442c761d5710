"""Browser tests of the web console: a real `provisiond serve`, a token from `provisiond token
create`, and Debian's Chromium driven by Playwright for Python.

Nothing here downloads a browser: Playwright runs /usr/bin/chromium (Debian packages chromium
and chromium-driver). When either is missing the tests FAIL with the command that installs it;
they are never skipped, so a machine without a browser cannot pass the suite by accident.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.serve_process import REPO, ServeProcess, serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = (
    "the browser tests need Debian's Chromium and Playwright for Python: "
    "`apt-get install -y chromium chromium-driver` and `.venv/bin/pip install playwright` "
    "(or `make test`, which installs both); never `playwright install`, which downloads a browser"
)
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
TABLET: ViewportSize = {"width": 820, "height": 1180}
YEALINK_UA = "Yealink SIP-{model} {firmware} {mac}"
WAIT_S = 15.0  # the server writes phone activity every ~2 s; this is a generous ceiling


def missing_prerequisites() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    problems = []
    if importlib.util.find_spec("playwright") is None:
        problems.append("the Python package playwright is not installed")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        problems.append(f"{CHROMIUM} is missing")
    if not problems:
        return None
    return "; ".join(problems) + " — " + INSTALL_HINT


class ApiRefused(Exception):
    """The admin API answered an error (status and JSON body)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Console:
    """A running server, its admin token, and helpers to set the scene through the API."""

    server: ServeProcess
    token: str
    seen_urls: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The console page."""
        return f"http://127.0.0.1:{self.server.admin_port}/console/"

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call the admin API with the token; raises ApiRefused on an error answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.server.api}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise ApiRefused(exc.code, json.loads(exc.read() or b"null")) from exc
        return json.loads(raw) if raw else None

    def user(self, username: str, main_extension: str, **extra: Any) -> dict[str, Any]:
        """Create a user through the API."""
        body = {"username": username, "display_name": username.title(), **extra}
        return dict(self.call("POST", "/users", {**body, "main_extension": main_extension}))

    def device(self, extension: str, mac: str, **extra: Any) -> dict[str, Any]:
        """Create a Yealink T46S through the API."""
        body = {"extension": extension, "model": "yealink-t46s", "mac": mac, **extra}
        return dict(self.call("POST", "/devices", body))

    def phone_boot(self, mac: str, model: str = "T46S", firmware: str = "66.86.0.15") -> int:
        """Ask the phone HTTP port for a Yealink's per-MAC file, as the phone does; the status."""
        plain = mac.replace(":", "").lower()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.server.phone_port}/{plain}.cfg",
            headers={
                "User-Agent": YEALINK_UA.format(model=model, firmware=firmware, mac=mac.lower())
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
                return int(response.status)
        except urllib.error.HTTPError as exc:
            exc.read()
            return int(exc.code)

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        """Poll `check` (bounded) until it holds: the server batches phone activity."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")


def create_token(server: ServeProcess, name: str = "browser-tests") -> str:
    """`provisiond token create NAME` with the server's environment: the token alone."""
    result = subprocess.run(
        [sys.executable, "-m", "provisiond.cli", "token", "create", name],
        cwd=REPO,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium (one per test module, closed before other modules run)."""
    missing = missing_prerequisites()
    if missing:
        pytest.fail(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """A fresh `provisiond serve` (its own data dir and database) and an admin token."""
    with serve(tmp_path / "var") as server:
        yield Console(server, create_token(server))


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A desktop-sized tab; fails the test on any script error or CSP violation in the page."""
    context = browser.new_context(viewport=DESKTOP)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    # "Failed to load resource" is Chromium reporting an API refusal the test asked for.
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error" and "Failed to load resource" not in message.text
            else None
        ),
    )
    tab.on("request", lambda request: console.seen_urls.append(request.url))
    tab.on("framenavigated", lambda frame: console.seen_urls.append(frame.url))
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
    assert not problems, problems
