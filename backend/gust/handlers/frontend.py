"""The browser UI from frontend/dist: hashed assets cached for long, index.html never."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

from gust.handlers.base import BaseHandler
from gust.handlers.routing import Op, route

NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gust</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 4em auto">
<h1>Gust is running</h1>
<p>The browser UI has not been built yet. Build it with <code>./setup_venvs.sh</code>
(needs Node.js and npm), then reload this page.</p>
<p>The API works without it: see <a href="/api/docs">the API reference</a>.</p>
</body></html>
"""


class IndexHandler(BaseHandler):
    """index.html of the single-page UI, for `/` and the UI's own paths."""

    api = {"get": Op("The browser UI", responses={200: "text/html"}, tags=("ui",))}
    auth_required = False

    def initialize(self, dist: str) -> None:
        self.dist = Path(dist)

    def get(self, **_: Any) -> None:
        index = self.dist / "index.html"
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        if index.is_file():
            self.finish(index.read_bytes())
        else:
            self.finish(NOT_BUILT)


class AssetHandler(BaseHandler, tornado.web.StaticFileHandler):
    """Vite's content-hashed files: safe to cache for a year. BaseHandler first: the same
    headers, body limit and JSON errors (a missing file is a JSON 404) as every other route."""

    api = {"get": Op("UI assets (content-hashed)", responses={200: "*/*"}, tags=("ui",))}
    auth_required = False

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "public, max-age=31536000, immutable")
        self.set_header("X-Content-Type-Options", "nosniff")


def frontend_handlers(dist: Path) -> list[Any]:
    return [
        route("/", IndexHandler, dist=str(dist)),
        route("/c/{chat_id}", IndexHandler, dist=str(dist)),
        route("/s/{share_id}", IndexHandler, dist=str(dist)),  # a shared snapshot, no login
        route("/usage", IndexHandler, dist=str(dist)),  # the usage page
        route("/assets/{path}", AssetHandler, path=str(dist / "assets")),
    ]
