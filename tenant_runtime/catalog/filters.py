"""Entity filters as SQL: the `filter` query parameter and filter predicates.

Both forms compile to one predicate language (`@backstage/filter-predicates`): a mapping
of dotted keys to matchers (a value, `{$in}`, `{$exists}`, `{$hasPrefix}`/`{$startsWith}`,
`{$contains}`), combined with `$all`, `$any` and `$not`. Keys and values compare
case-insensitively against the flattened search rows (catalog/search.py); `kind` and
`metadata.name|namespace|uid` use the entity's own indexed columns, and
`relations.<type>` reads the relations table. An unknown key matches nothing.

Search rows carry their entity's kind: where a predicate restricts the kind (as nearly
every catalog query does), its search-row subqueries are restricted to that kind too.
That changes no answer, since an entity's rows all carry its own kind, but it lets the
database read only that kind's rows, and know when a combination is rare in it.
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


def predicate_clause(
    predicate: Predicate | None, kinds: Sequence[str] | None = None
) -> ColumnElement[bool]:
    """A WHERE clause on `entities` for the predicate; `None` matches everything.

    `kinds`, when given, are the kinds an enclosing conjunction already restricts to.
    """
    if predicate is None:
        return true()
    if not isinstance(predicate, Mapping):
        raise CatalogInputError("a query must be an object")
    if kinds is None:
        kinds = implied_kinds(predicate)
    clauses: list[ColumnElement[bool]] = []
    for key, matcher in predicate.items():
        if key == "$all":
            clauses.append(and_(true(), *(predicate_clause(p, kinds) for p in _list(key, matcher))))
        elif key == "$any":
            clauses.append(or_(false(), *(predicate_clause(p, kinds) for p in _list(key, matcher))))
        elif key == "$not":
            clauses.append(not_(predicate_clause(matcher, kinds)))
        elif key.startswith("$"):
            raise CatalogInputError(f"unknown query operator {key!r}")
        else:
            clauses.append(_key_clause(key, matcher, kinds))
    return and_(true(), *clauses)


def implied_kinds(predicate: Predicate | None) -> list[str] | None:
    """The kinds every match must have, when the predicate's conjunction says so plainly."""
    if not isinstance(predicate, Mapping):
        return None
    found: list[str] | None = None
    for key, matcher in predicate.items():
        kinds: list[str] | None = None
        if key == "$all" and isinstance(matcher, list):
            for part in matcher:
                found = _intersect(found, implied_kinds(part))
        elif key.lower() == "kind":
            kinds = _kind_values(matcher)
        found = _intersect(found, kinds)
    return found


def kind_only(predicate: Predicate | None) -> list[str] | None:
    """The kinds, when the predicate is nothing but a restriction to them."""
    if not isinstance(predicate, Mapping) or len(predicate) != 1:
        return None
    ((key, matcher),) = predicate.items()
    if key == "$all" and isinstance(matcher, list) and len(matcher) == 1:
        return kind_only(matcher[0])
    return _kind_values(matcher) if key.lower() == "kind" else None


def _intersect(found: list[str] | None, kinds: list[str] | None) -> list[str] | None:
    if kinds is None:
        return found
    if found is None:
        return kinds
    return [kind for kind in found if kind in kinds]


def _kind_values(matcher: object) -> list[str] | None:
    if isinstance(matcher, str):
        return [matcher.lower()]
    if isinstance(matcher, Mapping) and list(matcher) == ["$in"]:
        values = matcher["$in"]
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            return [v.lower() for v in values]
    return None


def _list(operator: str, value: object) -> list[Predicate]:
    if not isinstance(value, list):
        raise CatalogInputError(f"{operator} takes a list of queries")
    return value


def _key_clause(key: str, matcher: object, kinds: Sequence[str] | None) -> ColumnElement[bool]:
    lowered = key.lower()
    if isinstance(matcher, Mapping):
        if "$exists" in matcher:
            exists = _exists(lowered, kinds)
            return exists if matcher["$exists"] else not_(exists)
        if "$in" in matcher:
            values = matcher["$in"]
            if not isinstance(values, list):
                raise CatalogInputError(f"{key}: $in takes a list of values")
            return _equals(lowered, [_text(v) for v in values], kinds)
        for operator in PREFIX_OPERATORS:
            if operator in matcher:
                return _prefix(lowered, _text(matcher[operator]), kinds)
        if "$contains" in matcher:
            inner = matcher["$contains"]
            if isinstance(inner, Mapping):
                # Elements of an array of objects are flattened under the array's key.
                return and_(
                    true(), *(_key_clause(f"{key}.{sub}", m, kinds) for sub, m in inner.items())
                )
            return _equals(lowered, [_text(inner)], kinds)
        raise CatalogInputError(f"{key}: unknown matcher {sorted(matcher)}")
    if isinstance(matcher, list):
        raise CatalogInputError(f"{key}: use $in to match one of several values")
    return _equals(lowered, [_text(matcher)], kinds)


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


def _searched(
    key: str, kinds: Sequence[str] | None, *conditions: ColumnElement[bool]
) -> ColumnElement[bool]:
    """Entities with a search row under `key` meeting the conditions."""
    rows = select(SearchRecord.entity_uid).where(SearchRecord.key == key, *conditions)
    if kinds is not None:
        rows = rows.where(SearchRecord.kind.in_(kinds))
    return EntityRecord.uid.in_(rows)


def _equals(key: str, values: list[str], kinds: Sequence[str] | None) -> ColumnElement[bool]:
    if key.startswith("relations."):
        return _relations(key, RelationRecord.target_ref.in_(values))
    column = _column(key)
    if column is not None:
        return column.in_(values)
    return _searched(key, kinds, SearchRecord.value.in_(values))


def _prefix(key: str, prefix: str, kinds: Sequence[str] | None) -> ColumnElement[bool]:
    if key.startswith("relations."):
        return _relations(key, RelationRecord.target_ref.startswith(prefix, autoescape=True))
    column = _column(key)
    if column is not None:
        return column.startswith(prefix, autoescape=True)
    return _searched(key, kinds, SearchRecord.value.startswith(prefix, autoescape=True))


def _exists(key: str, kinds: Sequence[str] | None) -> ColumnElement[bool]:
    if key.startswith("relations."):
        return _relations(key, true())
    if _column(key) is not None:
        return true()
    return _searched(key, kinds)


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
