"""API index, the OpenAPI document and its interactive reference (assets served locally)."""

from __future__ import annotations

from pathlib import Path

import tornado.web

from gust import __version__
from gust.handlers.base import APIHandler, BaseHandler
from gust.handlers.routing import Op, implemented_methods, route
from gust.handlers.schemas import ApiIndexOut

# Swagger UI 5 (it reads OpenAPI 3.1), copied from the npm package `swagger-ui-dist` into
# frontend/dist/api-docs by the frontend build (frontend/vite.config.ts).
API_DOCS_DIR = Path(__file__).resolve().parents[3] / "frontend" / "dist" / "api-docs"

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gust API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css"></head>
<body><noscript>The API reference needs JavaScript: the document itself is
<a href="/api/openapi.json">/api/openapi.json</a>.</noscript><div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>
"""

# A file, not an inline script: the Content-Security-Policy forbids inline scripts.
DOCS_INIT = """if (window.SwaggerUIBundle) {
  window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui",
    deepLinking: true, withCredentials: true});
} else {
  document.getElementById("swagger-ui").textContent =
    "The API reference is not built (run npm run build in frontend/); the document is at /api/openapi.json.";
}
"""


class ApiIndexHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    auth_required = False
    api = {"get": Op("Name, version and a map of the endpoints", responses={200: ApiIndexOut},
                     tags=("meta",))}

    async def get(self) -> None:
        endpoints: dict[str, list[str]] = {}
        for rule in self.application.api_rules:
            template = getattr(rule, "template", None)
            if template and isinstance(rule.target, type):
                endpoints[template] = [m.upper() for m in implemented_methods(rule.target)]
        self.write_json(
            {
                "name": "Gust",
                "version": __version__,
                "docs": "/api/docs",
                "openapi": "/api/openapi.json",
                "endpoints": endpoints,
            }
        )


class OpenAPIHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    auth_required = False
    api = {"get": Op("This API as an OpenAPI 3.1 document", responses={200: "application/json"},
                     tags=("meta",))}

    async def get(self) -> None:
        self.write_json(self.application.openapi)


class DocsHandler(BaseHandler):
    api = {"get": Op("Interactive API reference", responses={200: "text/html"}, tags=("meta",))}
    auth_required = False

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(DOCS_PAGE)


class DocsInitHandler(BaseHandler):
    api = {"get": Op("Script of the API reference page", responses={200: "text/javascript"},
                     tags=("meta",))}
    auth_required = False

    def get(self) -> None:
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.finish(DOCS_INIT)


class DocsAssetHandler(BaseHandler, tornado.web.StaticFileHandler):
    """Swagger UI's files (BaseHandler first: headers, body limit and JSON errors)."""

    api = {"get": Op("Assets of the API reference page", responses={200: "*/*"}, tags=("meta",))}
    auth_required = False


default_handlers = [
    route("/api", ApiIndexHandler),
    route("/api/openapi.json", OpenAPIHandler),
    route("/api/docs", DocsHandler),
    route("/api/docs/init.js", DocsInitHandler),
    route("/api/docs/assets/{path}", DocsAssetHandler, path=str(API_DOCS_DIR)),
]
