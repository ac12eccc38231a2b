"""Entity filters as SQL: the `filter` query parameter and filter predicates.

Both forms compile to one predicate language (`@backstage/filter-predicates`): a mapping
of dotted keys to matchers (a value, `{$in}`, `{$exists}`, `{$hasPrefix}`/`{$startsWith}`,
`{$contains}`), combined with `$all`, `$any` and `$not`. Keys and values compare
case-insensitively against the flattened search rows (catalog/search.py); `kind` and
`metadata.name|namespace|uid` use the entity's own indexed columns, and
`relations.<type>` reads the relations table. An unknown key matches nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute

from tenant_runtime.catalog.errors import CatalogInputError
from tenant_runtime.catalog.models import EntityRecord, RelationRecord, SearchRecord
from tenant_runtime.catalog.relations import RELATION_TYPES

Predicate = Mapping[str, Any]
PREFIX_OPERATORS = ("$hasPrefix", "$startsWith")


def parse_filter_params(params: Sequence[str]) -> Predicate | None:
    """The `filter` params as one predicate: sets ORed, statements ANDed, one key's values ORed."""
    sets: list[Predicate] = []
    for param in params:
        statements: dict[str, list[str | None]] = {}
        for statement in param.split(","):
            key, has_value, value = statement.strip().partition("=")
            key = key.strip()
            if not key:
                continue
            statements.setdefault(key, []).append(value.strip() if has_value else None)
        if statements:
            sets.append({"$all": [_statement(key, values) for key, values in statements.items()]})
    if not sets:
        return None
    return sets[0] if len(sets) == 1 else {"$any": sets}


def _statement(key: str, values: list[str | None]) -> Predicate:
    if None in values:
        return {key: {"$exists": True}}
    return {key: {"$in": values}}


def predicate_clause(predicate: Predicate | None) -> ColumnElement[bool]:
    """A WHERE clause on `entities` for the predicate; `None` matches everything."""
    if predicate is None:
        return true()
    if not isinstance(predicate, Mapping):
        raise CatalogInputError("a query must be an object")
    clauses: list[ColumnElement[bool]] = []
    for key, matcher in predicate.items():
        if key == "$all":
            clauses.append(and_(true(), *(predicate_clause(p) for p in _list(key, matcher))))
        elif key == "$any":
            clauses.append(or_(false(), *(predicate_clause(p) for p in _list(key, matcher))))
        elif key == "$not":
            clauses.append(not_(predicate_clause(matcher)))
        elif key.startswith("$"):
            raise CatalogInputError(f"unknown query operator {key!r}")
        else:
            clauses.append(_key_clause(key, matcher))
    return and_(true(), *clauses)


def _list(operator: str, value: object) -> list[Predicate]:
    if not isinstance(value, list):
        raise CatalogInputError(f"{operator} takes a list of queries")
    return value


def _key_clause(key: str, matcher: object) -> ColumnElement[bool]:
    lowered = key.lower()
    if isinstance(matcher, Mapping):
        if "$exists" in matcher:
            exists = _exists(lowered)
            return exists if matcher["$exists"] else not_(exists)
        if "$in" in matcher:
            values = matcher["$in"]
            if not isinstance(values, list):
                raise CatalogInputError(f"{key}: $in takes a list of values")
            return _equals(lowered, [_text(v) for v in values])
        for operator in PREFIX_OPERATORS:
            if operator in matcher:
                return _prefix(lowered, _text(matcher[operator]))
        if "$contains" in matcher:
            inner = matcher["$contains"]
            if isinstance(inner, Mapping):
                # Elements of an array of objects are flattened under the array's key.
                return and_(true(), *(_key_clause(f"{key}.{sub}", m) for sub, m in inner.items()))
            return _equals(lowered, [_text(inner)])
        raise CatalogInputError(f"{key}: unknown matcher {sorted(matcher)}")
    if isinstance(matcher, list):
        raise CatalogInputError(f"{key}: use $in to match one of several values")
    return _equals(lowered, [_text(matcher)])


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, Mapping | list):
        raise CatalogInputError(f"cannot compare with {value!r}")
    return str(value).lower()


def _column(key: str) -> InstrumentedAttribute[str] | None:
    # These columns hold lower-cased copies and are indexed: cheaper than search rows.
    return {
        "kind": EntityRecord.kind,
        "metadata.name": EntityRecord.name,
        "metadata.namespace": EntityRecord.namespace,
        "metadata.uid": EntityRecord.uid,
    }.get(key)


def _equals(key: str, values: list[str]) -> ColumnElement[bool]:
    if key.startswith("relations."):
        return _relations(key, RelationRecord.target_ref.in_(values))
    column = _column(key)
    if column is not None:
        return column.in_(values)
    return EntityRecord.uid.in_(
        select(SearchRecord.entity_uid).where(
            SearchRecord.key == key, SearchRecord.value.in_(values)
        )
    )


def _prefix(key: str, prefix: str) -> ColumnElement[bool]:
    if key.startswith("relations."):
        return _relations(key, RelationRecord.target_ref.startswith(prefix, autoescape=True))
    column = _column(key)
    if column is not None:
        return column.startswith(prefix, autoescape=True)
    return EntityRecord.uid.in_(
        select(SearchRecord.entity_uid).where(
            SearchRecord.key == key, SearchRecord.value.startswith(prefix, autoescape=True)
        )
    )


def _exists(key: str) -> ColumnElement[bool]:
    if key.startswith("relations."):
        return _relations(key, true())
    if _column(key) is not None:
        return true()
    return EntityRecord.uid.in_(select(SearchRecord.entity_uid).where(SearchRecord.key == key))


def _relations(key: str, target: ColumnElement[bool]) -> ColumnElement[bool]:
    lowered_type = key.split(".", 1)[1]
    relation_type = RELATION_TYPES.get(lowered_type)
    type_clause = (
        RelationRecord.type == relation_type
        if relation_type is not None
        else func.lower(RelationRecord.type) == lowered_type
    )
    return EntityRecord.entity_ref.in_(select(RelationRecord.source_ref).where(type_clause, target))


def location_matches(location: Mapping[str, Any], predicate: Predicate | None) -> bool:
    """The same predicate language over a location's fields (`id`, `type`, `target`)."""
    if predicate is None:
        return True
    if not isinstance(predicate, Mapping):
        raise CatalogInputError("a query must be an object")
    for key, matcher in predicate.items():
        if key == "$all":
            ok = all(location_matches(location, p) for p in _list(key, matcher))
        elif key == "$any":
            ok = any(location_matches(location, p) for p in _list(key, matcher))
        elif key == "$not":
            ok = not location_matches(location, matcher)
        else:
            ok = _location_key_matches(location.get(key), matcher)
        if not ok:
            return False
    return True


def _location_key_matches(value: object, matcher: object) -> bool:
    text = None if value is None else str(value).lower()
    if isinstance(matcher, Mapping):
        if "$exists" in matcher:
            return (text is not None) == bool(matcher["$exists"])
        if "$in" in matcher:
            return text in {_text(v) for v in matcher["$in"]}
        for operator in PREFIX_OPERATORS:
            if operator in matcher:
                return text is not None and text.startswith(_text(matcher[operator]))
        raise CatalogInputError(f"unknown matcher {sorted(matcher)}")
    return text == _text(matcher)
