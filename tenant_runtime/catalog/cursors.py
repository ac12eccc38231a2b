"""Opaque paging tokens: base64 of JSON, as Backstage's catalog encodes them."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from tenant_runtime.catalog.errors import CatalogInputError


def encode_cursor(cursor: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(cursor, separators=(",", ":")).encode()).decode()


def decode_cursor(token: str) -> dict[str, Any]:
    try:
        cursor = json.loads(base64.b64decode(token, validate=True))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CatalogInputError(f"Malformed cursor: {error}") from None
    if not isinstance(cursor, dict):
        raise CatalogInputError("Malformed cursor: not an object")
    return cursor
