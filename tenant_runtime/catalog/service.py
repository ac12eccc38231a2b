"""Reading the catalog as Backstage serves it. Services flush; the caller commits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, text, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from tenant_runtime.catalog.cursors import decode_cursor, encode_cursor
from tenant_runtime.catalog.descriptors import parse_descriptors
from tenant_runtime.catalog.errors import CatalogInputError
from tenant_runtime.catalog.filters import (
    Predicate,
    implied_kinds,
    kind_only,
    predicate_clause,
)
from tenant_runtime.catalog.models import (
    EntityRecord,
    FacetCountRecord,
    RelationRecord,
    SearchRecord,
)
from tenant_runtime.catalog.refs import InvalidEntityRef, parse_entity_ref
from tenant_runtime.catalog.relations import RELATION_TYPES
from tenant_runtime.catalog.search import full_text_clause
from tenant_runtime.catalog.store import CatalogStore

EXAMPLE_CATALOG = Path(__file__).resolve().parent / "seed" / "example-catalog.yaml"
SEED_ACTOR = "backlot:example-catalog"
DEFAULT_QUERY_LIMIT = 20
RELATIONS_CHUNK = 1000
MAX_ANCESTRY_DEPTH = 32
# psycopg prepares a statement run five times on a connection, and PostgreSQL may then
# reuse one generic plan for every value. Catalog data is skewed: "spec.type=service" is
# a third of the components and none of the APIs, so a plan made without the values is
# badly wrong for some of them (230 ms instead of 1 ms at 100k). Plan each query for its
# values; planning costs well under a millisecond.
PLAN_FOR_THE_VALUES = text("SET LOCAL plan_cache_mode = force_custom_plan")


@dataclass(frozen=True)
class OrderField:
    field: str
    order: Literal["asc", "desc"]


@dataclass(frozen=True)
class FullTextFilter:
    term: str
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntityQuery:
    """An initial `by-query` request, or one restored from its cursor."""

    predicate: Predicate | None = None
    order: OrderField | None = None
    full_text: FullTextFilter | None = None
    # Predicate requests (POST) carry the predicate in the cursor under `query`; GET
    # cursors must not, or the client would switch to POST (reference 0.4).
    predicate_mode: bool = False


def parse_order(value: str, *, separator: str, field_first: bool) -> OrderField:
    """`asc:field` (GET /entities) or `field,asc` (by-query) into an OrderField."""
    left, found, right = value.partition(separator)
    field, order = (left, right) if field_first else (right, left)
    field, order = field.strip(), order.strip().lower() or "asc"
    if not found and field_first:
        field, order = left.strip(), "asc"
    if not field or order not in ("asc", "desc") or "[" in field:
        raise CatalogInputError(f"Invalid order {value!r}")
    return OrderField(field, "asc" if order == "asc" else "desc")


def project(entity: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Keep only the given dotted paths; keys that contain dots are matched greedily."""
    if not fields:
        return dict(entity)
    kept: dict[str, Any] = {}
    for field in fields:
        _copy_path(entity, kept, field)
    return kept


def _copy_path(source: Mapping[str, Any], target: dict[str, Any], path: str) -> None:
    if path in source:
        target[path] = source[path]
        return
    position = path.find(".")
    while position != -1:
        head = path[:position]
        child = source.get(head)
        if isinstance(child, Mapping):
            nested = target.setdefault(head, {})
            if isinstance(nested, dict):
                _copy_path(child, nested, path[position + 1 :])
                if not nested:
                    del target[head]
            return
        position = path.find(".", position + 1)


def check_fields(fields: Sequence[str]) -> list[str]:
    cleaned = [f.strip() for field in fields for f in field.split(",") if f.strip()]
    for field in cleaned:
        if "[" in field:
            raise CatalogInputError(f"Invalid field {field!r}: indexing is not supported")
    return cleaned


def _column_for_order(key: str) -> InstrumentedAttribute[str] | None:
    columns: dict[str, InstrumentedAttribute[str]] = {
        "kind": EntityRecord.kind,
        "metadata.name": EntityRecord.name,
        "metadata.namespace": EntityRecord.namespace,
        "metadata.uid": EntityRecord.uid,
    }
    return columns.get(key)


def sort_expression(field: str) -> ColumnElement[Any]:
    """The lower-cased value an entity sorts by; an indexed column where there is one."""
    key = field.lower()
    column = _column_for_order(key)
    if column is not None:
        return column.expression
    return (
        select(func.min(SearchRecord.value))
        .where(SearchRecord.entity_uid == EntityRecord.uid, SearchRecord.key == key)
        .scalar_subquery()
    )


