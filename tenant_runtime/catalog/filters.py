"""The `filter` query parameter of `GET /entities` (reference 3.2), as SQL.

Supported keys: `kind`, `metadata.name`, `metadata.namespace`, `metadata.uid`,
`relations.<type>` and scalar `spec.<path>` values. Keys and values compare
case-insensitively, except that `spec.` path segments must be spelled as in the
descriptor (JSON keys are case-sensitive in SQL). Any other key matches nothing,
as an unknown key does in Backstage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, false, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from tenant_runtime.catalog.models import EntityRecord, RelationRecord


@dataclass(frozen=True)
class FilterSet:
    """Statements ANDed across keys; values of one key are ORed; `None` means "exists"."""

    statements: dict[str, tuple[str | None, ...]]


def parse_filter_params(params: Sequence[str]) -> list[FilterSet]:
    """One set per `filter` param; within it, `key=value` statements split on commas."""
    sets: list[FilterSet] = []
    for param in params:
        statements: dict[str, tuple[str | None, ...]] = {}
        for statement in param.split(","):
            key, has_value, value = statement.strip().partition("=")
            key = key.strip()
            if not key:
                continue
            statements[key] = (*statements.get(key, ()), value.strip() if has_value else None)
        if statements:
            sets.append(FilterSet(statements))
    return sets


def filter_clause(sets: Sequence[FilterSet]) -> ColumnElement[bool]:
    """A WHERE clause on `entities` matching any of the sets; no sets match everything."""
    if not sets:
        return true()
    return or_(*(and_(*(_key_clause(k, v) for k, v in s.statements.items())) for s in sets))


def _key_clause(key: str, values: tuple[str | None, ...]) -> ColumnElement[bool]:
    lowered = key.lower()
    if lowered.startswith("relations."):
        return _relation_clause(lowered, values)
    if lowered.startswith("spec."):
        return _spec_clause(key, values)
    column = _column_for(lowered)
    if column is None:
        return false()
    if None in values:
        return column.is_not(None)
    # These columns are stored lower-cased, so the comparison can use their index.
    return column.in_(_lowered(values))


def _lowered(values: tuple[str | None, ...]) -> list[str]:
    return [value.lower() for value in values if value is not None]


def _column_for(key: str) -> InstrumentedAttribute[str] | None:
    match key:
        case "kind":
            return EntityRecord.kind
        case "metadata.name":
            return EntityRecord.name
        case "metadata.namespace":
            return EntityRecord.namespace
        case "metadata.uid":
            return EntityRecord.uid
    return None


def _relation_clause(key: str, values: tuple[str | None, ...]) -> ColumnElement[bool]:
    relation_type = key.split(".", 1)[1]
    conditions = [
        RelationRecord.source_ref == EntityRecord.entity_ref,
        func.lower(RelationRecord.type) == relation_type,
    ]
    if None not in values:
        conditions.append(RelationRecord.target_ref.in_(_lowered(values)))
    return exists(select(RelationRecord.source_ref).where(*conditions))


def _spec_clause(key: str, values: tuple[str | None, ...]) -> ColumnElement[bool]:
    path = ("spec", *key.split(".")[1:])
    value: ColumnElement[str] = EntityRecord.body[path].as_string()
    if None in values:
        return value.is_not(None)
    return func.lower(value).in_(_lowered(values))
