"""The OpenAPI document covers every route, is valid OpenAPI 3.1, and /api/docs works offline."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import OpenAPIV31SpecValidator

from gust import __version__
from gust.handlers.routing import implemented_methods, operations
from tests.support.app_server import RunningApp
from tests.support.client import Api


async def test_every_route_and_method_is_documented(app: RunningApp, api: Api) -> None:
    resp = await api.get("/api/openapi.json")
    assert resp.status == 200
    document = resp.json
    assert document == app.app.openapi
    seen = 0
    for rule in app.app.all_rules:
        handler = rule.target
        template = getattr(rule, "template", None)
        assert template is not None, f"{rule.matcher} was not made with gust.handlers.routing.route()"
        assert isinstance(handler, type)
        methods = implemented_methods(handler)
        assert methods, f"{template}: {handler.__name__} implements no method"
        for method in methods:
            assert method in operations(handler), f"{handler.__name__}.{method} has no `api` Op"
            operation = document["paths"].get(template, {}).get(method)
            assert operation is not None, f"{method.upper()} {template} is missing from the document"
            assert operation["summary"]
            assert "500" in operation["responses"]
            seen += 1
        # Nothing documented that the handler does not serve.
        documented = set(document["paths"][template]) - {"parameters"}
        assert documented <= set(methods), (template, documented, methods)
    assert seen >= 12
    for must in ("/health", "/health/ready", "/metrics", "/api", "/api/openapi.json", "/api/docs",
                 "/api/auth/register", "/api/auth/login", "/api/auth/logout", "/api/auth/me",
                 "/api/chats", "/api/chats/{chat_id}", "/api/chats/{chat_id}/messages"):
        assert must in document["paths"], must


async def test_document_is_valid_openapi_3_1(api: Api) -> None:
    document = (await api.get("/api/openapi.json")).json
    assert document["openapi"].startswith("3.1")
    assert document["info"]["version"] == __version__
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []
    for schema in document["components"]["schemas"].values():
        OAS31Validator.check_schema(schema)
    # Every $ref points at a schema that exists.
    refs = set(_refs(document))
    assert refs
    assert refs <= {f"#/components/schemas/{name}" for name in document["components"]["schemas"]}
    # Path parameters are declared for every {param} in a template.
    for template, item in document["paths"].items():
        wanted = set(re.findall(r"\{([a-z_]+)\}", template))
        for method, op in item.items():
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == wanted, (method, template)


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


async def test_api_index_maps_every_endpoint(app: RunningApp, api: Api) -> None:
    resp = await api.get("/api")
    assert resp.status == 200
    assert resp.json["name"] == "Gust"
    assert resp.json["version"] == __version__
    assert resp.json["openapi"] == "/api/openapi.json"
    assert resp.json["docs"] == "/api/docs"
    endpoints = resp.json["endpoints"]
    assert endpoints["/api/chats"] == ["GET", "POST"]
    assert endpoints["/api/chats/{chat_id}"] == ["GET", "PATCH", "DELETE"]
    for template in endpoints:
        assert template in app.app.openapi["paths"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            if values.get("src"):
                self.urls.append(values["src"] or "")
            else:
                self.inline_scripts += 1
        if tag == "link" and values.get("href"):
            self.urls.append(values["href"] or "")


async def test_docs_page_loads_its_assets_locally(api: Api) -> None:
    page = await api.get("/api/docs")
    assert page.status == 200
    assert page.headers["Content-Type"].startswith("text/html")
    parser = _Assets()
    parser.feed(page.text)
    assert parser.inline_scripts == 0  # the Content-Security-Policy forbids them
    assert len(parser.urls) >= 3
    assert "http:" not in page.text and "https:" not in page.text and "//" not in page.text
    for url in parser.urls:
        assert url.startswith("/"), url
        asset = await api.get(url)
        assert asset.status == 200, url
        assert len(asset.text) > 20, url
        if url.endswith(".js"):
            assert "javascript" in asset.headers["Content-Type"], url
        if url.endswith(".css"):
            assert asset.headers["Content-Type"].startswith("text/css"), url
    init = await api.get("/api/docs/init.js")
    assert "/api/openapi.json" in init.text
    bundle = await api.get("/api/docs/assets/swagger-ui-bundle.js")
    assert "SwaggerUIBundle" in bundle.text
    missing = await api.get("/api/docs/assets/nope.js")
    assert missing.status == 404