def sorts_by_column(field: str) -> bool:
    """Whether the sort is an entity column, which is never null.

    Such a sort needs no NULLS LAST (which only a matching index could answer for both
    directions) and its keyset is a plain row comparison an index range can answer.
    """
    return _column_for_order(field.lower()) is not None


def _directed(expression: ColumnElement[Any], *, descending: bool, nullable: bool) -> Any:
    ordered = expression.desc() if descending else expression.asc()
    return ordered.nulls_last() if nullable else ordered


class CatalogService:
    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _plan_for_the_values(self) -> None:
        if self.dialect == "postgresql":
            self.session.execute(PLAN_FOR_THE_VALUES)

    # -- entities ---------------------------------------------------------------

    def list_entities(
        self,
        *,
        predicate: Predicate | None = None,
        order: Sequence[OrderField] = (),
        fields: Sequence[str] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Entities in Backstage shape; by canonical ref unless ordered by fields."""
        self._plan_for_the_values()
        # The page's uids first, then their rows: the first query can then be answered
        # from indexes alone, without reading the wide rows of entities it skips.
        query = select(EntityRecord.uid).where(predicate_clause(predicate))
        for item in order:
            query = query.order_by(
                _directed(
                    sort_expression(item.field),
                    descending=item.order == "desc",
                    nullable=not sorts_by_column(item.field),
                )
            )
        query = query.order_by(EntityRecord.uid if order else EntityRecord.entity_ref)
        uids = list(self.session.scalars(query.offset(offset).limit(limit)))
        by_uid = {
            record.uid: record
            for start in range(0, len(uids), RELATIONS_CHUNK)
            for record in self.session.scalars(
                select(EntityRecord).where(
                    EntityRecord.uid.in_(uids[start : start + RELATIONS_CHUNK])
                )
            )
        }
        records = [by_uid[uid] for uid in uids if uid in by_uid]
        return [project(entity, fields) for entity in self.serve(records)]

    def iter_entities(
        self,
        *,
        predicate: Predicate | None = None,
        order: Sequence[OrderField] = (),
        fields: Sequence[str] = (),
        offset: int = 0,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Every matching entity, read a page at a time so memory stays flat."""
        while True:
            page = self.list_entities(
                predicate=predicate, order=order, fields=fields, limit=page_size, offset=offset
            )
            yield from page
            if len(page) < page_size:
                return
            offset += page_size
            self.session.expunge_all()

    def count_entities(self) -> int:
        return self.session.scalar(select(func.count()).select_from(EntityRecord)) or 0

    def query_entities(
        self,
        query: EntityQuery,
        *,
        limit: int | None,
        offset: int | None = None,
        cursor: str | None = None,
        fields: Sequence[str] = (),
        include_total: bool = True,
    ) -> dict[str, Any]:
        """One page of `by-query`: items, totalItems and cursors to the pages around it."""
        self._plan_for_the_values()
        state: dict[str, Any] = {}
        if cursor is not None:
            state = decode_cursor(cursor)
            query = _query_from_cursor(state)
        # A continuation without a limit keeps the page size the first request asked for.
        if limit is None:
            remembered = state.get("limit")
            limit = remembered if isinstance(remembered, int) else DEFAULT_QUERY_LIMIT
        if limit < 0 or (offset is not None and offset < 0):
            raise CatalogInputError("limit and offset must not be negative")
        where = self._query_clause(query)
        if cursor is None:
            total = self._total(query, where) if include_total else 0
        else:
            total = int(state.get("totalItems", 0))
        if limit == 0:
            return {"items": [], "totalItems": total, "pageInfo": {}}
        sort = sort_expression(query.order.field) if query.order else None
        nullable = query.order is not None and not sorts_by_column(query.order.field)
        descending = query.order is not None and query.order.order == "desc"
        previous = bool(state.get("isPrevious"))
        boundary = state.get("orderFieldValues")
        statement = select(EntityRecord, sort if sort is not None else EntityRecord.uid).where(
            where
        )
        if boundary is not None:
            statement = statement.where(
                _keyset(sort, boundary, descending, before=previous, nullable=nullable)
            )
        statement = _ordered(statement, sort, descending, reverse=previous, nullable=nullable)
        if cursor is None and offset:
            statement = statement.offset(offset)
        rows = self.session.execute(statement.limit(limit + 1)).all()
        more = len(rows) > limit
        rows = list(rows[:limit])
        if previous:
            rows.reverse()
        items = [project(e, fields) for e in self.serve([row[0] for row in rows])]

        def cursor_at(row: Any, *, is_previous: bool) -> str:
            values = [row[1], row[0].uid] if sort is not None else [row[0].uid]
            return encode_cursor(
                _cursor_state(query, values, is_previous, total) | {"limit": limit}
            )

        page_info: dict[str, str] = {}
        if rows:
            has_next = True if previous else more
            has_previous = more if previous else cursor is not None or bool(offset)
            if has_next:
                page_info["nextCursor"] = cursor_at(rows[-1], is_previous=False)
            if has_previous:
                page_info["prevCursor"] = cursor_at(rows[0], is_previous=True)
        return {"items": items, "totalItems": total, "pageInfo": page_info}

    def _query_clause(self, query: EntityQuery) -> ColumnElement[bool]:
        clause = predicate_clause(query.predicate)
        text = query.full_text
        if text is None or not text.term.strip():
            return clause
        term = text.term.strip().lower()
        if text.fields:
            keys = [f.lower() for f in text.fields]
            columns = [_column_for_order(key) for key in keys]
            if all(column is not None for column in columns):
                # Names and kinds live in the entity row: no need to read search rows.
                return and_(
                    clause,
                    or_(*(c.contains(term, autoescape=True) for c in columns if c is not None)),
                )
            matching = or_(
                *(
                    column.contains(term, autoescape=True)
                    for key in keys
                    if (column := _column_for_order(key)) is not None
                ),
                EntityRecord.uid.in_(
                    select(SearchRecord.entity_uid).where(
                        SearchRecord.key.in_(keys),
                        SearchRecord.value.contains(term, autoescape=True),
                    )
                ),
            )
            return and_(clause, matching)
        return and_(clause, full_text_clause(term, self.dialect))

    def _total(self, query: EntityQuery, where: ColumnElement[bool]) -> int:
        """How many entities match: from the facet counts when only kinds are asked for.

        Every entity has exactly one search row under `kind`, so the counts under that key
        are the number of entities of each kind.
        """
        searched = query.full_text is not None and query.full_text.term.strip() != ""
        kinds = kind_only(query.predicate)
        if searched or (query.predicate is not None and kinds is None):
            return self._count(where)
        total = select(func.sum(FacetCountRecord.count)).where(FacetCountRecord.key == "kind")
        if kinds is not None:
            total = total.where(FacetCountRecord.kind.in_(kinds))
        return int(self.session.scalar(total) or 0)

    def _count(self, where: ColumnElement[bool]) -> int:
        return self.session.scalar(select(func.count()).select_from(EntityRecord).where(where)) or 0

    def entities_by_refs(
        self, refs: Sequence[str], *, predicate: Predicate | None, fields: Sequence[str]
    ) -> list[dict[str, Any] | None]:
        """One item per requested ref, in order; null where missing or filtered out."""
        self._plan_for_the_values()
        canonical: list[str | None] = []
        for ref in refs:
            try:
                canonical.append(str(parse_entity_ref(ref, default_kind=None)))
            except InvalidEntityRef:
                canonical.append(None)
        wanted = sorted({ref for ref in canonical if ref is not None})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), RELATIONS_CHUNK):
            records = self.session.scalars(
                select(EntityRecord).where(
                    EntityRecord.entity_ref.in_(wanted[start : start + RELATIONS_CHUNK]),
                    predicate_clause(predicate),
                )
            ).all()
            for record, entity in zip(records, self.serve(records), strict=True):
                found[record.entity_ref] = project(entity, fields)
        return [found.get(ref) if ref is not None else None for ref in canonical]

    def record_by_ref(self, ref: str) -> EntityRecord | None:
        return self.session.scalar(
            select(EntityRecord).where(EntityRecord.entity_ref == ref.lower())
        )

    def record_by_uid(self, uid: str) -> EntityRecord | None:
        return self.session.get(EntityRecord, uid)

    def entity_by_ref(self, ref: str) -> dict[str, Any] | None:
        record = self.record_by_ref(ref)
        return self.serve([record])[0] if record is not None else None

    def entity_by_uid(self, uid: str) -> dict[str, Any] | None:
        record = self.record_by_uid(uid)
        return self.serve([record])[0] if record is not None else None

    def ancestry(self, ref: str) -> dict[str, Any] | None:
        """The entity and the chain of entities that emitted it, nearest first."""
        record = self.record_by_ref(ref)
        if record is None:
            return None
        chain = [record]
        seen = {record.entity_ref}
        while chain[-1].parent_ref and len(chain) < MAX_ANCESTRY_DEPTH:
            parent = self.record_by_ref(chain[-1].parent_ref)
            if parent is None or parent.entity_ref in seen:
                break
            seen.add(parent.entity_ref)
            chain.append(parent)
        served = self.serve(chain)
        return {
            "rootEntityRef": record.entity_ref,
            "items": [
                {
                    "entity": entity,
                    "parentEntityRefs": [item.parent_ref]
                    if item.parent_ref and item.parent_ref in seen
                    else [],
                }
                for item, entity in zip(chain, served, strict=True)
            ],
        }

    def facets(
        self, facets: Sequence[str], *, predicate: Predicate | None
    ) -> dict[str, list[dict[str, Any]]]:
        """Value counts per facet (array fields count each element), case preserved."""
        self._plan_for_the_values()
        filtered = predicate is not None
        matching = select(EntityRecord.uid).where(predicate_clause(predicate))
        # Over the whole catalog or within some kinds alone, the store's counts answer;
        # otherwise search rows carry their entity's kind, so a facet reads only those rows.
        kinds = implied_kinds(predicate)
        by_kind_alone = kind_only(predicate) is not None
        result: dict[str, list[dict[str, Any]]] = {}
        for facet in facets:
            key = facet.lower()
            statement: Select[Any]
            if key.startswith("relations."):
                relation_type = RELATION_TYPES.get(key.split(".", 1)[1], key.split(".", 1)[1])
                statement = (
                    select(
                        RelationRecord.target_ref,
                        func.count(func.distinct(RelationRecord.source_ref)),
                    )
                    .where(RelationRecord.type == relation_type)
                    .group_by(RelationRecord.target_ref)
                )
                if filtered:
                    statement = statement.where(
                        RelationRecord.source_ref.in_(
                            select(EntityRecord.entity_ref).where(predicate_clause(predicate))
                        )
                    )
            elif not filtered or by_kind_alone:
                statement = (
                    select(FacetCountRecord.value, func.sum(FacetCountRecord.count))
                    .where(FacetCountRecord.key == key, FacetCountRecord.count > 0)
                    .group_by(FacetCountRecord.value)
                )
                if kinds is not None:
                    statement = statement.where(FacetCountRecord.kind.in_(kinds))
            else:
                statement = (
                    select(SearchRecord.original_value, func.count())
                    .where(SearchRecord.key == key, SearchRecord.original_value.is_not(None))
                    .group_by(SearchRecord.original_value)
                )
                if kinds is not None:
                    statement = statement.where(SearchRecord.kind.in_(kinds))
                if filtered and not by_kind_alone:
                    statement = statement.where(SearchRecord.entity_uid.in_(matching))
            counts = [(str(value), int(count)) for value, count in self.session.execute(statement)]
            counts.sort(key=lambda item: (-item[1], item[0]))
            result[facet] = [{"value": value, "count": count} for value, count in counts]
        return result

    # -- shaping ------------------------------------------------------------------

    def serve(self, records: Sequence[EntityRecord]) -> list[dict[str, Any]]:
        """Entities as Backstage serves them: uid, etag, sorted relations, status items."""
        relations: dict[str, list[dict[str, str]]] = {}
        refs = [record.entity_ref for record in records]
        for start in range(0, len(refs), RELATIONS_CHUNK):
            rows = self.session.execute(
                select(RelationRecord.source_ref, RelationRecord.type, RelationRecord.target_ref)
                .where(RelationRecord.source_ref.in_(refs[start : start + RELATIONS_CHUNK]))
                .distinct()
                .order_by(RelationRecord.type, RelationRecord.target_ref)
            )
            for source, type_, target in rows:
                relations.setdefault(source, []).append({"type": type_, "targetRef": target})
        return [_served(record, relations.get(record.entity_ref, [])) for record in records]

    # -- seeding ------------------------------------------------------------------

    def seed_example_catalog(self) -> int:
        """Register the example catalog if the catalog is empty; returns how many entities."""
        if self.count_entities():
            return 0
        descriptors = parse_descriptors(
            EXAMPLE_CATALOG.read_text(encoding="utf-8"), source=EXAMPLE_CATALOG.name
        )
        CatalogStore(self.session).upsert(descriptors, location_key=None, actor=SEED_ACTOR)
        return len(descriptors)


