"""The web console's static files, served on the admin listener at /console.

The console is a few plain files (HTML, ES modules, CSS) shipped inside the package: no build
step. It only calls the admin API, with the token the person typed, so nothing served here is
secret and /console needs no authentication (the auth middleware guards /api/ only).

The files are read once, when the routes are added, into an allow-list keyed by name: a request
can only ever name one of those files, so no path, encoding trick or symlink can reach anything
else, and there is no directory listing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from provisiond.frontends.admin_http import admin_expect_handler

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
INDEX = "index.html"
# Only these kinds of files are served; anything else in the folder stays private.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9]+)+")


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the console, held in memory with its validator."""

    body: bytes
    content_type: str
    etag: str


def load_assets(folder: Path = CONSOLE_DIR) -> dict[str, Asset]:
    """The servable files of `folder` (not its subfolders), by file name."""
    assets: dict[str, Asset] = {}
    for path in sorted(folder.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file() or not _NAME.fullmatch(path.name):
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[path.name] = Asset(body, content_type, etag)
    if INDEX not in assets:
        raise RuntimeError(f"the web console is missing {folder / INDEX}")
    return assets


def _answer(request: web.Request, asset: Asset) -> web.Response:
    # Revalidate every time: a few small files, and an upgrade must never run stale JavaScript.
    headers = {"Cache-Control": "no-cache", "ETag": asset.etag}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    response = web.Response(body=asset.body, headers=headers)
    response.content_type = asset.content_type.split(";")[0]
    if "charset=" in asset.content_type:
        response.charset = "utf-8"
    return response


def add_console_routes(app: web.Application, folder: Path = CONSOLE_DIR) -> None:
    """GET /console and /console/ (the page) and /console/static/{name} (its files)."""
    assets = load_assets(folder)

    async def page(request: web.Request) -> web.Response:
        """The console's single page."""
        return _answer(request, assets[INDEX])

    async def static(request: web.Request) -> web.Response:
        """One file of the console, by exact name."""
        asset = assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        return _answer(request, asset)

    app.router.add_get("/console", page, expect_handler=admin_expect_handler)
    app.router.add_get("/console/", page, expect_handler=admin_expect_handler)
    app.router.add_get("/console/static/{name}", static, expect_handler=admin_expect_handler)
