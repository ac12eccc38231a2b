"""The flattened search rows and full-text document built from each entity.

Mirrors Backstage's `buildEntitySearch`: every leaf under a dotted, lower-cased key;
array elements under the array's key, string elements also as `<key>.<element>=true`;
`metadata.namespace` always present; keys over 200 characters dropped and values over
200 characters kept as null (the key still "exists"). Relations are not copied here:
filters on `relations.<type>` read the relations table, which is always current.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal_column, true

from tenant_runtime.catalog.models import EntityRecord

MAX_KEY_LENGTH = 200
MAX_VALUE_LENGTH = 200
SKIPPED_KEYS = frozenset({"relations", "status", "attachments", "metadata.etag"})
FULL_TEXT_FIELDS = (
    ("metadata", "name"),
    ("metadata", "title"),
    ("metadata", "description"),
    ("kind",),
    ("spec", "type"),
    ("spec", "owner"),
    ("spec", "lifecycle"),
    ("spec", "profile", "displayName"),
    ("spec", "profile", "email"),
)
WORD = re.compile(r"\w+", re.UNICODE)
SIMPLE_CONFIG: ColumnElement[Any] = literal_column("'simple'::regconfig")

SearchRow = tuple[str, str | None, str | None]


def search_rows(entity: Mapping[str, Any]) -> list[SearchRow]:
    """(key, lower-cased value, original value) for every searchable leaf of the entity."""
    rows: list[SearchRow] = []
    metadata = entity.get("metadata", {})
    if "namespace" not in metadata:
        rows.append(("metadata.namespace", "default", "default"))
    for key, value in _leaves(entity, ""):
        if key in SKIPPED_KEYS or key.startswith(("relations.", "status.")):
            continue
        if len(key) > MAX_KEY_LENGTH:
            continue
        rows.append((key, *_values(value)))
    return rows


def _leaves(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for key, child in value.items():
            path = f"{prefix}.{key}".lower() if prefix else str(key).lower()
            if path in SKIPPED_KEYS:
                continue
            yield from _leaves(child, path)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping | list):
                yield from _leaves(item, prefix)
            else:
                yield prefix, item
                if isinstance(item, str):
                    yield f"{prefix}.{item}".lower(), True
    else:
        yield prefix, value


def _values(value: Any) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if len(text) > MAX_VALUE_LENGTH:
        return None, None
    return text.lower(), text


def full_text(entity: Mapping[str, Any]) -> str:
    """The words full-text search looks in: names, titles, descriptions, tags, owner."""
    parts: list[str] = []
    for path in FULL_TEXT_FIELDS:
        value: Any = entity
        for step in path:
            value = value.get(step) if isinstance(value, Mapping) else None
        if isinstance(value, str):
            parts.append(value)
    tags = entity.get("metadata", {}).get("tags", [])
    parts.extend(tag for tag in tags if isinstance(tag, str))
    return " ".join(parts)


def full_text_words(term: str) -> list[str]:
    return [word.lower() for word in WORD.findall(term)]


def full_text_clause(term: str, dialect: str) -> ColumnElement[bool]:
    """Entities whose text holds every word of `term` (as a word prefix on PostgreSQL).

    PostgreSQL matches with a tsvector and its GIN index. The embedded SQLite default
    falls back to a case-insensitive substring match (LIKE), which is fine for the
    catalogs a single machine holds.
    """
    words = full_text_words(term)
    if not words:
        return true()
    if dialect == "postgresql":
        query = " & ".join(f"{word}:*" for word in words)
        # Spelled exactly as the index expression, with literals, so the GIN index is used.
        document = func.to_tsvector(
            SIMPLE_CONFIG, func.coalesce(EntityRecord.search_text, literal_column("''"))
        )
        return document.op("@@")(func.to_tsquery(SIMPLE_CONFIG, query))
    return and_(
        *(func.lower(EntityRecord.search_text).contains(word, autoescape=True) for word in words)
    )