def _served(record: EntityRecord, relations: list[dict[str, str]]) -> dict[str, Any]:
    metadata = {**record.body["metadata"], "uid": record.uid, "etag": record.etag}
    served = {**record.body, "metadata": metadata, "relations": relations}
    if record.status_items:
        served["status"] = {"items": record.status_items}
    return served


def _query_from_cursor(state: Mapping[str, Any]) -> EntityQuery:
    order_fields = state.get("orderFields") or []
    order = None
    if order_fields:
        first = order_fields[0]
        if not isinstance(first, Mapping) or first.get("order") not in ("asc", "desc"):
            raise CatalogInputError("Malformed cursor: bad orderFields")
        order = OrderField(str(first.get("field")), first["order"])
    text = state.get("fullTextFilter")
    full_text = None
    if isinstance(text, Mapping) and isinstance(text.get("term"), str):
        full_text = FullTextFilter(text["term"], tuple(text.get("fields") or ()))
    predicate_mode = "query" in state
    predicate = state.get("query") if predicate_mode else state.get("filter")
    if predicate is not None and not isinstance(predicate, Mapping):
        raise CatalogInputError("Malformed cursor: bad filter")
    if not isinstance(state.get("orderFieldValues"), list):
        raise CatalogInputError("Malformed cursor: missing orderFieldValues")
    return EntityQuery(predicate, order, full_text, predicate_mode)


