"""A small HTTP client for tests: JSON in and out, bearer tokens, OpenAPI checks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.openapi_check import OpenAPIChecker


@dataclass
class Response:
    status: int
    headers: Any
    text: str
    json: Any = None

    @property
    def error_code(self) -> str | None:
        if isinstance(self.json, dict) and isinstance(self.json.get("error"), dict):
            code: str = self.json["error"]["code"]
            return code
        return None


@dataclass
class Api:
    base_url: str
    session: aiohttp.ClientSession
    checker: OpenAPIChecker | None = None
    token: str | None = None
    default_headers: dict[str, str] = field(default_factory=dict)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = None,
        auth: bool = True,
    ) -> Response:
        hdrs = dict(self.default_headers)
        bearer = token or self.token
        if auth and bearer:
            hdrs["Authorization"] = f"Bearer {bearer}"
        if json_body is not None:
            data = json.dumps(json_body)
            hdrs.setdefault("Content-Type", "application/json")
        hdrs.update(headers or {})
        async with self.session.request(method, self.base_url + path, data=data, headers=hdrs) as resp:
            text = await resp.text()
            parsed = None
            if "json" in resp.headers.get("Content-Type", ""):
                parsed = json.loads(text)
            result = Response(resp.status, resp.headers, text, parsed)
        if self.checker is not None:
            self.checker.check(method, path.split("?")[0], result.status,
                               result.headers.get("Content-Type", ""), result.json)
        return result

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("POST", path, json_body=body, **kw)

    async def patch(self, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.request("PATCH", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> Response:
        return await self.request("DELETE", path, **kw)

    def as_user(self, token: str | None) -> Api:
        return Api(self.base_url, self.session, self.checker, token, dict(self.default_headers))

    async def register_and_login(self, email: str, password: str = "correct horse 1") -> Api:
        """Register an account and return a client authenticated as it."""
        resp = await self.post("/api/auth/register", {"email": email, "password": password}, auth=False)
        assert resp.status == 201, resp.text
        resp = await self.post("/api/auth/login", {"email": email, "password": password}, auth=False)
        assert resp.status == 200, resp.text
        return self.as_user(resp.json["access_token"])
