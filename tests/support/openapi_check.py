"""Validates every response the test client sees against the app's OpenAPI document."""

from __future__ import annotations

import re
from typing import Any

from openapi_schema_validator import OAS31Validator


class OpenAPIChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._validators: dict[int, OAS31Validator] = {}
        self._paths = [
            (re.compile("^" + re.sub(r"\{[a-z_]+\}", "[^/]+", template) + "$"), template)
            for template in document["paths"]
        ]

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        for pattern, template in self._paths:
            if pattern.match(path):
                op = self.document["paths"][template].get(method.lower())
                if op is not None:
                    return template, op
        return None

    def check(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        """Fail when the route, its status or its JSON body is not what the document says."""
        found = self.operation(method, path)
        if found is None:
            if status in (404, 405):
                return  # unknown routes are expected to be undocumented
            raise AssertionError(f"{method} {path} answered {status} but is not in the OpenAPI document")
        template, op = found
        response = op["responses"].get(str(status))
        assert response is not None, f"{method} {template}: status {status} is not documented"
        media = response.get("content", {})
        if "application/json" in content_type and body is not None:
            assert "application/json" in media, f"{method} {template} {status}: JSON body not documented"
            schema = media["application/json"]["schema"]
            self._validator(id(schema), schema).validate(body)

    def _validator(self, key: int, schema: dict[str, Any]) -> OAS31Validator:
        validator = self._validators.get(key)
        if validator is None:
            validator = OAS31Validator({**schema, "components": self.document["components"]})
            self._validators[key] = validator
        return validator