def _cursor_state(
    query: EntityQuery, values: list[Any], is_previous: bool, total: int
) -> dict[str, Any]:
    state: dict[str, Any] = {
        "orderFields": [{"field": query.order.field, "order": query.order.order}]
        if query.order
        else [],
        "orderFieldValues": values,
        "isPrevious": is_previous,
        "totalItems": total,
    }
    if query.full_text is not None:
        state["fullTextFilter"] = {
            "term": query.full_text.term,
            "fields": list(query.full_text.fields),
        }
    state["query" if query.predicate_mode else "filter"] = query.predicate
    return state


def _ordered(
    statement: Select[Any],
    sort: ColumnElement[Any] | None,
    descending: bool,
    *,
    reverse: bool,
    nullable: bool,
) -> Select[Any]:
    backwards = descending != reverse
    if sort is not None and not nullable:
        statement = statement.order_by(sort.desc() if backwards else sort.asc())
    elif sort is not None:
        # Nulls come last in reading order, so first when reading backwards.
        expression = sort.desc() if backwards else sort.asc()
        statement = statement.order_by(
            expression.nulls_first() if reverse else expression.nulls_last()
        )
    return statement.order_by(EntityRecord.uid.desc() if backwards else EntityRecord.uid.asc())


def _keyset(
    sort: ColumnElement[Any] | None,
    boundary: list[Any],
    descending: bool,
    *,
    before: bool,
    nullable: bool,
) -> ColumnElement[bool]:
    """Rows after (or before) the boundary row in reading order (nulls last, then uid)."""
    if sort is None:
        if len(boundary) != 1:
            raise CatalogInputError("Malformed cursor: orderFieldValues")
        uid = str(boundary[0])
        return EntityRecord.uid < uid if before else EntityRecord.uid > uid
    if len(boundary) != 2:
        raise CatalogInputError("Malformed cursor: orderFieldValues")
    value, uid = boundary[0], str(boundary[1])
    # Later in reading order means a greater value when ascending forwards or descending
    # backwards, a smaller one otherwise; uid breaks ties the same way.
    greater = descending == before
    if not nullable and value is not None:
        # A row comparison: an index on (…, value, uid) answers it as one range.
        row, bound = tuple_(sort, EntityRecord.uid), tuple_(literal(str(value)), literal(uid))
        return row > bound if greater else row < bound
    later_value = sort > value if greater else sort < value
    later_uid = EntityRecord.uid > uid if greater else EntityRecord.uid < uid
    if not before:
        if value is None:
            return and_(sort.is_(None), later_uid)
        return or_(later_value, and_(sort == value, later_uid), sort.is_(None))
    if value is None:
        return or_(sort.is_not(None), and_(sort.is_(None), later_uid))
    return and_(sort.is_not(None), or_(later_value, and_(sort == value, later_uid)))
