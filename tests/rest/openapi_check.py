"""Validate real responses against the committed OpenAPI document."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator

DOCUMENT = Path(__file__).parents[2] / "openapi.json"


@cache
def document() -> dict[str, Any]:
    return json.loads(DOCUMENT.read_text())  # type: ignore[no-any-return]


def _operation(method: str, path: str) -> dict[str, Any] | None:
    for template, operations in document()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in operations:
            return operations[method.lower()]  # type: ignore[no-any-return]
    return None


def check(method: str, url: str, status: int, body: Any) -> None:
    """Raise if `body` is not what the document promises for this call and status."""
    path = urlsplit(url).path
    operation = _operation(method, path)
    if operation is None:  # 404/405 for paths and methods the API does not have
        schema: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
    else:
        response = operation["responses"].get(str(status))
        assert response is not None, f"{method} {path}: status {status} is not documented"
        schema = response["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": document()["components"]}).validate(body)
