"""The console's static routes over a real socket: pages, content types, no listing, no escape,
and a page that the admin listener's Content-Security-Policy allows to run (no inline code)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from provisiond.frontends.console_routes import CONSOLE_DIR, add_console_routes, load_assets

ClientMaker = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def client(aiohttp_client: ClientMaker) -> TestClient[Any, Any]:
    """An application with the console routes only (the admin API is not needed here)."""
    app = web.Application()
    add_console_routes(app)
    return await aiohttp_client(app)


@pytest.mark.parametrize("path", ["/console", "/console/"])
async def test_page_is_served_at_both_paths(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>provisiond console</title>" in await response.text()


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
        ("index.html", "text/html; charset=utf-8"),
    ],
)
async def test_assets_have_their_content_types(
    client: TestClient[Any, Any], name: str, content_type: str
) -> None:
    response = await client.get(f"/console/static/{name}")
    assert response.status == 200
    assert response.headers["Content-Type"] == content_type
    assert await response.read() == (CONSOLE_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/console/static/",
        "/console/static",
        "/console/static/..%2fconsole_routes.py",
        "/console/static/%2e%2e%2fadmin_api.py",
        "/console/static/..%2f..%2f..%2f..%2fpyproject.toml",
        "/console/static/.hidden.js",
        "/console/static/missing.js",
        "/console/static/app.js/",
        "/console/../frontends/console_routes.py",
    ],
)
async def test_nothing_else_is_reachable(client: TestClient[Any, Any], path: str) -> None:
    response = await client.get(path)
    assert response.status == 404, path


async def test_etag_revalidation(client: TestClient[Any, Any]) -> None:
    first = await client.get("/console/static/app.js")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = await client.get("/console/static/app.js", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""


async def test_head_answers_without_body(client: TestClient[Any, Any]) -> None:
    response = await client.head("/console/static/style.css")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/css; charset=utf-8"


def test_only_known_file_kinds_are_served(tmp_path: Path) -> None:
    """Python files, dotfiles and subfolders next to the page are never assets."""
    (tmp_path / "index.html").write_text("<!doctype html>", encoding="utf-8")
    (tmp_path / "app.js").write_text("", encoding="utf-8")
    (tmp_path / "secret.py").write_text("", encoding="utf-8")
    (tmp_path / ".env.js").write_text("", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.js").write_text("", encoding="utf-8")
    assert sorted(load_assets(tmp_path)) == ["app.js", "index.html"]


def test_a_console_without_its_page_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"index\.html"):
        load_assets(tmp_path)


class _PageScan(HTMLParser):
    """What the CSP `default-src 'self'` forbids: inline scripts, styles and handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.references: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, _ in attrs:
            if name.startswith("on") or name == "style":
                self.problems.append(f"<{tag} {name}=...>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            self._in_script = True
            if not values.get("src"):
                self.problems.append("inline <script>")
        for name in ("src", "href"):
            value = values.get(name)
            if value and tag in ("script", "link", "img"):
                self.references.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False


def test_page_needs_nothing_the_csp_forbids() -> None:
    """No inline code, no CDN: every script, style and image is one of our served files."""
    scan = _PageScan()
    scan.feed((CONSOLE_DIR / "index.html").read_text(encoding="utf-8"))
    assert scan.problems == []
    assets = load_assets()
    for reference in scan.references:
        assert reference.startswith("/console/static/"), reference
        assert reference.removeprefix("/console/static/") in assets, reference
    for script in CONSOLE_DIR.glob("*.js"):
        text = script.read_text(encoding="utf-8")
        # Text from the API goes in with textContent only; imports stay on our own files.
        assert "innerHTML" not in text, script.name
        assert "eval(" not in text, script.name
        for module in re.findall(r'from "([^"]+)"', text):
            assert module.startswith("./"), (script.name, module)
            assert module[2:] in assets, (script.name, module)
